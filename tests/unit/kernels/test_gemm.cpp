// The float GEMM of kernels/cpu/gemm.h against ref::matmul on every instruction
// set this machine has: odd shapes around the tile sizes (mr × nr = 4 × 8, 6 × 16,
// 8 × 32) and the blocks (k in one block up to kKcOne = 320, else blocks of at most
// kKc = 256; 120 rows, 384 columns), k = 1, bias or not,
// F32 / F16 / BF16 weights; and the promises of gemm.h — each y[i, j] depends on
// neither the thread count, m, n, where the element falls in the tiles, nor the
// layout gemm() reads the operands in.
#include <gtest/gtest.h>

#include "kernel_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/gemm.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/ref/ops.h"
#include "hanul/tensor/half.h"
#include "hanul/tensor/quantize.h"

namespace hanul {
namespace {

constexpr double kU = 0x1p-24;  // unit roundoff of float32



// W [n, k] as dtype wt, and W as the float32 values it holds.
std::vector<uint8_t> weights(DType wt, const std::vector<float>& wf, int64_t n, int64_t k,
                             std::vector<float>* w_back) {
  std::vector<uint8_t> w(static_cast<size_t>(n * row_bytes(wt, k)));
  w_back->resize(wf.size());
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_TRUE(quantize_row(wt, wf.data() + j * k, w.data() + j * row_bytes(wt, k), k).ok());
    EXPECT_TRUE(dequantize_row(wt, w.data() + j * row_bytes(wt, k), w_back->data() + j * k, k).ok());
  }
  return w;
}

// y vs ref::matmul: both sides sum k products in float, each within γ_k·Σ|x·w| of
// the exact sum (Higham, Accuracy and Stability of Numerical Algorithms, §3.1), so
// they differ by at most 2·γ_k·Σ|x·w| plus an ulp of the bias add on each side.
void expect_near_ref(const std::vector<float>& y, const std::vector<float>& x,
                     const std::vector<uint8_t>& w, const std::vector<float>& w_f, DType wt,
                     int64_t m, int64_t k, int64_t n, const float* bias) {
  std::vector<float> y_ref(static_cast<size_t>(m * n));
  ref::matmul(x.data(), m, k, w.data(), wt, n, bias, y_ref.data(), nullptr);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double mag = 0;
      for (int64_t l = 0; l < k; ++l) mag += std::fabs(x[i * k + l] * w_f[j * k + l]);
      const double gamma = (k + 1) * kU / (1 - (k + 1) * kU);
      const double tol = 2 * gamma * mag + (bias ? 4 * kU * std::fabs(bias[j]) : 0) + 1e-30;
      ASSERT_NEAR(y[i * n + j], y_ref[i * n + j], tol) << "i=" << i << " j=" << j;
    }
}

// How k is cut: one block up to kKcOne, then the fewest blocks of at most kKc, as
// even as they go.
TEST(CpuGemm, KBlocks) {
  using cpu::gemm::k_block;
  using cpu::gemm::k_blocks;
  EXPECT_EQ(1, k_blocks(1));
  EXPECT_EQ(1, k_blocks(288));
  EXPECT_EQ(288, k_block(288));
  EXPECT_EQ(1, k_blocks(cpu::gemm::kKcOne));
  EXPECT_EQ(2, k_blocks(cpu::gemm::kKcOne + 1));
  EXPECT_EQ(161, k_block(321));
  EXPECT_EQ(3, k_blocks(768));
  EXPECT_EQ(256, k_block(768));
  EXPECT_EQ(3, k_blocks(600));
  EXPECT_EQ(200, k_block(600));
  EXPECT_EQ(8, k_blocks(2048));
}

