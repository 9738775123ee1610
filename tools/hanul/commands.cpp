#include "tools/hanul/commands.h"

namespace hanul::cli {

int info_main(int argc, char** argv);
int run_main(int argc, char** argv);
int convert_main(int argc, char** argv);

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"run", "generate from a prompt (token ids for now)", run_main},
      {"info", "print a model's architecture, shapes, dtypes and size", info_main},
      {"convert", "convert between safetensors and GGUF, and quantize", convert_main},
  };
  return kCommands;
}

}  // namespace hanul::cli
