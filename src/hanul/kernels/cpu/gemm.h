// Internal to kernels/cpu: the cache-blocked, register-tiled GEMM that
// cpu::matmul uses for float weights (F32, F16, BF16) when m >= kMinRows —
// training's 2048-row matmuls and prompt processing.
//
// y[m, n] = x[m, k] · W[n, k]ᵀ (+ bias) in the loop order of BLIS (Van Zee & van
// de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS Functionality",
// 2015, fig. 2): for each block of NC weight rows and KC columns of k, the block of
// W is packed once, transposed and widened to float32, into NR-wide micro-panels
// (so the micro-kernel reads W with contiguous vector loads); the micro-kernel
// then sweeps MR-row tiles of x (its block copied contiguous, one broadcast per
// element) over each micro-panel, holding an MR × NR tile of y in registers for KC
// steps.
// k is taken a span of up to 4096 at a time: the W blocks of a span are packed at
// once and the span's k blocks run inside each row block, so y's tiles stay in L2
// between them (gemm.cpp).
//
// matmul_backward's products dx = dy·W and dW = dyᵀ·x have operands stored the
// other way round (W as [k, n], dy as [k, m]); gemm() takes them as they lie: a
// transposed W is packed from its rows (a plain copy, p by p), a transposed x block
// is copied into a [kc][rows] buffer that the micro-kernel's tile_t reads (and an x
// block by rows into a [rows][kc] one) — no transposed copy of the whole operand is
// ever made.
//
// The summation order of each y[i, j] is fixed by k alone: k is cut into
// k_blocks(k) blocks of k_block(k) (the last one shorter); the products are
// summed from zero with one fused multiply-add per k, in order, inside each
// block; block sums are added to y in block order (starting from y's old value
// when gemm() accumulates, from the first block sum otherwise); then the bias. Neither
// the tile a value lands in, nor m, n, the thread count, nor the split of work
// changes a bit, nor the layout the operands are stored in — and the AVX2 and
// AVX-512 kernels give identical results.
// The result is not the one of the row-dot path used for m < kMinRows (that
// sums k in vector lanes), so a row of a batch of >= kMinRows rows can differ
// from that row alone in the last bits.
#pragma once

#include <cstdint>

#include "hanul/tensor/dtype.h"

