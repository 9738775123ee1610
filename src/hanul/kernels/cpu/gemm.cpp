// The GEMM driver (blocking, packing, threads) and the portable kernel; see gemm.h.
#include "hanul/kernels/cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/tensor/half.h"

namespace hanul::cpu::gemm {
namespace {

// Rows of x per block: kMc × kKc floats (120 KiB) stay in L2 while every packed
// micro-panel of the W block passes over them. A multiple of every kernel's mr.
constexpr int64_t kMc = 120;
// The most weight rows per packed block: kKc × kNc floats (384 KiB), beside the x
// block in a 512 KiB–1 MiB L2 (Zen 3 / Zen 4; Intel since Skylake-SP has 1–2 MiB).
// A multiple of every nr. A task's columns are cut into the fewest blocks of at
// most kNc, as even as whole panels allow, so n = 288 (d_model of the 15M model) is
// one block: each column block streams all of x (for dW of the output layer, dyᵀ is
// the tokens × vocab logits gradient) through the cache once more.
constexpr int64_t kNc = 384;
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

// One kScalarMr x kScalarNr tile; A's element (row r, k index p) is a[r * rs + p * ps],
// which covers A stored by rows (rs = lda, ps = 1) and stored transposed (rs = 1, ps = lda).
void scalar_tile_strided(int64_t kc, const float* a, int64_t rs, int64_t ps, const float* b, float* c,
                         int64_t ldc, bool accumulate) {
  float acc[kScalarMr][kScalarNr] = {};
  for (int64_t p = 0; p < kc; ++p)
    for (int64_t r = 0; r < kScalarMr; ++r) {
      const float av = a[r * rs + p * ps];
      for (int64_t j = 0; j < kScalarNr; ++j)
        acc[r][j] = mul_add(av, b[p * kScalarNr + j], acc[r][j]);
    }
  for (int64_t r = 0; r < kScalarMr; ++r)
    for (int64_t j = 0; j < kScalarNr; ++j)
      c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

void scalar_tile(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                 bool accumulate) {
  scalar_tile_strided(kc, a, lda, 1, b, c, ldc, accumulate);
}

void scalar_tile_t(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                   int64_t ldc, bool accumulate) {
  scalar_tile_strided(kc, a, 1, lda, b, c, ldc, accumulate);
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

const Kernel kScalar = {kScalarMr, kScalarNr, scalar_tile, scalar_tile_t, scalar_pack, nullptr, nullptr};

const Kernel& kernel() {
  switch (active_isa()) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx512: return kAvx512;
    case Isa::kAvx2: return kAvx2;
#endif
    default: return kScalar;
  }
}

const Kernel* kernel_bf16() {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool has_bf16 = __builtin_cpu_supports("avx512bf16");
  if (has_bf16 && active_isa() == Isa::kAvx512) return &kAvx512Bf16;
#endif
  return nullptr;
}

namespace {
std::atomic<int> g_precision{static_cast<int>(MatmulPrecision::kFp32)};
}  // namespace

const Kernel& kernel_for_columns(int64_t n) {
  const Kernel& k = kernel();
#if defined(__x86_64__) || defined(_M_X64)
  // The AVX-512 tile is 32 columns wide; where that pads n by an eighth or more (head_dim
  // 48: 64 columns computed for 48), the 16-wide AVX2 tile wastes none, runs at the same
  // FMA rate on an AVX-512 core and gives the same bits (gemm.h). Attention backward at
  // head_dim 48: 0.050 -> 0.042 s a 15M step (3 alternated runs).
  const int64_t pad32 = (n + 31) / 32 * 32, pad16 = (n + 15) / 16 * 16;
  if (&k == &kAvx512 && (pad32 - pad16) * 8 >= n) return kAvx2;
#endif
  return k;
}

bool supports(DType wt) { return wt == DType::F32 || wt == DType::F16 || wt == DType::BF16; }

namespace {

// One product for the driver: y[m, n] (+)= A · Bᵀ (+ bias), A float32 stored [m, k]
// or [k, m] (a_t); B stored [n, k] as bt (a weight of matmul()) or [k, n] float32 (b_t).
// lda, ldb, ldy: the distance between stored rows, in elements (>= the row's length).
struct Problem {
  const float* a;
  bool a_t;
  int64_t lda;
  const void* b;
  DType bt;
  bool b_t;
  int64_t ldb;
  int64_t m, k, n;
  const float* bias;
  float* y;
  int64_t ldy;
  bool accumulate;
};

// out[p·nr + r] = B[j0 + r, p0 + p] for B stored [k, n]: row p of the stored B holds
// the panel's p-th step contiguously, so this is a copy, no transpose.
template <int64_t kWidth>
void copy_whole_panel(const float* src, int64_t ldb, int64_t kc, float* out) {
  for (int64_t p = 0; p < kc; ++p) std::memcpy(out + p * kWidth, src + p * ldb, kWidth * sizeof(float));
}

void pack_b_transposed(const float* b, int64_t ldb, int64_t j0, int64_t rows, int64_t p0,
                       int64_t kc, int64_t nr, float* out) {
  const float* src = b + p0 * ldb + j0;
  // Whole panels of the two x86 widths: copies of a constant size, which the compiler
  // inlines as a few vector moves (a memcpy call per 64 bytes cost ~7% of a dW).
  if (rows == nr && nr == 16) return copy_whole_panel<16>(src, ldb, kc, out);
  if (rows == nr && nr == 32) return copy_whole_panel<32>(src, ldb, kc, out);
  for (int64_t p = 0; p < kc; ++p) {
    float* o = out + p * nr;
    std::memcpy(o, src + p * ldb, static_cast<size_t>(rows) * sizeof(float));
    std::fill(o + rows, o + nr, 0.0f);
  }
}

// Per-thread buffers for the packed B, the copied A block and an edge tile, kept
// from call to call and only grown: attention calls the GEMM thousands of times a
// training step on small blocks, where allocating and zeroing them every call cost
// more than the products. Every element is written before it is read (the packs
// write their zero padding), so none is initialised here.
enum Scratch { kScratchB, kScratchA, kScratchEdge, kScratchPairs, kNScratch };
float* scratch(Scratch which, int64_t n) {
  thread_local std::vector<float> buffers[kNScratch];
  std::vector<float>& b = buffers[which];
  if (static_cast<int64_t>(b.size()) < n) {
    b = std::vector<float>();  // release before growing: never two at once
    b.resize(static_cast<size_t>(n));
  }
  return b.data();
}

void run(const Problem& pr, ThreadPool* pool) {
  const int64_t m = pr.m, k = pr.k, n = pr.n, ldy = pr.ldy;
  float* const y = pr.y;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float& v = y[i * ldy + j];
        v = (pr.accumulate ? v : 0.0f) + (pr.bias ? pr.bias[j] : 0.0f);
      }
    return;
  }
  // bf16 products (ops.h) for float32 operands: the same driver on bf16 pairs (gemm.h).
  // A k block's kc elements are ku(kc) 32-bit units: kc floats or ceil(kc / 2) pairs.
  const Kernel* const kb16 =
      pr.bt == DType::F32 && matmul_precision() == MatmulPrecision::kBf16 ? kernel_bf16() : nullptr;
  const bool pairs = kb16 != nullptr;
  const Kernel& kr = pairs ? *kb16 : kernel_for_columns(n);
  auto ku = [pairs](int64_t kc) { return pairs ? (kc + 1) / 2 : kc; };
  const int64_t mr = kr.mr, nr = kr.nr;
  const auto* wb = static_cast<const uint8_t*>(pr.b);
  const int64_t wrb = pr.b_t ? 0 : row_bytes(pr.bt, pr.ldb);
  const int64_t kb = k_block(k);

  // Tasks: a grid of row ranges × column ranges, one per thread. Every task packs
  // the W (B) blocks of its own columns, so a split of the rows packs W once per row
  // range, while a split of the columns costs nothing more as long as each range
  // still holds a whole column block (x is streamed once per column block anyway).
  // So: the columns first when there are kNc of them per task (d_ff 768 and up at 2
  // threads, the vocab projection), else the rows, and the columns only when m is too
  // small to give every task kTaskRows. Two tasks per thread balanced better but
  // packed W twice as often: at the ~110M shape's products one per thread is 8-20%
  // faster (2 threads, interleaved A/B). The split changes no bit of y (gemm.h),
  // only the speed.
  const int threads = pool ? pool->n_threads() : 1;
  const int64_t want = threads;
  const int64_t m_tiles = ceil_div(m, mr), n_panels = ceil_div(n, nr);
  const bool columns_first = n >= want * kNc;
  const int64_t mt0 =
      columns_first ? 1 : std::clamp<int64_t>(m / kTaskRows, 1, std::min(want, m_tiles));
  const int64_t rows_per = ceil_div(m_tiles, mt0) * mr;
  const int64_t mt = ceil_div(m, rows_per);
  const int64_t nt0 = std::min(n_panels, ceil_div(want, mt));
  const int64_t cols_per = ceil_div(n_panels, nt0) * nr;
  const int64_t nt = ceil_div(n, cols_per);

  // k is run a span of up to kAllK at a time (all of it in every product of a
  // training step but the dx of the vocab projection, k = vocab): a task packs every
  // k block of the span for a column block at once and runs the span's k blocks
  // inside each row block, so the row block's tiles of y stay in L2 from one k block
  // to the next instead of going out to L3 or memory and back once per k block — for
  // the vocab projection that is the tokens × vocab logits. Where k <= 2·kKc the
  // packed B is kept within one kKc × kNc block (L2); deeper it is up to kAllK × kNc
  // floats (6 MB) in L3. Against one k block at a time: 3-18% faster at the ~110M
  // model's products (k = 768..2048). Same blocks, same order per element: the same
  // bits.
  constexpr int64_t kAllK = 4096;
  const int64_t k_span = std::max(kb, kAllK / kb * kb);
  const int64_t nc_max = k > kb && k <= 2 * kKc ? std::min(kNc, kKc * kNc / k / nr * nr) : kNc;

  auto task = [&](int64_t t) {
    const int64_t i0 = (t / nt) * rows_per, i1 = std::min(m, i0 + rows_per);
    const int64_t j0 = (t % nt) * cols_per, j1 = std::min(n, j0 + cols_per);
    // The task's columns in the fewest blocks of at most nc_max, even to a panel.
    const int64_t n_blocks = ceil_div(j1 - j0, nc_max);
    const int64_t nc = ceil_div(ceil_div(j1 - j0, n_blocks), nr) * nr;
    // Packed B of a span: the i-th k block of the span starts at i·ku(kb)·nc.
    float* const bp = scratch(kScratchB, std::min(k, k_span) * nc);
    float* const c_edge = scratch(kScratchEdge, mr * nr);
    // Each block of A (rows × kc) is copied, rows padded to mr with zeros, so the
    // tiles read it from one contiguous L2 block: A [m, k] as [rows][kc] (rows kc
    // apart, not k: with k = 2048 or the vocab, rows 8 KiB or 128 KB apart fall into
    // the same L1/L2 sets and evict each other), A stored [k, m] as [kc][rows], which
    // tile_t reads like the stored A.
    float* const ap = scratch(kScratchA, kb * std::min(kMc, ceil_div(i1 - i0, mr) * mr));

    // The rows of a W panel as bf16 pairs, [nr][ku(kc)], before pack transposes them.
    float* const w_pairs = pairs && !pr.b_t ? scratch(kScratchPairs, nr * ku(kb)) : nullptr;
    auto pack_b = [&](int64_t jc, int64_t jn, int64_t pc, int64_t kc, float* block) {
      const int64_t kcu = ku(kc);
      for (int64_t q = 0; q < ceil_div(jn, nr); ++q) {
        float* out = block + q * nr * kcu;
        const int64_t rows = std::min(nr, jn - q * nr);
        if (pairs && pr.b_t) {
          const auto* src = static_cast<const float*>(pr.b) + pc * pr.ldb + jc + q * nr;
          for (int64_t u = 0; u < kcu; ++u)
            kr.interleave_pairs(src + 2 * u * pr.ldb, 2 * u + 1 < kc ? src + (2 * u + 1) * pr.ldb : nullptr,
                                rows, nr, out + u * nr);
        } else if (pairs) {
          for (int64_t r = 0; r < rows; ++r)
            kr.to_pairs(reinterpret_cast<const float*>(wb + (jc + q * nr + r) * wrb) + pc, kc,
                        w_pairs + r * kcu);
          kr.pack(w_pairs, DType::F32, kcu * static_cast<int64_t>(sizeof(float)), rows, 0, kcu, out);
        } else if (pr.b_t) {
          pack_b_transposed(static_cast<const float*>(pr.b), pr.ldb, jc + q * nr, rows, pc, kc, nr, out);
        } else {
          kr.pack(wb + (jc + q * nr) * wrb, pr.bt, wrb, rows, pc, kc, out);
        }
      }
    };
    // Rows [ic, ie) × columns [jc, jc + jn) of y, k block [pc, pc + kc), B packed at block.
    auto compute = [&](int64_t ic, int64_t ie, int64_t jc, int64_t jn, int64_t pc, int64_t kc,
                       const float* block) {
      const bool accumulate = pc > 0 || pr.accumulate, last = pc + kc == k;
      const int64_t lda_p = ceil_div(ie - ic, mr) * mr;
      const int64_t kcu = ku(kc);
      if (pairs && pr.a_t) {
        for (int64_t u = 0; u < kcu; ++u) {
          const float* even = pr.a + (pc + 2 * u) * pr.lda + ic;
          kr.interleave_pairs(even, 2 * u + 1 < kc ? even + pr.lda : nullptr, ie - ic, lda_p, ap + u * lda_p);
        }
      } else if (pairs) {
        for (int64_t i = ic; i < ie; ++i) kr.to_pairs(pr.a + i * pr.lda + pc, kc, ap + (i - ic) * kcu);
        std::fill(ap + (ie - ic) * kcu, ap + lda_p * kcu, 0.0f);
      } else if (pr.a_t) {
        for (int64_t p = 0; p < kc; ++p) {
          float* o = ap + p * lda_p;
          std::memcpy(o, pr.a + (pc + p) * pr.lda + ic, static_cast<size_t>(ie - ic) * sizeof(float));
          std::fill(o + (ie - ic), o + lda_p, 0.0f);
        }
      } else {
        for (int64_t i = ic; i < ie; ++i)
          std::memcpy(ap + (i - ic) * kc, pr.a + i * pr.lda + pc, static_cast<size_t>(kc) * sizeof(float));
        std::fill(ap + (ie - ic) * kc, ap + lda_p * kc, 0.0f);
      }
      for (int64_t q = 0; q < ceil_div(jn, nr); ++q) {
        const int64_t j = jc + q * nr, cols = std::min(nr, jn - q * nr);
        const float* b = block + q * nr * kcu;
        for (int64_t i = ic; i < ie; i += mr) {
          const int64_t rows = std::min(mr, ie - i);
          float* yt = y + i * ldy + j;
          // Where the tile reads A from in the copied block.
          const float* a = pr.a_t ? ap + (i - ic) : ap + (i - ic) * kcu;
          const int64_t lda = pr.a_t ? lda_p : kcu;
          if (rows == mr && cols == nr) {
            (pr.a_t ? kr.tile_t : kr.tile)(kcu, a, lda, b, yt, ldy, accumulate);
          } else {
            // An edge tile: rows past m are the block's zero rows, columns past n the
            // zero padding of the panel; the kernel writes into c_edge.
            if (accumulate)
              for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < cols; ++c) c_edge[r * nr + c] = yt[r * ldy + c];
            (pr.a_t ? kr.tile_t : kr.tile)(kcu, a, lda, b, c_edge, nr, accumulate);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < cols; ++c) yt[r * ldy + c] = c_edge[r * nr + c];
          }
          if (last && pr.bias)
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < cols; ++c) yt[r * ldy + c] += pr.bias[j + c];
        }
      }
    };

