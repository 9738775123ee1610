// The AVX-512 GEMM kernel (8 × 32 tile in zmm), from gemm_x86.h. Picked with the
// AVX-512 SIMD table (cpu::Isa::kAvx512: F, BW, VL, VNNI); it uses only AVX512F
// and the AVX2 / F16C packing.
#include <cstdint>

#include "hanul/kernels/cpu/gemm.h"

#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f")
#define HANUL_GEMM_NS avx512
#define HANUL_GEMM_TABLE kAvx512
#define HANUL_GEMM_AVX512 1
#include "hanul/kernels/cpu/gemm_x86.h"
#pragma GCC pop_options
#endif
