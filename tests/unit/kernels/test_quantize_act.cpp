// The activation quantizers must produce exactly ggml's blocks (tensor/quantize.h
// is bit-exact with ggml's reference quantizers and gguf-py).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "hanul/kernels/cpu/ops.h"
#include "hanul/tensor/quant_blocks.h"
#include "hanul/tensor/quantize.h"

namespace hanul {
namespace {

TEST(QuantizeActivations, Q8_0MatchesTensorQuantizer) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-5, 5);
  for (int64_t k : {32, 96, 4096}) {
    std::vector<float> x(static_cast<size_t>(k));
    for (auto& v : x) v = dist(rng);
    for (int l = 0; l < 32; ++l) x[static_cast<size_t>(l)] = 0.0f;  // an all-zero block
    std::vector<BlockQ8_0> a(static_cast<size_t>(k / 32)), b(a.size());
    cpu::quantize_row_q8_0(x.data(), a.data(), k);
    ASSERT_TRUE(quantize_row(DType::Q8_0, x.data(), b.data(), k).ok());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(BlockQ8_0))) << "k=" << k;
  }
}

TEST(QuantizeActivations, Q8_KMatchesTensorQuantizer) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> dist(-5, 5);
  for (int64_t k : {256, 768}) {
    std::vector<float> x(static_cast<size_t>(k));
    for (auto& v : x) v = dist(rng);
    std::vector<BlockQ8_K> a(static_cast<size_t>(k / 256)), b(a.size());
    cpu::quantize_row_q8_K(x.data(), a.data(), k);
    ASSERT_TRUE(quantize_row(DType::Q8_K, x.data(), b.data(), k).ok());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].d, b[i].d);
      EXPECT_EQ(0, std::memcmp(a[i].qs, b[i].qs, sizeof(a[i].qs)));
      EXPECT_EQ(0, std::memcmp(a[i].bsums, b[i].bsums, sizeof(a[i].bsums)));
    }
  }
}

}  // namespace
}  // namespace hanul
