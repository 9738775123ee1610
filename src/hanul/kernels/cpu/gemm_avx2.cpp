// The AVX2 + FMA + F16C GEMM kernel (6 × 16 tile), from gemm_x86.h.
#include <cstdint>

#include "hanul/kernels/cpu/gemm.h"

#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#define HANUL_GEMM_NS avx2
#define HANUL_GEMM_TABLE kAvx2
#include "hanul/kernels/cpu/gemm_x86.h"
#pragma GCC pop_options
#endif
