// The GEMM driver (blocking, packing, threads) and the portable kernel; see gemm.h.
#include "hanul/kernels/cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/tensor/half.h"

namespace hanul::cpu::gemm {
namespace {

// Rows of x per block: kMc × kKc floats (120 KiB) stay in L2 while every packed
// micro-panel of the W block passes over them. A multiple of every kernel's mr.
constexpr int64_t kMc = 120;
// Weight rows per packed block: kKc × kNc floats (256 KiB), beside the x block in
// a 512 KiB L2 (Zen 3; Intel since Skylake-SP has 1–2 MiB). A multiple of every nr.
constexpr int64_t kNc = 256;
// Rows of x a task should own at least, so the W block it packs serves many tiles.
constexpr int64_t kTaskRows = 128;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The portable kernel: a 4 × 8 tile the compiler keeps in registers (and may
// vectorise). std::fma only where it is an instruction, so the scalar build does not
// call a software fma per product; where it is, the result equals the SIMD kernels'.
constexpr int64_t kScalarMr = 4, kScalarNr = 8;

inline float mul_add(float a, float b, float c) {
#if defined(FP_FAST_FMAF)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

void scalar_tile(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                 bool accumulate) {
  float acc[kScalarMr][kScalarNr] = {};
  for (int64_t p = 0; p < kc; ++p)
    for (int64_t r = 0; r < kScalarMr; ++r) {
      const float av = a[r * lda + p];
      for (int64_t j = 0; j < kScalarNr; ++j)
        acc[r][j] = mul_add(av, b[p * kScalarNr + j], acc[r][j]);
    }
  for (int64_t r = 0; r < kScalarMr; ++r)
    for (int64_t j = 0; j < kScalarNr; ++j)
      c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

void scalar_pack(const void* w, DType wt, int64_t w_row_bytes, int64_t rows, int64_t p0,
                 int64_t kc, float* out) {
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < kScalarNr; ++r) {
    const uint8_t* row = wb + r * w_row_bytes;
    for (int64_t p = 0; p < kc; ++p) {
      float v = 0.0f;
      if (r < rows) {
        if (wt == DType::F32) v = reinterpret_cast<const float*>(row)[p0 + p];
        else if (wt == DType::F16) v = fp16_to_f32(reinterpret_cast<const uint16_t*>(row)[p0 + p]);
        else v = bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[p0 + p]);
      }
      out[p * kScalarNr + r] = v;
    }
  }
}

}  // namespace

const Kernel kScalar = {kScalarMr, kScalarNr, scalar_tile, scalar_pack};

const Kernel& kernel() {
  switch (active_isa()) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx512: return kAvx512;
    case Isa::kAvx2: return kAvx2;
#endif
    default: return kScalar;
  }
}

bool supports(DType wt) { return wt == DType::F32 || wt == DType::F16 || wt == DType::BF16; }

void matmul(const float* x, int64_t m, int64_t k, const void* w, DType wt, int64_t n,
            const float* bias, float* y, ThreadPool* pool) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] = bias ? bias[j] : 0.0f;
    return;
  }
  const Kernel& kr = kernel();
  const int64_t mr = kr.mr, nr = kr.nr;
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t wrb = row_bytes(wt, k);
  const int64_t kb = k_block(k);

  // Tasks: a grid of row ranges × column ranges, about two per thread. Rows are
  // split first (x is read in place, so only the W block is packed per task);
  // columns when m is too small to give every task kTaskRows. The split changes no
  // bit of y (gemm.h), only the speed.
  const int threads = pool ? pool->n_threads() : 1;
  const int64_t want = threads <= 1 ? 1 : 2 * threads;
  const int64_t m_tiles = ceil_div(m, mr), n_panels = ceil_div(n, nr);
  const int64_t mt0 = std::clamp<int64_t>(m / kTaskRows, 1, std::min(want, m_tiles));
  const int64_t rows_per = ceil_div(m_tiles, mt0) * mr;
  const int64_t mt = ceil_div(m, rows_per);
  const int64_t nt0 = std::min(n_panels, ceil_div(want, mt));
  const int64_t cols_per = ceil_div(n_panels, nt0) * nr;
  const int64_t nt = ceil_div(n, cols_per);

  auto task = [&](int64_t t) {
    const int64_t i0 = (t / nt) * rows_per, i1 = std::min(m, i0 + rows_per);
    const int64_t j0 = (t % nt) * cols_per, j1 = std::min(n, j0 + cols_per);
    std::vector<float> bp(static_cast<size_t>(kKc * std::min(kNc, ceil_div(j1 - j0, nr) * nr)));
    std::vector<float> a_edge(static_cast<size_t>(mr * kKc), 0.0f), c_edge(static_cast<size_t>(mr * nr));
    for (int64_t jc = j0; jc < j1; jc += kNc) {
      const int64_t jn = std::min(kNc, j1 - jc), panels = ceil_div(jn, nr);
      for (int64_t pc = 0; pc < k; pc += kb) {
        const int64_t kc = std::min(kb, k - pc);
        const bool accumulate = pc > 0, last = pc + kc == k;
        for (int64_t q = 0; q < panels; ++q)
          kr.pack(wb + (jc + q * nr) * wrb, wt, wrb, std::min(nr, jn - q * nr), pc, kc,
                  bp.data() + q * nr * kc);
        for (int64_t ic = i0; ic < i1; ic += kMc) {
          const int64_t ie = std::min(i1, ic + kMc);
          for (int64_t q = 0; q < panels; ++q) {
            const int64_t j = jc + q * nr, cols = std::min(nr, jn - q * nr);
            const float* b = bp.data() + q * nr * kc;
            for (int64_t i = ic; i < ie; i += mr) {
              const int64_t rows = std::min(mr, ie - i);
              float* yt = y + i * n + j;
              if (rows == mr && cols == nr) {
                kr.tile(kc, x + i * k + pc, k, b, yt, n, accumulate);
              } else {
                // An edge tile: rows past m are zeros, columns past n are the zero
                // padding of the panel, and the kernel writes into c_edge.
                const float* a = x + i * k + pc;
                int64_t lda = k;
                if (rows < mr) {
                  for (int64_t r = 0; r < mr; ++r)
                    for (int64_t p = 0; p < kc; ++p)
                      a_edge[r * kc + p] = r < rows ? a[r * k + p] : 0.0f;
                  a = a_edge.data();
                  lda = kc;
                }
                if (accumulate)
                  for (int64_t r = 0; r < rows; ++r)
                    for (int64_t c = 0; c < cols; ++c) c_edge[r * nr + c] = yt[r * n + c];
                kr.tile(kc, a, lda, b, c_edge.data(), nr, accumulate);
                for (int64_t r = 0; r < rows; ++r)
                  for (int64_t c = 0; c < cols; ++c) yt[r * n + c] = c_edge[r * nr + c];
              }
              if (last && bias)
                for (int64_t r = 0; r < rows; ++r)
                  for (int64_t c = 0; c < cols; ++c) yt[r * n + c] += bias[j + c];
            }
          }
        }
      }
    }
  };
  parallel_for(pool, mt * nt, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) task(t);
  });
}

}  // namespace hanul::cpu::gemm
