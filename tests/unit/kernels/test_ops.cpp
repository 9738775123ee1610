// Every cpu:: kernel against its ref:: twin, on random inputs of random shapes
// with odd tails, on every instruction set this machine has (scalar, AVX2,
// AVX-512), and with 1 and 3 threads giving bit-identical results.
//
// Tolerances are rounding-error bounds, not fudge factors: two ways of summing
// k products in float32 each differ from the exact sum by at most γ_k·Σ|x_i w_i|
// (Higham, Accuracy and Stability of Numerical Algorithms, §3.1, γ_k ≈ k·u,
// u = 2^-24), so they differ from each other by at most 2·γ_k·Σ|x_i w_i|.
#include <gtest/gtest.h>

#include "kernel_test_util.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hanul/base/thread_pool.h"
#include "hanul/kernels/cpu/ops.h"
#include "hanul/kernels/ref/ops.h"
#include "hanul/tensor/half.h"
#include "hanul/tensor/quant_blocks.h"
#include "hanul/tensor/quantize.h"

namespace hanul {
namespace {

constexpr double kU = 1.0 / (1 << 24);  // unit roundoff of float32




std::vector<float> dequantize(DType t, const std::vector<uint8_t>& bytes, int64_t rows, int64_t k) {
  std::vector<float> out(static_cast<size_t>(rows * k));
  for (int64_t r = 0; r < rows; ++r) {
    Status st = dequantize_row(t, bytes.data() + r * row_bytes(t, k), out.data() + r * k, k);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  return out;
}

std::vector<uint8_t> quantize(DType t, const std::vector<float>& w, int64_t rows, int64_t k) {
  std::vector<uint8_t> out(static_cast<size_t>(rows * row_bytes(t, k)));
  for (int64_t r = 0; r < rows; ++r) {
    Status st = quantize_row(t, w.data() + r * k, out.data() + r * row_bytes(t, k), k);
    EXPECT_TRUE(st.ok()) << dtype_name(t) << ": " << st.message();
  }
  return out;
}

// Random blocks that exercise every code: random quant bytes (Q8_0 includes -128)
// with sane fp16 scales.
std::vector<uint8_t> random_blocks(std::mt19937& rng, DType t, int64_t rows, int64_t k) {
  std::vector<uint8_t> bytes(static_cast<size_t>(rows * row_bytes(t, k)));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  const int64_t nb = rows * k / block_size(t);
  for (int64_t b = 0; b < nb; ++b) {
    if (t == DType::Q8_0) reinterpret_cast<BlockQ8_0*>(bytes.data())[b].d = f32_to_fp16(scale(rng));
    if (t == DType::Q4_0) reinterpret_cast<BlockQ4_0*>(bytes.data())[b].d = f32_to_fp16(scale(rng));
    if (t == DType::Q4_K) {
      auto& blk = reinterpret_cast<BlockQ4_K*>(bytes.data())[b];
      blk.d = f32_to_fp16(scale(rng) * 0.1f);
      blk.dmin = f32_to_fp16(scale(rng) * 0.1f);
    }
  }
  return bytes;
}

// The activations as the integer kernels see them: through Q8_0 / Q8_K and back.
std::vector<float> round_trip_activations(DType wt, const std::vector<float>& x, int64_t m, int64_t k) {
  if (!cpu::matmul_quantizes_activations(wt)) return x;
  const DType act = wt == DType::Q4_K ? DType::Q8_K : DType::Q8_0;
  std::vector<uint8_t> q(static_cast<size_t>(m * row_bytes(act, k)));
  for (int64_t i = 0; i < m; ++i) {
    void* dst = q.data() + i * row_bytes(act, k);
    if (act == DType::Q8_K)
      cpu::quantize_row_q8_K(x.data() + i * k, static_cast<BlockQ8_K*>(dst), k);
    else
      cpu::quantize_row_q8_0(x.data() + i * k, static_cast<BlockQ8_0*>(dst), k);
  }
  return dequantize(act, q, m, k);
}

struct MatmulCase {
  DType wt;
  bool random_bytes;  // random blocks, else quantize_row of random floats
};

void check_matmul(DType wt, const std::vector<uint8_t>& w, const std::vector<float>& x, int64_t m,
                  int64_t k, int64_t n, bool with_bias, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << dtype_name(wt) << " m=" << m << " k=" << k << " n=" << n
                                  << " bias=" << with_bias);
  std::vector<float> bias = random_floats(rng, n);
  const float* b = with_bias ? bias.data() : nullptr;
  const std::vector<float> w_f = dequantize(wt, w, n, k);
  const std::vector<float> x_rt = round_trip_activations(wt, x, m, k);

  std::vector<float> y_ref(static_cast<size_t>(m * n)), y_cpu(y_ref.size()), y_cpu3(y_ref.size());
  ref::matmul(x_rt.data(), m, k, w.data(), wt, n, b, y_ref.data(), nullptr);
  ThreadPool pool1(1), pool3(3);
  cpu::matmul(x.data(), m, k, w.data(), wt, n, b, y_cpu.data(), &pool1);
  cpu::matmul(x.data(), m, k, w.data(), wt, n, b, y_cpu3.data(), &pool3);
  EXPECT_EQ(0, std::memcmp(y_cpu.data(), y_cpu3.data(), y_cpu.size() * sizeof(float)))
      << "result depends on the thread count";

  // Q4_K: each weight is d·sc·q − dmin·m, and the two sides round these two
  // terms differently, so the bound counts |dmin·m| <= |dmin|·63 as well.
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double mag = 0.0;
      double min_term = 0.0;
      if (wt == DType::Q4_K) {
        const auto* blocks = reinterpret_cast<const BlockQ4_K*>(w.data() + j * row_bytes(wt, k));
        for (int64_t bl = 0; bl < k / kQK_K; ++bl)
          min_term = std::max(min_term, 63.0 * std::fabs(fp16_to_f32(blocks[bl].dmin)));
      }
      for (int64_t l = 0; l < k; ++l)
        mag += std::fabs(x_rt[i * k + l]) * (std::fabs(w_f[j * k + l]) + min_term);
      const double tol = 2.0 * (k + 8) * kU * mag + (with_bias ? 2 * kU * std::fabs(bias[j]) : 0) + 1e-30;
      ASSERT_NEAR(y_cpu[i * n + j], y_ref[i * n + j], tol) << "at i=" << i << " j=" << j;
    }
  }
}

