// Reference quantize / dequantize of one row for every dtype, bit-exact with
// GGML's scalar reference (ggml-quants.c: quantize_row_*_ref, dequantize_row_*).
// n is the number of elements and must be a multiple of the dtype's block size.
#pragma once

#include <cstdint>

#include "hanul/base/result.h"
#include "hanul/tensor/dtype.h"

namespace hanul {

// Any dtype -> float32 (F32, F16, BF16, F64, all Q* types).
Status dequantize_row(DType type, const void* src, float* dst, int64_t n);

// float32 -> dtype, for the types hanul can write: F32, F16, BF16, Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
Status quantize_row(DType type, const float* src, void* dst, int64_t n);
bool can_quantize(DType type);

}  // namespace hanul
