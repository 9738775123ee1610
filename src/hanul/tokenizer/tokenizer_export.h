// Writing a model's tokenizer in the other format, so that `hanul convert`
// carries it across: GGUF metadata (tokenizer.ggml.*, the keys llama.cpp's
// convert_hf_to_gguf.py writes and llama-vocab.cpp reads) from a Hugging Face
// tokenizer.json / tokenizer.model, and a Hugging Face tokenizer.json +
// tokenizer_config.json from a GGUF's vocabulary.
//
//   auto src = load_tokenizer_for_export("model-folder");  // or a .gguf
//   if (src.ok() && *src) {
//     write_gguf_tokenizer(**src, writer, cfg.n_vocab);    // HF -> GGUF
//     write_hf_tokenizer(**src, "out-folder");              // GGUF -> HF
//   }
//
// The export works on the TokenizerModel as the loaders fill it (the merge
// list is still there; Tokenizer drops it once the merge table is built).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/tokenizer/tokenizer_model.h"

namespace hanul {

class GgufWriter;

struct TokenizerExport {
  TokenizerModel model;
  // tokenizer_config.json "chat_template" / GGUF tokenizer.chat_template;
  // empty when the model has none.
  std::string chat_template;
  // Named templates (a tokenizer_config.json list of {name, template}, GGUF
  // tokenizer.chat_template.<name>), other than the default one.
  std::vector<std::pair<std::string, std::string>> named_templates;
};

// The tokenizer a model path carries, picked as Tokenizer::load picks it (a
// GGUF's tokenizer.ggml.*; a folder's tokenizer.json, else tokenizer.model),
// with its chat template. nullopt when the path carries no tokenizer at all
// (a GGUF without tokenizer.ggml.tokens, a folder without tokenizer files);
// an error when it has one that cannot be read.
Result<std::optional<TokenizerExport>> load_tokenizer_for_export(const std::string& path);

// The llama.cpp name of a byte-level BPE's pre-tokenizer (tokenizer.ggml.pre)
// for the regexes it splits with ("gpt-2", "llama-bpe", "qwen2", ...): the
// model's own pre_name when it came from a GGUF, else the family whose regex
// list is the same (HF's case-insensitive (?i:'s|'t|...) group counts as the
// [sS] spelling llama.cpp uses). Empty when no family matches.
std::string pre_tokenizer_family(const TokenizerModel& m);

// Writes tokenizer.ggml.* (and tokenizer.chat_template) as
// convert_hf_to_gguf.py does for the family:
//   SentencePiece BPE -> model "llama", pre "default", tokens, scores,
//     token_type, add_space_prefix;
//   HF BPE over characters with byte fallback (Llama 2 / Mistral
//     tokenizer.json) -> model "llama" too, with scores made from the merge
//     ranks (see the .cpp for why not llama.cpp's -1000 placeholders);
//   byte-level BPE -> model "gpt2", pre = pre_tokenizer_family(), tokens,
//     token_type, merges ("a b").
// Then bos/eos/unk/pad/eot ids, add_bos_token/add_eos_token. n_vocab > the
// token count pads with "[PAD<id>]" unused tokens, as llama.cpp pads to the
// model's vocab_size (llama.cpp requires the two to match).
Status write_gguf_tokenizer(const TokenizerExport& t, GgufWriter& w, int64_t n_vocab = 0);

// Writes dir/tokenizer.json and dir/tokenizer_config.json (bos/eos/unk/pad
// tokens, add_bos_token/add_eos_token, chat_template) that Hugging Face
// tokenizers and transformers load and that encode as `t.model` does.
Status write_hf_tokenizer(const TokenizerExport& t, const std::string& dir);

}  // namespace hanul