TEST(CpuOps, MatmulFloatWeights) {
  std::mt19937 rng(1);
  for_each_isa([&](cpu::Isa) {
    for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
      for (int64_t k : {1, 7, 16, 33, 64, 100, 257}) {
        for (int64_t m : {1, 2, 3, 17}) {
          const int64_t n = 1 + 2 * (rng() % 20);  // odd
          std::vector<float> wf = random_floats(rng, n * k);
          std::vector<uint8_t> w = quantize(wt, wf, n, k);
          check_matmul(wt, w, random_floats(rng, m * k), m, k, n, m % 2 == 1, rng);
        }
      }
    }
  });
}

TEST(CpuOps, MatmulQuantizedWeights) {
  std::mt19937 rng(2);
  for_each_isa([&](cpu::Isa) {
    for (DType wt : {DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
      for (int64_t blocks : {1, 2, 3, 5}) {
        const int64_t k = blocks * block_size(wt);
        for (int64_t m : {1, 2, 3, 17}) {
          const int64_t n = 1 + 2 * (rng() % 20);
          for (bool random_bytes : {true, false}) {
            std::vector<uint8_t> w = random_bytes ? random_blocks(rng, wt, n, k)
                                                  : quantize(wt, random_floats(rng, n * k), n, k);
            check_matmul(wt, w, random_floats(rng, m * k, -3.0f, 3.0f), m, k, n, m == 3, rng);
          }
        }
      }
    }
  });
}

// Types without an integer path: dequantize + float dot, still threaded.
TEST(CpuOps, MatmulFallbackWeights) {
  std::mt19937 rng(3);
  for_each_isa([&](cpu::Isa) {
    for (DType wt : {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q5_K,
                     DType::Q6_K}) {
      for (int64_t blocks : {1, 3}) {
        const int64_t k = blocks * block_size(wt);
        for (int64_t m : {1, 3}) {
          const int64_t n = 5;
          std::vector<uint8_t> w = quantize(wt, random_floats(rng, n * k), n, k);
          check_matmul(wt, w, random_floats(rng, m * k), m, k, n, true, rng);
        }
      }
    }
  });
}

TEST(CpuOps, MatmulLargeMatvecIsThreadIndependent) {
  std::mt19937 rng(4);
  const int64_t k = 512, n = 333;
  for (DType wt : {DType::F32, DType::Q4_0, DType::Q4_K}) {
    std::vector<uint8_t> w = quantize(wt, random_floats(rng, n * k), n, k);
    std::vector<float> x = random_floats(rng, 17 * k);
    for (int64_t m : {1, 17}) {
      std::vector<float> y1(static_cast<size_t>(m * n)), y3(y1.size()), y8(y1.size());
      ThreadPool p1(1), p3(3), p8(8);
      cpu::matmul(x.data(), m, k, w.data(), wt, n, nullptr, y1.data(), &p1);
      cpu::matmul(x.data(), m, k, w.data(), wt, n, nullptr, y3.data(), &p3);
      cpu::matmul(x.data(), m, k, w.data(), wt, n, nullptr, y8.data(), &p8);
      EXPECT_EQ(0, std::memcmp(y1.data(), y3.data(), y1.size() * 4)) << dtype_name(wt);
      EXPECT_EQ(0, std::memcmp(y1.data(), y8.data(), y1.size() * 4)) << dtype_name(wt);
      // Row i of a batch equals that row alone: batching never changes a token's result.
      std::vector<float> y_row(static_cast<size_t>(n));
      cpu::matmul(x.data() + (m - 1) * k, 1, k, w.data(), wt, n, nullptr, y_row.data(), &p3);
      EXPECT_EQ(0, std::memcmp(y_row.data(), y1.data() + (m - 1) * n, n * 4)) << dtype_name(wt);
    }
  }
}

TEST(CpuOps, RmsNorm) {
  std::mt19937 rng(5);
  for_each_isa([&](cpu::Isa) {
    for (int64_t n : {1, 7, 8, 64, 100, 4099}) {
      const int64_t rows = 3;
      std::vector<float> x = random_floats(rng, rows * n, -4, 4), w = random_floats(rng, n);
      std::vector<float> a(x.size()), b(x.size());
      ref::rmsnorm(a.data(), x.data(), w.data(), rows, n, 1e-5f);
      cpu::rmsnorm(b.data(), x.data(), w.data(), rows, n, 1e-5f);
      // Σx² in float: relative error <= n·u; 1/sqrt halves it; three products add 3u.
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_NEAR(a[i], b[i], (n + 8) * kU * std::fabs(a[i]) + 1e-30) << "n=" << n << " i=" << i;
    }
  });
}

TEST(CpuOps, Softmax) {
  std::mt19937 rng(6);
  for_each_isa([&](cpu::Isa) {
    for (int64_t n : {1, 7, 8, 33, 1000}) {
      const int64_t rows = 4;
      std::vector<float> x = random_floats(rng, rows * n, -20, 20);
      if (n > 1) x[0] = -INFINITY;  // a masked score (a row of only -inf has no softmax)
      if (n > 3) x[static_cast<size_t>(n + 2)] = -INFINITY;
      std::vector<float> a = x, b = x;
      ref::softmax(a.data(), rows, n);
      cpu::softmax(b.data(), rows, n);
      // exp within 2 ulp on each side, the sum within n·u, one scaling.
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_NEAR(a[i], b[i], (n + 8) * kU * std::fabs(a[i]) + 1e-37) << "n=" << n << " i=" << i;
      if (n > 3) {
        EXPECT_EQ(b[static_cast<size_t>(n + 2)], 0.0f);
      }
    }
  });
}

TEST(CpuOps, Swiglu) {
  std::mt19937 rng(7);
  for_each_isa([&](cpu::Isa) {
    for (int64_t n : {1, 7, 8, 33, 1001}) {
      std::vector<float> g = random_floats(rng, n, -30, 30), u = random_floats(rng, n, -3, 3);
      std::vector<float> a(static_cast<size_t>(n)), b(a.size());
      ref::swiglu(a.data(), g.data(), u.data(), n);
      cpu::swiglu(b.data(), g.data(), u.data(), n);
      // exp within 2 ulp on each side; 1 + e, the division and the product add 3u.
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_NEAR(a[i], b[i], 16 * kU * std::fabs(a[i]) + 1e-37) << "g=" << g[i];
    }
  });
}

TEST(CpuOps, Rope) {
  std::mt19937 rng(8);
  for_each_isa([&](cpu::Isa) {
    for (RopeLayout layout : {RopeLayout::kHalves, RopeLayout::kPairs}) {
      for (int head_dim : {2, 6, 16, 64, 128}) {
        const int64_t n_tokens = 5;
        const int n_heads = 3;
        std::vector<int32_t> pos(n_tokens);
        for (auto& p : pos) p = static_cast<int32_t>(rng() % 4096);
        std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));
        for (int j = 0; j < head_dim / 2; ++j)
          inv_freq[static_cast<size_t>(j)] = std::pow(10000.0f, -2.0f * j / head_dim);
        std::vector<float> x = random_floats(rng, n_tokens * n_heads * head_dim);
        std::vector<float> a = x, b = x;
        ref::rope(a.data(), n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout);
        cpu::rope(b.data(), n_tokens, n_heads, head_dim, pos.data(), inv_freq.data(), layout);
        // Same cos/sin; a·c − b·s rounded once or twice (FMA): within 2u·(|a|+|b|).
        for (size_t i = 0; i < a.size(); ++i)
          ASSERT_NEAR(a[i], b[i], 4 * kU * 2.0) << "head_dim=" << head_dim << " i=" << i;
      }
    }
  });
}

