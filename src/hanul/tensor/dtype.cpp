#include "hanul/tensor/dtype.h"

#include <array>
#include <cassert>
#include <cctype>

#include "hanul/tensor/quant_blocks.h"

namespace hanul {
namespace {

struct Entry {
  DType type;
  DTypeInfo info;
};

constexpr std::array kTypes = {
    Entry{DType::F32, {"F32", 1, 4, false}},
    Entry{DType::F16, {"F16", 1, 2, false}},
    Entry{DType::BF16, {"BF16", 1, 2, false}},
    Entry{DType::F64, {"F64", 1, 8, false}},
    Entry{DType::I8, {"I8", 1, 1, false}},
    Entry{DType::I16, {"I16", 1, 2, false}},
    Entry{DType::I32, {"I32", 1, 4, false}},
    Entry{DType::I64, {"I64", 1, 8, false}},
    Entry{DType::Q4_0, {"Q4_0", kQK4_0, sizeof(BlockQ4_0), true}},
    Entry{DType::Q4_1, {"Q4_1", kQK4_1, sizeof(BlockQ4_1), true}},
    Entry{DType::Q5_0, {"Q5_0", kQK5_0, sizeof(BlockQ5_0), true}},
    Entry{DType::Q5_1, {"Q5_1", kQK5_1, sizeof(BlockQ5_1), true}},
    Entry{DType::Q8_0, {"Q8_0", kQK8_0, sizeof(BlockQ8_0), true}},
    Entry{DType::Q8_1, {"Q8_1", kQK8_1, sizeof(BlockQ8_1), true}},
    Entry{DType::Q2_K, {"Q2_K", kQK_K, sizeof(BlockQ2_K), true}},
    Entry{DType::Q3_K, {"Q3_K", kQK_K, sizeof(BlockQ3_K), true}},
    Entry{DType::Q4_K, {"Q4_K", kQK_K, sizeof(BlockQ4_K), true}},
    Entry{DType::Q5_K, {"Q5_K", kQK_K, sizeof(BlockQ5_K), true}},
    Entry{DType::Q6_K, {"Q6_K", kQK_K, sizeof(BlockQ6_K), true}},
    Entry{DType::Q8_K, {"Q8_K", kQK_K, sizeof(BlockQ8_K), true}},
};

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::optional<DTypeInfo> dtype_info(DType t) {
  for (const auto& e : kTypes)
    if (e.type == t) return e.info;
  return std::nullopt;
}

std::optional<DType> dtype_from_id(uint32_t id) {
  for (const auto& e : kTypes)
    if (static_cast<uint32_t>(e.type) == id) return e.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& e : kTypes)
    if (iequal(e.info.name, name)) return e.type;
  return std::nullopt;
}

std::string_view dtype_name(DType t) {
  auto info = dtype_info(t);
  return info ? info->name : std::string_view("unknown");
}

int64_t block_size(DType t) {
  auto info = dtype_info(t);
  assert(info);
  return info->block_size;
}

int64_t row_bytes(DType t, int64_t n) {
  auto info = dtype_info(t);
  assert(info && n % info->block_size == 0);
  return n / info->block_size * info->type_size;
}

}  // namespace hanul