namespace hanul {
class ThreadPool;

namespace cpu::gemm {

// m from which cpu::matmul takes the GEMM. Below it the row-dot path keeps a row's
// result independent of m (small batches, micro-batches of a training step: the
// train tests compare 1 batch of 32 rows with 2 of 16 at 1e-6 after an AdamW step,
// which amplifies rounding differences in near-zero gradients).
constexpr int64_t kMinRows = 64;
// The most k per block (256 floats × the widest nr = 32 KiB of packed W per
// micro-panel, the size of L1).
constexpr int64_t kKc = 256;
// Up to this k, all of k is one block all the same (288 × 16 floats = 18 KiB a
// micro-panel on AVX2): a second block reads every y tile back and adds to it, and
// where y's rows are far apart (the logits, n = 32000) those tiles have left L2 by
// then. k = d_model = 288 of the 15M model in one block instead of 144 + 144: +3-8%
// on its k = 288 products at 2 threads (q/k/v/o and gate/up forward, their dx),
// neutral on the others and at the ~110M shapes (interleaved A/B, 16 rounds).
constexpr int64_t kKcOne = 320;
// How k is cut: into the fewest blocks of at most kKc, as even as they go (k = 600
// gives 3 × 200, not 256 + 256 + 88: a short block pays the load and store of the
// y tile for few products). Part of the numeric result, so a function of k alone,
// the same for every ISA.
inline int64_t k_blocks(int64_t k) { return k <= kKcOne ? 1 : (k + kKc - 1) / kKc; }
inline int64_t k_block(int64_t k) { return (k + k_blocks(k) - 1) / k_blocks(k); }

// A bf16 kernel (MatmulPrecision::kBf16, ops.h) has the same shape and the same
// driver: its tile, tile_t and pack take 32-bit units that each hold a PAIR of bf16
// values, elements p and p + 1 of k (p even, p in the low half), so "kc" counts pairs
// and every layout above holds pairs where the float kernel holds floats (a [rows][kc
// pairs] block, tile_t's [kc pairs][rows], the [kc pairs][nr] micro-panel: pack only
// moves 32-bit units, so it transposes pairs unchanged). Its multiply-add is
// vdpbf16ps: per lane acc = fma(a_odd, b_odd, acc), then acc = fma(a_even, b_even,
// acc), each one rounding, a result below FLT_MIN flushed to zero (checked bit for bit
// against the scalar reference in the test on Zen 4; Intel documents the same order and
// flushing, not checked here). The driver makes the pairs with to_pairs and
// interleave_pairs, which round float32 to bf16 to nearest even as vcvtneps2bf16
// does (denormals to zero), a block of k of odd length padded with a zero element.
struct Kernel {
  int64_t mr, nr;  // the register tile: mr rows of x by nr weight rows
  // c[r·ldc + j] = (accumulate ? c[r·ldc + j] : 0) + Σ_{p<kc} a[r·lda + p]·b[p·nr + j]
  // for r < mr, j < nr, the sum from zero with one fused multiply-add per p, in order.
  void (*tile)(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
               bool accumulate);
  // The same with a stored transposed: a[p·lda + r] in place of a[r·lda + p]. The
  // same products summed in the same order, so the same bits.
  void (*tile_t)(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                 bool accumulate);
  // out[p·nr + r] = float(W row r)[p0 + p] for p < kc, r < rows (<= nr), and 0 for
  // rows <= r < nr; row r of W starts at w + r·w_row_bytes. wt is F32, F16 or BF16.
  void (*pack)(const void* w, DType wt, int64_t w_row_bytes, int64_t rows, int64_t p0, int64_t kc,
               float* out);
  // bf16 kernels only (nullptr in the float ones), out and the units as 32-bit pairs:
  // to_pairs: out[u] = (bf16(src[2u]), bf16(src[2u + 1])) for u < ceil(n / 2), the
  // element past an odd n zero.
  void (*to_pairs)(const float* src, int64_t n, float* out);
  // interleave_pairs: out[j] = (bf16(even[j]), bf16(odd[j])) for j < n (odd may be
  // nullptr: zeros), out[j] = 0 for n <= j < n_pad.
  void (*interleave_pairs)(const float* even, const float* odd, int64_t n, int64_t n_pad, float* out);
};

extern const Kernel kScalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const Kernel kAvx2;
extern const Kernel kAvx512;
extern const Kernel kAvx512Bf16;
#endif

// The kernel of cpu::active_isa().
const Kernel& kernel();
// The kernel for a product of n columns: kernel(), or on AVX-512 the AVX2 one where its
// narrower tile pads n much less (n = 48: 48 columns instead of 64). The same bits.
const Kernel& kernel_for_columns(int64_t n);
// The bf16 kernel where the active ISA is AVX-512 and the CPU has AVX512_BF16, else
// nullptr.
const Kernel* kernel_bf16();

// Weight types the GEMM packs: F32, F16, BF16.
bool supports(DType wt);

// y = x · Wᵀ + bias with the GEMM, for any m >= 1 (cpu::matmul calls it for
// m >= kMinRows). wt must satisfy supports().
void matmul(const float* x, int64_t m, int64_t k, const void* w, DType wt, int64_t n,
            const float* bias, float* y, ThreadPool* pool);

// How an operand of gemm() is stored.
enum class Layout : uint8_t {
  kRows,        // a: [m, k] (a[i·k + p]);  b: [n, k] (b[j·k + p]) — as in matmul()
  kTransposed,  // a: [k, m] (a[p·m + i]);  b: [k, n] (b[p·n + j])
};

// y[i, j] (+)= Σ_p A[i, p]·B[j, p] for i < m, j < n, p < k, float32 operands stored
// as `a_layout` / `b_layout` say, in the summation order above; accumulate adds to
// y (its old value first), else overwrites it. For m >= 1, any layouts.
// dx += dy·W is gemm(dy, kRows, W, kTransposed, m, n, k, dx, true);
// dW += dyᵀ·x is gemm(dy, kTransposed, x, kTransposed, n, m, k, dW, true).
void gemm(const float* a, Layout a_layout, const float* b, Layout b_layout, int64_t m, int64_t k,
          int64_t n, float* y, bool accumulate, ThreadPool* pool);

// The same with the operands' rows `lda`, `ldb` and y's rows `ldy` elements apart
// (a stored row: of A [m, k] or [k, m], of B [n, k] or [k, n] as the layout says):
// one head's slice of an interleaved (tokens, heads, head_dim) tensor is an operand
// with rows n_heads·head_dim apart, so attention multiplies it where it lies. Each
// ld must be at least its row's length. The same bits as a contiguous copy.
void gemm(const float* a, Layout a_layout, int64_t lda, const float* b, Layout b_layout,
          int64_t ldb, int64_t m, int64_t k, int64_t n, float* y, int64_t ldy, bool accumulate,
          ThreadPool* pool);

// cpu::matmul without the GEMM: the row-dot path it takes for m < kMinRows, for
// every m. Only for bench_matmul's before/after figures and the tests.
void matmul_row_dots(const float* x, int64_t m, int64_t k, const void* w, DType wt, int64_t n,
                     const float* bias, float* y, ThreadPool* pool);

}  // namespace cpu::gemm
}  // namespace hanul