TEST(CpuGemm, MatchesReferenceOnOddShapesAndIsThreadIndependent) {
  std::mt19937 rng(21);
  ThreadPool pool1(1), pool3(3);
  for_each_isa([&] {
    for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
      for (int64_t k : {1, 2, 7, 16, 255, 256, 257, 320, 321, 600}) {
        for (int trial = 0; trial < 4; ++trial) {
          const int64_t m = 1 + static_cast<int64_t>(rng() % 40);
          const int64_t n = 1 + static_cast<int64_t>(rng() % 70);
          const bool with_bias = trial % 2 == 0;
          SCOPED_TRACE(testing::Message() << dtype_name(wt) << " m=" << m << " k=" << k
                                          << " n=" << n << " bias=" << with_bias);
          std::vector<float> w_f;
          const auto w = weights(wt, random_floats(rng, n * k), n, k, &w_f);
          const auto x = random_floats(rng, m * k, -2, 2), b = random_floats(rng, n);
          const float* bias = with_bias ? b.data() : nullptr;
          std::vector<float> y1(static_cast<size_t>(m * n)), y3(y1.size());
          cpu::gemm::matmul(x.data(), m, k, w.data(), wt, n, bias, y1.data(), &pool1);
          cpu::gemm::matmul(x.data(), m, k, w.data(), wt, n, bias, y3.data(), &pool3);
          ASSERT_EQ(0, std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float)))
              << "result depends on the thread count";
          expect_near_ref(y1, x, w, w_f, wt, m, k, n, bias);
        }
      }
    }
  });
}

// Past the blocks: 130 rows (two row blocks of 120, an edge tile), 400 columns (on
// one thread two column blocks of at most 384, cut evenly), k = 600 (three k
// blocks of 200); on 2 threads the tasks split the columns instead.
TEST(CpuGemm, MatchesReferenceAcrossBlocks) {
  std::mt19937 rng(22);
  const int64_t m = 130, k = 600, n = 400;
  ThreadPool pool1(1), pool2(2);
  for_each_isa([&] {
    std::vector<float> w_f;
    const auto w = weights(DType::F32, random_floats(rng, n * k), n, k, &w_f);
    const auto x = random_floats(rng, m * k), b = random_floats(rng, n);
    std::vector<float> y(static_cast<size_t>(m * n)), y2(y.size());
    cpu::matmul(x.data(), m, k, w.data(), DType::F32, n, b.data(), y.data(), &pool1);
    cpu::matmul(x.data(), m, k, w.data(), DType::F32, n, b.data(), y2.data(), &pool2);
    ASSERT_EQ(0, std::memcmp(y.data(), y2.data(), y.size() * 4));
    expect_near_ref(y, x, w, w_f, DType::F32, m, k, n, b.data());
  });
}

// Small integers: every product and partial sum is an exact float, so whatever the
// order of summation the GEMM must equal the reference exactly.
TEST(CpuGemm, ExactOnSmallIntegers) {
  std::mt19937 rng(23);
  ThreadPool pool(3);
  for_each_isa([&] {
    for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
      const int64_t m = 37, k = 520, n = 45;
      std::vector<float> x(static_cast<size_t>(m * k)), wf(static_cast<size_t>(n * k)), b(n);
      for (auto& v : x) v = static_cast<float>(static_cast<int>(rng() % 15) - 7);
      for (auto& v : wf) v = static_cast<float>(static_cast<int>(rng() % 9) - 4);
      for (auto& v : b) v = static_cast<float>(static_cast<int>(rng() % 101) - 50);
      std::vector<float> w_f;
      const auto w = weights(wt, wf, n, k, &w_f);
      std::vector<float> y(static_cast<size_t>(m * n)), y_ref(y.size());
      cpu::matmul(x.data(), m, k, w.data(), wt, n, b.data(), y.data(), &pool);
      ref::matmul(x.data(), m, k, w.data(), wt, n, b.data(), y_ref.data(), nullptr);
      EXPECT_EQ(0, std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float))) << dtype_name(wt);
    }
  });
}