TEST(CpuOps, Attention) {
  std::mt19937 rng(9);
  for_each_isa([&](cpu::Isa) {
    for (int n_head_kv : {1, 2, 4}) {
      for (int head_dim : {4, 7, 64}) {
        // 17 and 70: the matrix-product path (attention_tiles::kMinTokens), 70 in two blocks.
        for (int64_t n_tokens : {1, 3, 5, 17, 70}) {
          for (int64_t pos0 : {0, 4}) {
            const int n_head = 4;
            const int64_t n_kv = pos0 + n_tokens + 2;  // two cache slots past the last query
            SCOPED_TRACE(testing::Message() << "kv=" << n_head_kv << " hd=" << head_dim
                                            << " t=" << n_tokens << " pos0=" << pos0);
            std::vector<float> q = random_floats(rng, n_tokens * n_head * head_dim, -2, 2);
            std::vector<float> k = random_floats(rng, n_kv * n_head_kv * head_dim, -2, 2);
            std::vector<float> v = random_floats(rng, n_kv * n_head_kv * head_dim);
            // The future must be masked: poison the slots no query may see.
            for (int64_t j = pos0 + n_tokens; j < n_kv; ++j)
              for (int64_t d = 0; d < n_head_kv * head_dim; ++d) {
                k[static_cast<size_t>(j * n_head_kv * head_dim + d)] = NAN;
                v[static_cast<size_t>(j * n_head_kv * head_dim + d)] = NAN;
              }
            const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
            std::vector<float> a(q.size()), b(q.size()), b3(q.size());
            ref::attention(a.data(), q.data(), n_tokens, k.data(), v.data(), n_kv, n_head, n_head_kv,
                           head_dim, pos0, scale, nullptr);
            ThreadPool p1(1), p3(3);
            cpu::attention(b.data(), q.data(), n_tokens, k.data(), v.data(), n_kv, n_head, n_head_kv,
                           head_dim, pos0, scale, &p1);
            cpu::attention(b3.data(), q.data(), n_tokens, k.data(), v.data(), n_kv, n_head,
                           n_head_kv, head_dim, pos0, scale, &p3);
            EXPECT_EQ(0, std::memcmp(b.data(), b3.data(), b.size() * 4));
            // |q·k|·scale <= 4·sqrt(head_dim): score error <= 2·head_dim·u·that; exp turns it
            // into a relative weight error, and the output is a convex combination of |v| <= 1.
            const double tol = (2.0 * head_dim * 4 * std::sqrt(head_dim) + n_kv + 16) * kU * 4;
            for (size_t i = 0; i < a.size(); ++i) {
              ASSERT_FALSE(std::isnan(b[i])) << "a masked NaN leaked into the output";
              ASSERT_NEAR(a[i], b[i], tol) << "i=" << i;
            }
          }
        }
      }
    }
  });
}

TEST(CpuOps, VectorHelpers) {
  std::mt19937 rng(10);
  for_each_isa([&](cpu::Isa) {
    for (int64_t n : {1, 9, 100}) {
      std::vector<float> a = random_floats(rng, n), b = random_floats(rng, n), out(a.size());
      double exact = 0.0, mag = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        exact += static_cast<double>(a[i]) * b[i];
        mag += std::fabs(a[i] * b[i]);
      }
      EXPECT_NEAR(cpu::dot(a.data(), b.data(), n), exact, (n + 2) * kU * mag);
      cpu::add(out.data(), a.data(), b.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(out[i], a[i] + b[i]);
      std::vector<float> y = b;
      cpu::axpy(y.data(), 0.5f, a.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], b[i] + 0.5f * a[i], 2 * kU * 2);
      cpu::scale(y.data(), 2.0f, n);  // exact in binary
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], 2 * (b[i] + 0.5f * a[i]), 4 * kU * 2);
    }
  });
}

}  // namespace
}  // namespace hanul
