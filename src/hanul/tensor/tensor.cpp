#include "hanul/tensor/tensor.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "hanul/tensor/quantize.h"

namespace hanul {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Tensor::rows() const {
  int64_t n = 1;  // a product, not numel() / cols(): a last dim of 0 is legal
  for (size_t i = 0; i + 1 < shape.size(); ++i) n *= shape[i];
  return n;
}

int64_t Tensor::row_stride() const { return row_bytes(dtype, cols()); }

int64_t Tensor::nbytes() const { return rows() * row_stride(); }

std::string Tensor::shape_str() const { return fmt::format("[{}]", fmt::join(shape, ", ")); }

Tensor Tensor::allocate(std::string name, DType dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  size_t n = static_cast<size_t>(t.nbytes());
  // 64-byte aligned so SIMD kernels can use aligned loads on it.
  void* p = std::aligned_alloc(64, (n + 63) / 64 * 64 + 64);
  std::memset(p, 0, (n + 63) / 64 * 64 + 64);
  t.owner = std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  t.data = p;
  return t;
}

Result<Tensor> to_f32(const Tensor& t) {
  Tensor out = Tensor::allocate(t.name, DType::F32, t.shape);
  float* dst = static_cast<float*>(out.mutable_data());
  const int64_t cols = t.cols();
  for (int64_t r = 0; r < t.rows(); ++r) {
    HANUL_TRY(dequantize_row(t.dtype, t.bytes() + r * t.row_stride(), dst + r * cols, cols));
  }
  return out;
}

Result<Tensor> to_dtype(const Tensor& t, DType to) {
  if (t.dtype == to) return t;
  if (!can_quantize(to)) return Error{fmt::format("tensor '{}': cannot write dtype {}", t.name, dtype_name(to))};
  const int64_t cols = t.cols();
  if (cols % block_size(to) != 0)
    return Error{fmt::format("tensor '{}': rows of {} elements are not whole {} blocks of {}", t.name, cols,
                             dtype_name(to), block_size(to))};
  Tensor out = Tensor::allocate(t.name, to, t.shape);
  std::vector<float> row(static_cast<size_t>(cols));
  auto* dst = static_cast<uint8_t*>(out.mutable_data());
  for (int64_t r = 0; r < t.rows(); ++r) {
    HANUL_TRY(dequantize_row(t.dtype, t.bytes() + r * t.row_stride(), row.data(), cols));
    HANUL_TRY(quantize_row(to, row.data(), dst + r * out.row_stride(), cols));
  }
  return out;
}

}  // namespace hanul