// A block of rows and columns computed on its own equals the same elements of a
// bigger product bit for bit: the rows start at another tile offset, the columns in
// another panel, and the task split differs — none of which may change a value.
TEST(CpuGemm, ElementsDependOnNeitherShapeNorTilingNorThreads) {
  std::mt19937 rng(24);
  const int64_t m = 75, k = 700, n = 90;
  const int64_t i0 = 5, ms = 33, j0 = 3, ns = 50;  // the sub-block
  for_each_isa([&] {
    for (DType wt : {DType::F32, DType::BF16}) {
      std::vector<float> w_f;
      const auto w = weights(wt, random_floats(rng, n * k), n, k, &w_f);
      const auto x = random_floats(rng, m * k), b = random_floats(rng, n);
      std::vector<float> y(static_cast<size_t>(m * n)), ys(static_cast<size_t>(ms * ns));
      for (int threads : {1, 2, 3, 8}) {
        ThreadPool pool(threads), pool_sub(11 - threads);
        cpu::gemm::matmul(x.data(), m, k, w.data(), wt, n, b.data(), y.data(), &pool);
        cpu::gemm::matmul(x.data() + i0 * k, ms, k, w.data() + j0 * row_bytes(wt, k), wt, ns,
                          b.data() + j0, ys.data(), &pool_sub);
        for (int64_t i = 0; i < ms; ++i)
          ASSERT_EQ(0, std::memcmp(ys.data() + i * ns, y.data() + (i0 + i) * n + j0, ns * 4))
              << dtype_name(wt) << " threads=" << threads << " row " << i;
      }
    }
  });
}

// cpu::matmul takes the GEMM from kMinRows rows on and the row dots below; both
// agree with the reference, and the row-dot path stays reachable for the bench.
TEST(CpuGemm, MatmulPathsAroundTheThreshold) {
  std::mt19937 rng(25);
  const int64_t k = 300, n = 41;
  ThreadPool pool(3);
  for (int64_t m : {cpu::gemm::kMinRows - 1, cpu::gemm::kMinRows}) {
    std::vector<float> w_f;
    const auto w = weights(DType::F32, random_floats(rng, n * k), n, k, &w_f);
    const auto x = random_floats(rng, m * k);
    std::vector<float> y(static_cast<size_t>(m * n)), y_dots(y.size()), y_gemm(y.size());
    cpu::matmul(x.data(), m, k, w.data(), DType::F32, n, nullptr, y.data(), &pool);
    cpu::gemm::matmul_row_dots(x.data(), m, k, w.data(), DType::F32, n, nullptr, y_dots.data(),
                               &pool);
    cpu::gemm::matmul(x.data(), m, k, w.data(), DType::F32, n, nullptr, y_gemm.data(), &pool);
    const auto& expected = m < cpu::gemm::kMinRows ? y_dots : y_gemm;
    EXPECT_EQ(0, std::memcmp(y.data(), expected.data(), y.size() * 4)) << "m=" << m;
    expect_near_ref(y_dots, x, w, w_f, DType::F32, m, k, n, nullptr);
  }
}

// The summation order gemm.h promises, written out with std::fma (correctly
// rounded, as the FMA instruction is): per block of k_block(k), a chain of fused
// multiply-adds from zero; block sums added in order; then the bias. The SIMD
// kernels must match it bit for bit (the portable kernel only where it has a
// hardware fma).
TEST(CpuGemm, SumsInTheDocumentedOrder) {
  std::mt19937 rng(27);
  ThreadPool pool(2);
  for_each_isa([&] {
#if !defined(FP_FAST_FMAF)
    if (cpu::active_isa() == cpu::Isa::kScalar) return;
#endif
    for (int64_t k : {1, 100, 256, 288, 601, 2048}) {
      const int64_t m = 41, n = 35;
      const auto w = random_floats(rng, n * k), x = random_floats(rng, m * k);
      const auto b = random_floats(rng, n);
      std::vector<float> y(static_cast<size_t>(m * n));
      cpu::gemm::matmul(x.data(), m, k, w.data(), DType::F32, n, b.data(), y.data(), &pool);
      const int64_t kb = cpu::gemm::k_block(k);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          float total = 0.0f;
          for (int64_t p0 = 0; p0 < k; p0 += kb) {
            float s = 0.0f;
            for (int64_t p = p0; p < std::min(k, p0 + kb); ++p)
              s = std::fma(x[i * k + p], w[j * k + p], s);
            total = p0 == 0 ? s : total + s;
          }
          total += b[j];
          ASSERT_EQ(total, y[i * n + j]) << "k=" << k << " i=" << i << " j=" << j;
        }
    }
  });
}

