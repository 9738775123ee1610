// The x86 GEMM micro-kernel and W packing (see gemm.h), written once and compiled
// twice: gemm_avx2.cpp (6 × 16 tile: 12 ymm accumulators) and gemm_avx512.cpp
// (HANUL_GEMM_AVX512: 8 × 32 tile, 16 zmm accumulators), each under its own
// `#pragma GCC target` and namespace HANUL_GEMM_NS. The includer includes every
// standard header before its pragma (see simd_x86.inc).
//
// gemm_avx512_bf16.cpp compiles the AVX-512 one a third time with HANUL_GEMM_BF16:
// the same tile on bf16 pairs (gemm.h), vdpbf16ps in place of the FMA.
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
#if defined(HANUL_GEMM_BF16)
// a and b hold bf16 pairs (gemm.h): c + a_odd·b_odd + a_even·b_even per lane.
inline Vec vfma(Vec a, Vec b, Vec c) {
  return _mm512_dpbf16_ps(c, reinterpret_cast<__m512bh&>(a), reinterpret_cast<__m512bh&>(b));
}
#else
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
#endif
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

#if defined(HANUL_GEMM_BF16)
// 16 floats from src (the first `n` of them, the rest zero) rounded to bf16.
inline __m256i bf16x16(const float* src, int64_t n) {
  const __m512 v = n >= 16 ? _mm512_loadu_ps(src) : _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), src);
  const __m256bh h = _mm512_cvtneps_pbh(v);
  return reinterpret_cast<const __m256i&>(h);
}

void to_pairs(const float* src, int64_t n, float* out) {
  auto* o = reinterpret_cast<__m256i*>(out);  // 16 bf16 = 8 pairs per store
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm256_storeu_si256(o++, bf16x16(src + i, 16));
  if (i < n) {
    const int64_t pairs = (n - i + 1) / 2;
    _mm256_mask_storeu_epi32(o, static_cast<__mmask8>((1u << pairs) - 1), bf16x16(src + i, n - i));
  }
}

void interleave_pairs(const float* even, const float* odd, int64_t n, int64_t n_pad, float* out) {
  // The maskz forms with a full mask: the plain ones trip GCC 12's -Wmaybe-uninitialized
  // on their _mm512_undefined_epi32 pass-through.
  constexpr __mmask16 kAll = 0xffff;
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t len = std::min<int64_t>(16, n - j);
    const __m512i lo = _mm512_maskz_cvtepu16_epi32(kAll, bf16x16(even + j, len));
    const __m512i hi =
        odd ? _mm512_maskz_slli_epi32(kAll, _mm512_maskz_cvtepu16_epi32(kAll, bf16x16(odd + j, len)), 16)
            : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(out + j, static_cast<__mmask16>((1u << len) - 1), _mm512_or_si512(lo, hi));
  }
  std::fill(out + n, out + n_pad, 0.0f);
}
#endif

}  // namespace
}  // namespace HANUL_GEMM_NS

#if defined(HANUL_GEMM_BF16)
#define HANUL_GEMM_PAIR_FNS HANUL_GEMM_NS::to_pairs, HANUL_GEMM_NS::interleave_pairs
#else
#define HANUL_GEMM_PAIR_FNS nullptr, nullptr  // a float kernel makes no pairs
#endif
const Kernel HANUL_GEMM_TABLE = {HANUL_GEMM_NS::kMr,    HANUL_GEMM_NS::kNr,  HANUL_GEMM_NS::tile,
                                 HANUL_GEMM_NS::tile_t, HANUL_GEMM_NS::pack, HANUL_GEMM_PAIR_FNS};
#undef HANUL_GEMM_PAIR_FNS

}  // namespace hanul::cpu::gemm
