// The multi-row dot products (simd::Kernels::dot4_*) that cpu::matmul uses for
// m > 1: on every instruction set, each of the 4 results is bit-identical to the
// single-row dot, and so a row of a batched matmul equals that row computed alone,
// whatever m is (m % 4 decides which rows take the 4-row path).
#include <gtest/gtest.h>

#include "kernel_test_util.h"

#include <cstring>
#include <random>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/cpu/simd.h"
#include "hanul/tensor/half.h"
#include "hanul/tensor/quant_blocks.h"
#include "hanul/tensor/quantize.h"

namespace hanul {
namespace {



std::vector<uint8_t> quantized(DType t, const std::vector<float>& w, int64_t rows, int64_t k) {
  std::vector<uint8_t> out(static_cast<size_t>(rows * row_bytes(t, k)));
  for (int64_t r = 0; r < rows; ++r) {
    Status st = quantize_row(t, w.data() + r * k, out.data() + r * row_bytes(t, k), k);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  return out;
}

TEST(CpuMatmulRows, Dot4EqualsFourSingleDotsBitForBit) {
  std::mt19937 rng(11);
  for_each_isa([&] {
    const cpu::simd::Kernels& kr = cpu::simd::kernels();
    // Float types: lengths with every tail (vector of 32 / 64, of 8 / 16, scalar).
    for (int64_t n : {1, 7, 8, 31, 33, 64, 100, 257, 1000}) {
      SCOPED_TRACE(n);
      const int64_t xs = n + 3;  // a stride longer than a row
      std::vector<float> x = random_floats(rng, 4 * xs), wf = random_floats(rng, n);
      std::vector<uint16_t> wh(static_cast<size_t>(n)), wb(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        wh[i] = f32_to_fp16(wf[i]);
        wb[i] = f32_to_bf16(wf[i]);
      }
      float out[4];
      kr.dot4_f32(x.data(), xs, wf.data(), n, out);
      for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], kr.dot_f32(x.data() + r * xs, wf.data(), n)) << r;
      kr.dot4_f16(x.data(), xs, wh.data(), n, out);
      for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], kr.dot_f16(x.data() + r * xs, wh.data(), n)) << r;
      kr.dot4_bf16(x.data(), xs, wb.data(), n, out);
      for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], kr.dot_bf16(x.data() + r * xs, wb.data(), n)) << r;
    }
    // Quantized types: odd and even block counts (the Q8_0 / Q4_0 loops take pairs).
    for (int64_t nb : {1, 2, 3, 8, 9}) {
      SCOPED_TRACE(nb);
      const int64_t k0 = nb * kQK8_0, xs0 = nb + 1;  // stride in blocks
      std::vector<BlockQ8_0> xq(static_cast<size_t>(4 * xs0));
      for (int r = 0; r < 4; ++r) cpu::quantize_row_q8_0(random_floats(rng, k0, -3.0f, 3.0f).data(), &xq[r * xs0], k0);
      auto w8 = quantized(DType::Q8_0, random_floats(rng, k0), 1, k0);
      auto w4 = quantized(DType::Q4_0, random_floats(rng, k0), 1, k0);
      const auto* w8p = reinterpret_cast<const BlockQ8_0*>(w8.data());
      const auto* w4p = reinterpret_cast<const BlockQ4_0*>(w4.data());
      float out[4];
      kr.dot4_q8_0(xq.data(), xs0, w8p, nb, out);
      for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], kr.dot_q8_0(&xq[r * xs0], w8p, nb)) << r;
      kr.dot4_q4_0(xq.data(), xs0, w4p, nb, out);
      for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], kr.dot_q4_0(&xq[r * xs0], w4p, nb)) << r;

      const int64_t kk = nb * kQK_K, xsk = nb + 2;
      std::vector<BlockQ8_K> xk(static_cast<size_t>(4 * xsk));
      for (int r = 0; r < 4; ++r) cpu::quantize_row_q8_K(random_floats(rng, kk, -3.0f, 3.0f).data(), &xk[r * xsk], kk);
      auto wk = quantized(DType::Q4_K, random_floats(rng, kk), 1, kk);
      const auto* wkp = reinterpret_cast<const BlockQ4_K*>(wk.data());
      kr.dot4_q4_K(xk.data(), xsk, wkp, nb, out);
      for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], kr.dot_q4_K(&xk[r * xsk], wkp, nb)) << r;
    }
  });
}

TEST(CpuMatmulRows, EveryRowOfABatchEqualsThatRowAlone) {
  std::mt19937 rng(12);
  ThreadPool pool(3);
  for_each_isa([&] {
    for (DType wt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
      const int64_t k = wt == DType::Q4_K ? 2 * kQK_K : (wt == DType::Q8_0 || wt == DType::Q4_0) ? 5 * 32 : 77;
      const int64_t n = 37, m = 9;  // 9 rows: two tiles of 4 and one single row
      auto w = quantized(wt, random_floats(rng, n * k), n, k);
      std::vector<float> x = random_floats(rng, m * k, -2.0f, 2.0f), bias = random_floats(rng, n);
      std::vector<float> y(static_cast<size_t>(m * n)), y1(static_cast<size_t>(n));
      cpu::matmul(x.data(), m, k, w.data(), wt, n, bias.data(), y.data(), &pool);
      for (int64_t i = 0; i < m; ++i) {
        cpu::matmul(x.data() + i * k, 1, k, w.data(), wt, n, bias.data(), y1.data(), &pool);
        EXPECT_EQ(0, std::memcmp(y1.data(), y.data() + i * n, n * sizeof(float)))
            << dtype_name(wt) << " row " << i;
      }
    }
  });
}

}  // namespace
}  // namespace hanul