// out[c, r] = in[r, c] for in [rows, cols].
std::vector<float> transposed(const std::vector<float>& in, int64_t rows, int64_t cols) {
  std::vector<float> out(in.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
  return out;
}

// gemm() reads A and B in either layout; the layout changes no bit (the same
// products summed in the same order), so every combination equals matmul() on the
// operands transposed beforehand — past the row block (kMc = 120), the column block
// (n = 400: two blocks), k blocks (k = 340: both k blocks packed at once and run
// inside each row block), with edge tiles, on 1 and 3 threads (n = 2400: the
// 3-thread split cuts the columns first).
TEST(CpuGemm, EveryLayoutEqualsMatmulOnTransposedCopies) {
  std::mt19937 rng(28);
  using cpu::gemm::Layout;
  ThreadPool pool1(1), pool3(3);
  struct Shape {
    int64_t m, k, n;
  };
  for_each_isa([&] {
    for (Shape sh : {Shape{1, 1, 1}, Shape{5, 3, 17}, Shape{37, 340, 45}, Shape{130, 70, 400},
                     Shape{130, 340, 400}, Shape{64, 520, 33}, Shape{70, 40, 2400}}) {
      const int64_t m = sh.m, k = sh.k, n = sh.n;
      const auto a = random_floats(rng, m * k), b = random_floats(rng, n * k);
      const auto at = transposed(a, m, k), bt = transposed(b, n, k);
      std::vector<float> want(static_cast<size_t>(m * n));
      cpu::gemm::matmul(a.data(), m, k, b.data(), DType::F32, n, nullptr, want.data(), &pool1);
      for (Layout la : {Layout::kRows, Layout::kTransposed})
        for (Layout lb : {Layout::kRows, Layout::kTransposed}) {
          SCOPED_TRACE(testing::Message() << "m=" << m << " k=" << k << " n=" << n << " a_t="
                                          << (la == Layout::kTransposed)
                                          << " b_t=" << (lb == Layout::kTransposed));
          const float* ap = la == Layout::kRows ? a.data() : at.data();
          const float* bp = lb == Layout::kRows ? b.data() : bt.data();
          std::vector<float> y1(want.size(), 7.0f), y3(want.size(), -3.0f);
          cpu::gemm::gemm(ap, la, bp, lb, m, k, n, y1.data(), false, &pool1);
          cpu::gemm::gemm(ap, la, bp, lb, m, k, n, y3.data(), false, &pool3);
          ASSERT_EQ(0, std::memcmp(y1.data(), want.data(), y1.size() * 4));
          ASSERT_EQ(0, std::memcmp(y3.data(), want.data(), y3.size() * 4));
        }
      std::vector<uint8_t> w8(b.size() * 4);
      std::memcpy(w8.data(), b.data(), w8.size());
      expect_near_ref(want, a, w8, b, DType::F32, m, k, n, nullptr);
    }
  });
}

// With strides, every operand is a block of a wider matrix (its rows lda, ldb, ldy
// apart): the same bits as the contiguous product, and y's padding untouched.
TEST(CpuGemm, StridedOperandsGiveTheContiguousBits) {
  std::mt19937 rng(31);
  using cpu::gemm::Layout;
  ThreadPool pool1(1), pool3(3);
  // Rows of `rows` values `cols` long, stored `ld` apart; the gaps hold NaN, which
  // would spread into y if the GEMM read them.
  auto widen = [](const std::vector<float>& v, int64_t rows, int64_t cols, int64_t ld) {
    std::vector<float> w(static_cast<size_t>(rows * ld), std::nanf(""));
    for (int64_t r = 0; r < rows; ++r) std::copy_n(v.data() + r * cols, cols, w.data() + r * ld);
    return w;
  };
  for_each_isa([&] {
    struct Shape {
      int64_t m, k, n, pad;
    };
    for (Shape sh : {Shape{1, 1, 1, 1}, Shape{7, 48, 61, 5}, Shape{64, 48, 256, 240},
                     Shape{130, 340, 45, 3}, Shape{70, 600, 40, 17}}) {
      const int64_t m = sh.m, k = sh.k, n = sh.n, pad = sh.pad;
      const auto a = random_floats(rng, m * k), b = random_floats(rng, n * k);
      const auto at = transposed(a, m, k), bt = transposed(b, n, k);
      const auto y0 = random_floats(rng, m * n);
      for (bool accumulate : {false, true})
        for (Layout la : {Layout::kRows, Layout::kTransposed})
          for (Layout lb : {Layout::kRows, Layout::kTransposed}) {
            SCOPED_TRACE(testing::Message() << "m=" << m << " k=" << k << " n=" << n << " a_t="
                                            << (la == Layout::kTransposed) << " b_t="
                                            << (lb == Layout::kTransposed) << " acc=" << accumulate);
            const bool a_t = la == Layout::kTransposed, b_t = lb == Layout::kTransposed;
            const std::vector<float>& ac = a_t ? at : a;
            const std::vector<float>& bc = b_t ? bt : b;
            std::vector<float> want = y0;
            cpu::gemm::gemm(ac.data(), la, bc.data(), lb, m, k, n, want.data(), accumulate, &pool1);
            const int64_t a_rows = a_t ? k : m, a_cols = a_t ? m : k;
            const int64_t b_rows = b_t ? k : n, b_cols = b_t ? n : k;
            const auto aw = widen(ac, a_rows, a_cols, a_cols + pad);
            const auto bw = widen(bc, b_rows, b_cols, b_cols + pad + 1);
            for (ThreadPool* pool : {&pool1, &pool3}) {
              auto yw = widen(y0, m, n, n + pad + 2);
              const float sentinel = 12345.0f;
              for (int64_t i = 0; i < m; ++i)
                std::fill_n(yw.data() + i * (n + pad + 2) + n, pad + 2, sentinel);
              cpu::gemm::gemm(aw.data(), la, a_cols + pad, bw.data(), lb, b_cols + pad + 1, m, k, n,
                              yw.data(), n + pad + 2, accumulate, pool);
              for (int64_t i = 0; i < m; ++i) {
                ASSERT_EQ(0, std::memcmp(yw.data() + i * (n + pad + 2), want.data() + i * n, n * 4))
                    << "row " << i;
                for (int64_t j = n; j < n + pad + 2; ++j)
                  ASSERT_EQ(sentinel, yw[i * (n + pad + 2) + j]) << "padding of row " << i;
              }
            }
          }
    }
  });
}

// With accumulate, gemm() adds to y in the documented order: y's old value, then
// each k block's FMA chain from zero, in block order.
TEST(CpuGemm, AccumulateAddsBlockSumsToTheOldValueInOrder) {
  std::mt19937 rng(29);
  using cpu::gemm::Layout;
  ThreadPool pool(3);
  for_each_isa([&] {
#if !defined(FP_FAST_FMAF)
    if (cpu::active_isa() == cpu::Isa::kScalar) return;
#endif
    for (int64_t k : {1, 257, 330, 700}) {
      const int64_t m = 47, n = 29;
      const auto at = random_floats(rng, k * m), bt = random_floats(rng, k * n);
      const auto y0 = random_floats(rng, m * n);
      for (Layout la : {Layout::kRows, Layout::kTransposed}) {
        // The same A either way round: for kRows pass its transposed copy.
        const auto a_rows = transposed(at, k, m);
        std::vector<float> y = y0;
        cpu::gemm::gemm(la == Layout::kRows ? a_rows.data() : at.data(), la, bt.data(),
                        Layout::kTransposed, m, k, n, y.data(), true, &pool);
        const int64_t kb = cpu::gemm::k_block(k);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            float total = y0[i * n + j];
            for (int64_t p0 = 0; p0 < k; p0 += kb) {
              float s = 0.0f;
              for (int64_t p = p0; p < std::min(k, p0 + kb); ++p)
                s = std::fma(at[p * m + i], bt[p * n + j], s);
              total += s;
            }
            ASSERT_EQ(total, y[i * n + j]) << "k=" << k << " i=" << i << " j=" << j;
          }
      }
    }
  });
}

