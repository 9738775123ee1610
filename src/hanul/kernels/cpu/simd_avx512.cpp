// The AVX-512 table (F, BW, VL, VNNI: Ice Lake / Zen 4 and later): 512-bit float
// dot products and vpdpbusd for the int8 ones.
#include <cmath>  // std::fma, before the target pragma (see simd_x86.inc)
#include <cstring>  // std::memcpy

#include "hanul/kernels/cpu/simd.h"
#include "hanul/tensor/half.h"

#if defined(HANUL_X86)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12 warns about the deliberately undefined registers of _mm512_undefined_*.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define HANUL_SIMD_NS avx512
#define HANUL_SIMD_TABLE kAvx512
#define HANUL_AVX512 1
#define HANUL_VNNI 1
#include "hanul/kernels/cpu/simd_x86.inc"
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
