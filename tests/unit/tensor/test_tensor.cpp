#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "hanul/tensor/half.h"
#include "hanul/tensor/quantize.h"
#include "hanul/tensor/tensor.h"

namespace hanul {
namespace {

TEST(Tensor, ShapeArithmetic) {
  Tensor t;
  t.dtype = DType::F32;
  t.shape = {4, 3, 5};
  EXPECT_EQ(t.numel(), 60);
  EXPECT_EQ(t.rows(), 12);
  EXPECT_EQ(t.cols(), 5);
  EXPECT_EQ(t.row_stride(), 20);
  EXPECT_EQ(t.nbytes(), 240);
  EXPECT_EQ(t.shape_str(), "[4, 3, 5]");

  Tensor v;
  v.shape = {7};
  EXPECT_EQ(v.rows(), 1);
  EXPECT_EQ(v.cols(), 7);

  Tensor scalar;  // shape [] is one element
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.rows(), 1);
  EXPECT_EQ(scalar.cols(), 1);
  EXPECT_EQ(scalar.shape_str(), "[]");
}

TEST(Tensor, QuantizedRowsAreBlocks) {
  Tensor t;
  t.dtype = DType::Q4_K;
  t.shape = {3, 512};  // 2 super-blocks per row
  EXPECT_EQ(t.row_stride(), 2 * 144);
  EXPECT_EQ(t.nbytes(), 3 * 2 * 144);
  t.dtype = DType::Q8_0;
  EXPECT_EQ(t.row_stride(), 16 * 34);
}

TEST(Tensor, AllocateOwnsZeroedAlignedMemory) {
  Tensor t = Tensor::allocate("w", DType::BF16, {5, 9});
  EXPECT_EQ(t.name, "w");
  ASSERT_NE(t.data, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u);
  for (int64_t i = 0; i < t.nbytes(); ++i) ASSERT_EQ(t.bytes()[i], 0);
  // The buffer outlives the original handle through copies sharing `owner`.
  Tensor copy = t;
  t = Tensor();
  static_cast<uint8_t*>(copy.mutable_data())[copy.nbytes() - 1] = 7;
  EXPECT_EQ(copy.bytes()[copy.nbytes() - 1], 7);
}

TEST(Tensor, ToF32DequantizesEveryRow) {
  const int64_t rows = 3, cols = 64;
  std::vector<float> x(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 37) * 0.25f - 4.0f;
  Tensor q = Tensor::allocate("q", DType::Q8_0, {rows, cols});
  for (int64_t r = 0; r < rows; ++r) {
    auto* dst = static_cast<uint8_t*>(q.mutable_data()) + r * q.row_stride();
    ASSERT_TRUE(quantize_row(DType::Q8_0, x.data() + r * cols, dst, cols).ok());
  }
  auto f = to_f32(q);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->dtype, DType::F32);
  EXPECT_EQ(f->shape, q.shape);
  EXPECT_EQ(f->name, "q");
  const float* y = static_cast<const float*>(f->data);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> want(cols);
    ASSERT_TRUE(
        dequantize_row(DType::Q8_0, q.bytes() + r * q.row_stride(), want.data(), cols).ok());
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(y[r * cols + c], want[c]) << r << "," << c;
  }
}

TEST(Tensor, ToF32WidensHalves) {
  Tensor h = Tensor::allocate("h", DType::F16, {2, 2});
  auto* p = static_cast<uint16_t*>(h.mutable_data());
  p[0] = 0x3c00;  // 1
  p[1] = 0xc000;  // -2
  p[2] = 0x7bff;  // 65504
  p[3] = 0x0001;  // 2^-24
  auto f = to_f32(h);
  ASSERT_TRUE(f.ok());
  const float* y = static_cast<const float*>(f->data);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], 65504.0f);
  EXPECT_EQ(y[3], 0x1p-24f);
}

TEST(Tensor, ToF32RefusesIntegerTensorsWithTheType) {
  Tensor t = Tensor::allocate("ids", DType::I32, {4});
  auto f = to_f32(t);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("I32"), std::string::npos) << f.message();
}

}  // namespace
}  // namespace hanul
