#include "tools/hanul/commands.h"

namespace hanul::cli {

int info_main(int argc, char** argv);
int run_main(int argc, char** argv);
int convert_main(int argc, char** argv);
int tokenize_main(int argc, char** argv);
int detokenize_main(int argc, char** argv);
int chat_main(int argc, char** argv);
int template_main(int argc, char** argv);
int tokenizer_main(int argc, char** argv);
int data_main(int argc, char** argv);
int train_main(int argc, char** argv);

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"chat", "chat with a model: its chat template, streaming, history, /reset /system /save /load", chat_main},
      {"run", "generate from a text prompt or token ids (greedy unless --temp)", run_main},
      {"info", "print a model's architecture, shapes, dtypes and size", info_main},
      {"convert", "convert between safetensors and GGUF, and quantize", convert_main},
      {"tokenize", "text to token ids with a model's tokenizer (GGUF, tokenizer.json, tokenizer.model, folder)",
       tokenize_main},
      {"detokenize", "token ids back to text", detokenize_main},
      {"template", "render a conversation with a model's chat template", template_main},
      {"tokenizer", "tokenizer tools: 'train' learns a byte-level BPE and writes tokenizer.json", tokenizer_main},
      {"data", "training data: 'prepare' tokenizes .txt/.jsonl into uint32 shards + index.json", data_main},
      {"train", "train a model from scratch or from --init MODEL; --resume continues a run", train_main},
  };
  return kCommands;
}

}  // namespace hanul::cli
