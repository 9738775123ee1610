// The AVX512_BF16 GEMM kernel (8 × 32 tile of bf16 pairs in zmm, vdpbf16ps), from
// gemm_x86.h, for MatmulPrecision::kBf16 (ops.h). Picked with the AVX-512 SIMD table
// where the CPU also has AVX512_BF16 (Zen 4, Sapphire Rapids and later): a
// vdpbf16ps does 32 multiply-adds where vfmadd231ps does 16, at the same rate on
// Zen 4 (measured here: 234 against 117 GFLOP/s a core).
#include <algorithm>
#include <cstdint>

#include "hanul/kernels/cpu/gemm.h"

#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")
#define HANUL_GEMM_NS avx512_bf16
#define HANUL_GEMM_TABLE kAvx512Bf16
#define HANUL_GEMM_AVX512 1
#define HANUL_GEMM_BF16 1
#include "hanul/kernels/cpu/gemm_x86.h"
#pragma GCC pop_options
#endif