    for (int64_t jc = j0; jc < j1; jc += nc) {
      const int64_t jn = std::min(nc, j1 - jc);
      for (int64_t ks = 0; ks < k; ks += k_span) {
        const int64_t ke = std::min(k, ks + k_span);
        for (int64_t pc = ks; pc < ke; pc += kb)
          pack_b(jc, jn, pc, std::min(kb, k - pc), bp + (pc - ks) / kb * ku(kb) * nc);
        for (int64_t ic = i0; ic < i1; ic += kMc)
          for (int64_t pc = ks; pc < ke; pc += kb)
            compute(ic, std::min(i1, ic + kMc), jc, jn, pc, std::min(kb, k - pc),
                    bp + (pc - ks) / kb * ku(kb) * nc);
      }
    }
  };
  parallel_for(pool, mt * nt, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) task(t);
  });
}

}  // namespace

void matmul(const float* x, int64_t m, int64_t k, const void* w, DType wt, int64_t n,
            const float* bias, float* y, ThreadPool* pool) {
  run({x, false, k, w, wt, false, k, m, k, n, bias, y, n, false}, pool);
}

void gemm(const float* a, Layout a_layout, int64_t lda, const float* b, Layout b_layout,
          int64_t ldb, int64_t m, int64_t k, int64_t n, float* y, int64_t ldy, bool accumulate,
          ThreadPool* pool) {
  run({a, a_layout == Layout::kTransposed, lda, b, DType::F32, b_layout == Layout::kTransposed, ldb,
       m, k, n, nullptr, y, ldy, accumulate},
      pool);
}

void gemm(const float* a, Layout a_layout, const float* b, Layout b_layout, int64_t m, int64_t k,
          int64_t n, float* y, bool accumulate, ThreadPool* pool) {
  gemm(a, a_layout, a_layout == Layout::kTransposed ? m : k, b, b_layout,
       b_layout == Layout::kTransposed ? n : k, m, k, n, y, n, accumulate, pool);
}

}  // namespace hanul::cpu::gemm

namespace hanul::cpu {

bool bf16_matmul_supported() { return gemm::kernel_bf16() != nullptr; }

bool set_matmul_precision(MatmulPrecision p) {
  if (p == MatmulPrecision::kBf16 && !bf16_matmul_supported()) return false;
  gemm::g_precision.store(static_cast<int>(p), std::memory_order_relaxed);
  return true;
}

MatmulPrecision matmul_precision() {
  return static_cast<MatmulPrecision>(gemm::g_precision.load(std::memory_order_relaxed));
}

}  // namespace hanul::cpu