// The AVX2 and AVX-512 kernels sum in the same order (gemm.h), so they agree bit
// for bit; skipped where the machine has no AVX-512. n = 150 pads to 160 columns on
// either tile, so the AVX-512 run really takes the AVX-512 kernel (kernel_for_columns).
TEST(CpuGemm, Avx2AndAvx512AreBitIdentical) {
  if (cpu::detected_isa() < cpu::Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this machine";
  ASSERT_EQ(&cpu::gemm::kAvx512, &cpu::gemm::kernel_for_columns(150));
  std::mt19937 rng(26);
  const int64_t m = 53, k = 777, n = 150;
  ThreadPool pool(2);
  const auto w = random_floats(rng, n * k), x = random_floats(rng, m * k), b = random_floats(rng, n);
  std::vector<float> y2(static_cast<size_t>(m * n)), y5(y2.size());
  cpu::set_max_isa(cpu::Isa::kAvx2);
  cpu::gemm::matmul(x.data(), m, k, w.data(), DType::F32, n, b.data(), y2.data(), &pool);
  cpu::set_max_isa(cpu::Isa::kAvx512);
  cpu::gemm::matmul(x.data(), m, k, w.data(), DType::F32, n, b.data(), y5.data(), &pool);
  EXPECT_EQ(0, std::memcmp(y2.data(), y5.data(), y2.size() * 4));
}

// On AVX-512 the 16-wide AVX2 tile takes the products whose column count the 32-wide
// tile would pad by an eighth or more (attention's head_dim 48); elsewhere the ISA's own.
TEST(CpuGemm, KernelForColumnsPadsLess) {
  if (cpu::active_isa() != cpu::Isa::kAvx512) {
    EXPECT_EQ(&cpu::gemm::kernel(), &cpu::gemm::kernel_for_columns(48));
    GTEST_SKIP() << "no AVX-512 on this machine: one kernel for every n";
  }
  for (int64_t n : {1, 16, 33, 48, 80, 112})
    EXPECT_EQ(&cpu::gemm::kAvx2, &cpu::gemm::kernel_for_columns(n)) << n;
  for (int64_t n : {17, 32, 61, 64, 96, 150, 288, 768, 32000})
    EXPECT_EQ(&cpu::gemm::kAvx512, &cpu::gemm::kernel_for_columns(n)) << n;
}

// MatmulPrecision::kBf16 (ops.h): float32 operands rounded to bf16 (to nearest even,
// denormals to zero, as vcvtneps2bf16), k taken in pairs (p, p + 1) inside each
// k_block(k) block (an odd block's last pair padded with a zero), per pair
// s = fma(a[p+1], b[p+1], s) then s = fma(a[p], b[p], s) (vdpbf16ps), each result
// below FLT_MIN flushed to zero; block sums and the bias added as for float32. Every
// layout, stride and thread count gives these bits. The last case has partial sums in
// the denormal range: 2^-63·2^-64 twice is 2^-126 in float32 but 0 here.
float flush_denormal(float f) { return std::fabs(f) < 0x1p-126f ? std::copysign(0.0f, f) : f; }

float bf16_round(float f) { return bf16_to_f32(f32_to_bf16(flush_denormal(f))); }

float bf16_pairs_sum(const float* a, int64_t as, const float* b, int64_t bs, int64_t k, float y_old,
                     bool accumulate) {
  const int64_t kb = cpu::gemm::k_block(k);
  float total = y_old;
  for (int64_t p0 = 0; p0 < k; p0 += kb) {
    const int64_t p1 = std::min(k, p0 + kb);
    float s = 0.0f;
    for (int64_t p = p0; p < p1; p += 2) {
      if (p + 1 < p1) s = flush_denormal(std::fma(bf16_round(a[(p + 1) * as]), bf16_round(b[(p + 1) * bs]), s));
      s = flush_denormal(std::fma(bf16_round(a[p * as]), bf16_round(b[p * bs]), s));
    }
    total = p0 == 0 && !accumulate ? s : total + s;
  }
  return total;
}

TEST(CpuGemmBf16, SumsPairsInTheDocumentedOrderInEveryLayout) {
  if (!cpu::bf16_matmul_supported()) GTEST_SKIP() << "no AVX512_BF16 on this machine";
  std::mt19937 rng(41);
  using cpu::gemm::Layout;
  ThreadPool pool1(1), pool3(3);
  ASSERT_TRUE(cpu::set_matmul_precision(cpu::MatmulPrecision::kBf16));
  struct Shape {
    int64_t m, k, n;
    float scale = 1.0f;  // of both operands
  };
  for (Shape sh : {Shape{1, 1, 1}, Shape{5, 3, 17}, Shape{9, 33, 31}, Shape{37, 341, 45},
                   Shape{130, 70, 400}, Shape{64, 601, 33}, Shape{70, 40, 2400}, Shape{66, 2048, 40},
                   Shape{9, 33, 31, 0x1p-63f}}) {
    const int64_t m = sh.m, k = sh.k, n = sh.n;
    auto a = random_floats(rng, m * k), b = random_floats(rng, n * k);
    for (auto* v : {&a, &b})
      for (float& x : *v) x *= sh.scale;
    const auto at = transposed(a, m, k), bt = transposed(b, n, k);
    auto y0 = random_floats(rng, m * n);
    for (float& x : y0) x *= sh.scale * sh.scale;
    for (bool accumulate : {false, true})
      for (Layout la : {Layout::kRows, Layout::kTransposed})
        for (Layout lb : {Layout::kRows, Layout::kTransposed})
          for (ThreadPool* pool : {&pool1, &pool3}) {
            SCOPED_TRACE(testing::Message() << "m=" << m << " k=" << k << " n=" << n << " a_t="
                                            << (la == Layout::kTransposed) << " b_t="
                                            << (lb == Layout::kTransposed) << " acc=" << accumulate
                                            << " threads=" << pool->n_threads());
            std::vector<float> y = y0;
            cpu::gemm::gemm(la == Layout::kRows ? a.data() : at.data(), la,
                            lb == Layout::kRows ? b.data() : bt.data(), lb, m, k, n, y.data(), accumulate,
                            pool);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j)
                ASSERT_EQ(bf16_pairs_sum(a.data() + i * k, 1, b.data() + j * k, 1, k, y0[i * n + j], accumulate),
                          y[i * n + j])
                    << "i=" << i << " j=" << j;
          }
    // matmul() with float32 weights and a bias takes the same path.
    const auto bias = random_floats(rng, n);
    std::vector<float> y(static_cast<size_t>(m * n));
    cpu::gemm::matmul(a.data(), m, k, b.data(), DType::F32, n, bias.data(), y.data(), &pool3);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(bf16_pairs_sum(a.data() + i * k, 1, b.data() + j * k, 1, k, 0.0f, false) + bias[j],
                  y[i * n + j]);
  }
  ASSERT_TRUE(cpu::set_matmul_precision(cpu::MatmulPrecision::kFp32));
}

// kBf16 is refused where the active ISA has no bf16 kernel, and leaves the precision
// as it was; kFp32 is always accepted.
TEST(CpuGemmBf16, RefusedWithoutAvx512Bf16) {
  cpu::set_max_isa(cpu::Isa::kAvx2);
  EXPECT_FALSE(cpu::bf16_matmul_supported());
  EXPECT_FALSE(cpu::set_matmul_precision(cpu::MatmulPrecision::kBf16));
  EXPECT_EQ(cpu::MatmulPrecision::kFp32, cpu::matmul_precision());
  EXPECT_TRUE(cpu::set_matmul_precision(cpu::MatmulPrecision::kFp32));
  cpu::set_max_isa(cpu::Isa::kAvx512);
}

}  // namespace
}  // namespace hanul
