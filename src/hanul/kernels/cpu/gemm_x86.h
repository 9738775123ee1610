// The x86 GEMM micro-kernel and W packing (see gemm.h), written once and compiled
// twice: gemm_avx2.cpp (6 × 16 tile: 12 ymm accumulators) and gemm_avx512.cpp
// (HANUL_GEMM_AVX512: 8 × 32 tile, 16 zmm accumulators), each under its own
// `#pragma GCC target` and namespace HANUL_GEMM_NS. The includer includes every
// standard header before its pragma (see simd_x86.inc).
//
// Tile shapes: BLIS's Haswell sgemm kernel is 6 × 16 (bli_gemm_haswell_asm_d6x16);
// 12 accumulators cover the FMA latency × throughput product (4 cycles × 2 units)
// and leave 4 registers for 2 W vectors and the broadcast of x.
#include <immintrin.h>

#include "hanul/kernels/cpu/gemm.h"

namespace hanul::cpu::gemm {
namespace HANUL_GEMM_NS {
namespace {

#if defined(HANUL_GEMM_AVX512)
using Vec = __m512;
constexpr int kLanes = 16;
constexpr int kMr = 8;
inline Vec vzero() { return _mm512_setzero_ps(); }
inline Vec vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec vbroadcast(const float* p) { return _mm512_set1_ps(*p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec vadd(Vec a, Vec b) { return _mm512_add_ps(a, b); }
#else
using Vec = __m256;
constexpr int kLanes = 8;
constexpr int kMr = 6;
inline Vec vzero() { return _mm256_setzero_ps(); }
inline Vec vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec vbroadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec vadd(Vec a, Vec b) { return _mm256_add_ps(a, b); }
#endif
constexpr int kNv = 2;  // vectors per tile row
constexpr int kNr = kNv * kLanes;

// kAT: a stored transposed (a[p·lda + r], gemm.h's tile_t). Only the addresses of
// the broadcasts differ; the chain of FMAs per element is the same.
template <bool kAT>
void tile_impl(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
               bool accumulate) {
  Vec acc[kMr][kNv];
#pragma GCC unroll 8
  for (int r = 0; r < kMr; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) acc[r][v] = vzero();
  const float* ar[kMr];
#pragma GCC unroll 8
  for (int r = 0; r < kMr; ++r) ar[r] = a + r * (kAT ? 1 : lda);
  // The tile of c that the end adds to is fetched now, while the k loop runs: those
  // loads come after kc steps of FMAs, too far on for the out-of-order window to start
  // them early, and c's rows are often out of L2 by then (the logits' rows are 128 KB
  // apart, so their lines share L2 sets). BLIS's Haswell kernel prefetches C the same
  // way before its loop. The two lines of a row cover an unaligned 16-float row too
  // (for the 32-float AVX-512 row they are its ends). +5% over the 15M model's
  // training products at 2 threads (interleaved A/B, sum of best times), up to +9% on
  // the logits forward.
  if (accumulate) {
#pragma GCC unroll 8
    for (int r = 0; r < kMr; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNr - 1), _MM_HINT_T0);
    }
  }
  for (int64_t p = 0; p < kc; ++p) {
    Vec bv[kNv];
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) bv[v] = vload(b + p * kNr + v * kLanes);
    const float* ap = a + p * lda;
#pragma GCC unroll 8
    for (int r = 0; r < kMr; ++r) {
      const Vec av = kAT ? vbroadcast(ap + r) : vbroadcast(ar[r] + p);
#pragma GCC unroll 2
      for (int v = 0; v < kNv; ++v) acc[r][v] = vfma(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kMr; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) {
      float* cp = c + r * ldc + v * kLanes;
      vstore(cp, accumulate ? vadd(vload(cp), acc[r][v]) : acc[r][v]);
    }
}

void tile(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
          bool accumulate) {
  tile_impl<false>(kc, a, lda, b, c, ldc, accumulate);
}

void tile_t(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
            bool accumulate) {
  tile_impl<true>(kc, a, lda, b, c, ldc, accumulate);
}

// 8 floats of a weight row from element p on.
inline __m256 load8(const void* row, DType wt, int64_t p) {
  if (wt == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(row) + p);
  const __m128i raw =
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + p));
  if (wt == DType::F16) return _mm256_cvtph_ps(raw);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));  // BF16
}

inline float load1(const void* row, DType wt, int64_t p) {
  if (wt == DType::F32) return static_cast<const float*>(row)[p];
  const uint16_t h = static_cast<const uint16_t*>(row)[p];
  if (wt == DType::F16) return _cvtsh_ss(h);
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

// Rows 8 at a time: 8 × 8 blocks transposed in registers (unpack, shuffle, permute
// lanes), so the packed panel is written with whole vector stores.
void pack(const void* w, DType wt, int64_t w_row_bytes, int64_t rows, int64_t p0, int64_t kc,
          float* out) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t es = wt == DType::F32 ? 4 : 2;
  int64_t r0 = 0;
  for (; r0 + 8 <= rows; r0 += 8) {
    const void* row[8];
    for (int i = 0; i < 8; ++i) row[i] = wb + (r0 + i) * w_row_bytes + p0 * es;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = load8(row[i], wt, p);
      const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* o = out + p * kNr + r0;  // column p + i of the 8 rows goes to o + i·kNr
      _mm256_storeu_ps(o + 0 * kNr, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(o + 1 * kNr, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(o + 2 * kNr, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(o + 3 * kNr, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(o + 4 * kNr, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(o + 5 * kNr, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(o + 6 * kNr, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(o + 7 * kNr, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; p < kc; ++p)
      for (int i = 0; i < 8; ++i) out[p * kNr + r0 + i] = load1(row[i], wt, p);
  }
  for (int64_t r = r0; r < rows; ++r) {
    const void* row = wb + r * w_row_bytes + p0 * es;
    for (int64_t p = 0; p < kc; ++p) out[p * kNr + r] = load1(row, wt, p);
  }
  if (rows < kNr)
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t r = rows; r < kNr; ++r) out[p * kNr + r] = 0.0f;
}

}  // namespace
}  // namespace HANUL_GEMM_NS

const Kernel HANUL_GEMM_TABLE = {HANUL_GEMM_NS::kMr, HANUL_GEMM_NS::kNr, HANUL_GEMM_NS::tile,
                                 HANUL_GEMM_NS::tile_t, HANUL_GEMM_NS::pack};

}  // namespace hanul::cpu::gemm
