// Element types of weights and activations. The numeric values are GGML's
// `ggml_type` ids (ggml.h), so a GGUF tensor's type field maps one to one.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace hanul {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct DTypeInfo {
  std::string_view name;  // as GGUF tools print it: "F32", "Q4_K", ...
  int64_t block_size;     // elements per block (1 for plain types)
  int64_t type_size;      // bytes per block
  bool quantized;
};

// Info for a type hanul knows; nullopt for an id it does not (e.g. a GGUF
// tensor of an unsupported type), so callers can refuse it with a message.
std::optional<DTypeInfo> dtype_info(DType t);
std::optional<DType> dtype_from_id(uint32_t id);
std::optional<DType> dtype_from_name(std::string_view name);  // case-insensitive
std::string_view dtype_name(DType t);

// Bytes of a row of n elements; n must be a multiple of the block size.
int64_t row_bytes(DType t, int64_t n);
int64_t block_size(DType t);

}  // namespace hanul
