// A Tensor is a named view: shape + dtype + bytes. The bytes usually live in an
// mmap'd model file (`owner` keeps that alive); tensors that hanul computes
// (a dequantized copy, a converted weight) own a buffer through the same
// shared_ptr. Shapes are row-major, outermost first, as in PyTorch and
// safetensors: a Linear weight is [n_out, n_in]. (GGUF writes ne[] innermost
// first; formats/gguf reverses it.) Quantized rows are blocks along the last dim.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hanul/base/result.h"
#include "hanul/tensor/dtype.h"

namespace hanul {

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::shared_ptr<const void> owner;  // keeps `data` alive

  int64_t numel() const;
  int64_t nbytes() const;           // numel in blocks * block bytes
  int64_t rows() const;             // product of all but the last dim (1 for 1-D)
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  int64_t row_stride() const;       // bytes per row
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(data); }
  std::string shape_str() const;    // "[4096, 11008]"

  // A tensor that owns a fresh buffer of the right size (contents zeroed).
  static Tensor allocate(std::string name, DType dtype, std::vector<int64_t> shape);
  // Mutable access to a tensor made by allocate().
  void* mutable_data() const { return const_cast<void*>(data); }
};

// The whole tensor as float32 (dequantized or widened), in a new owning Tensor.
Result<Tensor> to_f32(const Tensor& t);

// The tensor in another dtype (row by row through float32); a view of t
// itself when the dtype is already `to`. Fails when a row is not a whole
// number of `to`'s blocks or `to` cannot be written.
Result<Tensor> to_dtype(const Tensor& t, DType to);

}  // namespace hanul
