// The AVX2 + FMA + F16C table (Haswell / Zen 1 and later).
#include <cmath>  // std::fma, before the target pragma (see simd_x86.inc)
#include <cstring>  // std::memcpy

#include "hanul/kernels/cpu/simd.h"
#include "hanul/tensor/half.h"

#if defined(HANUL_X86)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#define HANUL_SIMD_NS avx2
#define HANUL_SIMD_TABLE kAvx2
#include "hanul/kernels/cpu/simd_x86.inc"
#pragma GCC pop_options
#endif
