#include <fmt/core.h>

#include "hanul/tokenizer/tokenizer_model.h"

namespace hanul {

Result<TokenizerModel> load_sentencepiece_model(const std::string& path) {
  return Error{fmt::format("tokenizer: '{}': SentencePiece .model files are not supported yet", path)};
}

}  // namespace hanul
