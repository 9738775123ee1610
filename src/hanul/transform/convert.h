// Conversion between the two model formats people have — a Hugging Face
// folder (config.json + safetensors) and a GGUF file — with an optional
// change of weight dtype (quantization), carrying the config across.
#pragma once

#include <optional>
#include <string>

#include "hanul/base/result.h"
#include "hanul/tensor/dtype.h"

namespace hanul {

struct ConvertOptions {
  // The dtype of the 2-D weights; nullopt keeps each tensor's dtype (a
  // quantized tensor bound for safetensors becomes F32). In GGUF, 1-D tensors
  // (norms, biases) are always F32, as llama.cpp writes them.
  std::optional<DType> type;
};

// `out` ending in .gguf writes a GGUF file; anything else a HF folder.
Status convert_model(const std::string& in, const std::string& out, const ConvertOptions& opts);

// The dtype a 2-D weight of `cols` columns gets when `want` is asked for:
// `want` when rows are whole blocks, else llama.cpp's fall-back
// (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, ...; F16 as the last resort).
DType weight_dtype_for(DType want, int64_t cols);

}  // namespace hanul
