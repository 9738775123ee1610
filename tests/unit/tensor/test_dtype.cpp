// dtype ids must equal ggml's ggml_type values (ggml.h) and block sizes the
// block structs of ggml-common.h, since GGUF files store both.
#include <gtest/gtest.h>

#include "hanul/tensor/dtype.h"
#include "hanul/tensor/quant_blocks.h"

namespace hanul {
namespace {

TEST(DType, IdsAreGgmlTypeIds) {
  // ggml.h enum ggml_type (4 and 5 were Q4_2 / Q4_3, removed).
  EXPECT_EQ(static_cast<uint32_t>(DType::F32), 0u);
  EXPECT_EQ(static_cast<uint32_t>(DType::F16), 1u);
  EXPECT_EQ(static_cast<uint32_t>(DType::Q4_0), 2u);
  EXPECT_EQ(static_cast<uint32_t>(DType::Q8_0), 8u);
  EXPECT_EQ(static_cast<uint32_t>(DType::Q2_K), 10u);
  EXPECT_EQ(static_cast<uint32_t>(DType::Q4_K), 12u);
  EXPECT_EQ(static_cast<uint32_t>(DType::Q6_K), 14u);
  EXPECT_EQ(static_cast<uint32_t>(DType::Q8_K), 15u);
  EXPECT_EQ(static_cast<uint32_t>(DType::I8), 24u);
  EXPECT_EQ(static_cast<uint32_t>(DType::F64), 28u);
  EXPECT_EQ(static_cast<uint32_t>(DType::BF16), 30u);
}

TEST(DType, InfoMatchesBlockLayouts) {
  struct Want {
    DType t;
    int64_t block, bytes;
    bool quantized;
  };
  const Want want[] = {
      {DType::F32, 1, 4, false},     {DType::F16, 1, 2, false},     {DType::BF16, 1, 2, false},
      {DType::F64, 1, 8, false},     {DType::I8, 1, 1, false},      {DType::I16, 1, 2, false},
      {DType::I32, 1, 4, false},     {DType::I64, 1, 8, false},     {DType::Q4_0, 32, 18, true},
      {DType::Q4_1, 32, 20, true},   {DType::Q5_0, 32, 22, true},   {DType::Q5_1, 32, 24, true},
      {DType::Q8_0, 32, 34, true},   {DType::Q8_1, 32, 36, true},   {DType::Q2_K, 256, 84, true},
      {DType::Q3_K, 256, 110, true}, {DType::Q4_K, 256, 144, true}, {DType::Q5_K, 256, 176, true},
      {DType::Q6_K, 256, 210, true}, {DType::Q8_K, 256, 292, true},
  };
  for (const Want& w : want) {
    auto info = dtype_info(w.t);
    ASSERT_TRUE(info) << static_cast<uint32_t>(w.t);
    EXPECT_EQ(info->block_size, w.block) << info->name;
    EXPECT_EQ(info->type_size, w.bytes) << info->name;
    EXPECT_EQ(info->quantized, w.quantized) << info->name;
    EXPECT_EQ(block_size(w.t), w.block);
    EXPECT_EQ(dtype_from_id(static_cast<uint32_t>(w.t)), w.t);
    EXPECT_EQ(dtype_from_name(info->name), w.t);
  }
}

TEST(DType, UnknownIdsAndNames) {
  for (uint32_t id : {4u, 5u, 16u, 23u, 29u, 31u, 39u, 1000u, 0xffffffffu})
    EXPECT_FALSE(dtype_from_id(id)) << id;
  EXPECT_FALSE(dtype_info(static_cast<DType>(16)));
  EXPECT_EQ(dtype_name(static_cast<DType>(16)), "unknown");
  EXPECT_FALSE(dtype_from_name("Q4_K_M"));  // a file type, not a tensor type
  EXPECT_FALSE(dtype_from_name(""));
  EXPECT_FALSE(dtype_from_name("Q4_KX"));
}

TEST(DType, NamesAreCaseInsensitive) {
  EXPECT_EQ(dtype_from_name("q4_k"), DType::Q4_K);
  EXPECT_EQ(dtype_from_name("bf16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("Q8_0"), DType::Q8_0);
  EXPECT_EQ(dtype_name(DType::Q5_K), "Q5_K");
}

TEST(DType, RowBytes) {
  EXPECT_EQ(row_bytes(DType::F32, 7), 28);
  EXPECT_EQ(row_bytes(DType::BF16, 4096), 8192);
  EXPECT_EQ(row_bytes(DType::Q4_0, 4096), 4096 / 32 * 18);
  EXPECT_EQ(row_bytes(DType::Q4_K, 512), 288);
  EXPECT_EQ(row_bytes(DType::Q6_K, 11008), 11008 / 256 * 210);
  EXPECT_EQ(row_bytes(DType::Q8_0, 0), 0);
}

}  // namespace
}  // namespace hanul
