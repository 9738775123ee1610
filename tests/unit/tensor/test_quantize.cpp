// quantize_row / dequantize_row: golden blocks written by GGML itself, hand-built
// blocks, error messages, and round trips with error bounds derived per type.
// (tests/reference/check_quants.py compares with gguf-py on random data.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "hanul/tensor/half.h"
#include "hanul/tensor/quant_blocks.h"
#include "hanul/tensor/quantize.h"

namespace hanul {
namespace {

std::vector<uint8_t> read_fixture(const std::string& name) {
  std::ifstream f(std::string(HANUL_SOURCE_DIR) + "/tests/fixtures/quants/" + name,
                  std::ios::binary);
  EXPECT_TRUE(f) << name;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(static_cast<size_t>(row_bytes(t, static_cast<int64_t>(x.size()))));
  Status st = quantize_row(t, x.data(), out.data(), static_cast<int64_t>(x.size()));
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

std::vector<float> dequantize(DType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  Status st = dequantize_row(t, q.data(), out.data(), n);
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

const DType kWritable[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::Q2_K,
                           DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};

// --- GGML's own output ------------------------------------------------------

class GgmlGolden : public ::testing::TestWithParam<DType> {};

// The fixture blocks were written by ggml-quants.c's quantize_row_*_ref on the
// same input (tests/fixtures/README.md): hanul must produce the same bytes.
TEST_P(GgmlGolden, QuantizeIsByteIdenticalToGgml) {
  const DType t = GetParam();
  const auto raw = read_fixture("input.f32");
  ASSERT_EQ(raw.size(), 1024u * 4);
  std::vector<float> x(raw.size() / 4);
  std::memcpy(x.data(), raw.data(), raw.size());
  const auto expected = read_fixture("ggml_" + std::string(dtype_name(t)) + ".bin");
  const auto got = quantize(t, x);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(got[i], expected[i]) << dtype_name(t) << " byte " << i << " of " << got.size()
                                   << " (block " << i / dtype_info(t)->type_size << ")";
}

INSTANTIATE_TEST_SUITE_P(AllQuantized, GgmlGolden,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                           DType::Q8_0, DType::Q8_1, DType::Q2_K, DType::Q3_K,
                                           DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// --- Hand-computed blocks ------------------------------------------------------

TEST(QuantizeQ8_0, HandComputedBlockRoundsHalfAwayFromZero) {
  // amax 127 gives d = 1 exactly, so codes are C roundf(x): .5 goes away from
  // zero (0.5 -> 1, 2.5 -> 3), not to even as the K-quants do.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 0.5f;
  x[2] = 2.5f;
  x[3] = -2.5f;
  x[4] = -126.4f;
  x[5] = 1.49f;
  const auto q = quantize(DType::Q8_0, x);
  BlockQ8_0 b;
  std::memcpy(&b, q.data(), sizeof b);
  EXPECT_EQ(b.d, 0x3c00);  // 1.0
  const int expected[] = {127, 1, 3, -3, -126, 1};
  for (int j = 0; j < 6; ++j) EXPECT_EQ(b.qs[j], expected[j]) << j;
  for (int j = 6; j < 32; ++j) EXPECT_EQ(b.qs[j], 0);
}

TEST(QuantizeQ8_0, HandComputedScale) {
  // x_j = j - 16: amax 16, d = 16/127 = 0.12598.. -> fp16 0x3008 (0.1259765625);
  // codes round(x * 127/16) use the float32 d, not the fp16 one.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const auto q = quantize(DType::Q8_0, x);
  BlockQ8_0 b;
  std::memcpy(&b, q.data(), sizeof b);
  EXPECT_EQ(b.d, 0x3008);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[16], 0);
  EXPECT_EQ(b.qs[17], 8);    // 7.9375
  EXPECT_EQ(b.qs[18], 16);   // 15.875
  EXPECT_EQ(b.qs[20], 32);   // 31.75
  EXPECT_EQ(b.qs[31], 119);  // 119.0625
}

TEST(QuantizeQ4_0, HandComputedBlock) {
  // max = -8 (largest magnitude, signed) -> d = -8 / -8 = 1; code = trunc(x + 8.5)
  // clamped to 15; low nibble = element j, high nibble = element j + 16.
  std::vector<float> x(32);
  for (int j = 0; j < 16; ++j) x[j] = static_cast<float>(j - 8);
  const float second[16] = {0.4f, 0.5f, 0.6f, -0.5f, 7.9f, -7.9f, 3.49f, 3.5f,
                            0,    0,    0,    0,     0,    0,     0,     0};
  for (int j = 0; j < 16; ++j) x[16 + j] = second[j];
  const auto q = quantize(DType::Q4_0, x);
  BlockQ4_0 b;
  std::memcpy(&b, q.data(), sizeof b);
  EXPECT_EQ(b.d, 0x3c00);
  const int hi[16] = {8, 9, 9, 8, 15, 0, 11, 12, 8, 8, 8, 8, 8, 8, 8, 8};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(b.qs[j] & 0x0f, j) << j;
    EXPECT_EQ(b.qs[j] >> 4, hi[j]) << j;
  }
  const auto y = dequantize(DType::Q4_0, q, 32);
  EXPECT_EQ(y[0], -8.0f);
  EXPECT_EQ(y[16 + 4], 7.0f);  // 7.9 clamps to the largest code
}

TEST(DequantizeQ5_0, FifthBitComesFromQh) {
  BlockQ5_0 b{};
  b.d = 0x3800;  // 0.5
  // Element 0: low nibble 15, 5th bit set -> 31 - 16 = 15. Element 16: high
  // nibble 1, 5th bit (qh bit 16) clear -> 1 - 16 = -15. Element 31: 5th bit
  // (qh bit 31) set, nibble 0 -> 16 - 16 = 0.
  b.qs[0] = 0x1f;
  b.qh[0] = 0x01;
  b.qh[3] = 0x80;
  std::vector<uint8_t> raw(sizeof b);
  std::memcpy(raw.data(), &b, sizeof b);
  const auto y = dequantize(DType::Q5_0, raw, 32);
  EXPECT_EQ(y[0], 7.5f);
  EXPECT_EQ(y[16], -7.5f);
  EXPECT_EQ(y[31], 0.0f);
  EXPECT_EQ(y[1], -8.0f);  // code 0 -> -16 * 0.5
}

TEST(DequantizeQ4_K, SixBitScalesAndMinsPacking) {
  // Packing from ggml-common.h: bytes 0-3 hold scales 0-3 (6 bits) and the top
  // 2 bits of scales 4-7; bytes 4-7 the same for mins; bytes 8-11 the low
  // nibbles of scale 4-7 (low) and min 4-7 (high).
  const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
  const int mn[8] = {0, 5, 10, 63, 16, 31, 47, 62};
  BlockQ4_K b{};
  b.d = 0x3c00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
    b.scales[j + 4] = static_cast<uint8_t>(mn[j] | (mn[j + 4] >> 4) << 6);
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
  }
  // Sub-block j = 2k uses the low nibbles of qs[32k..], j = 2k+1 the high ones.
  for (int k = 0; k < 4; ++k)
    for (int l = 0; l < 32; ++l)
      b.qs[32 * k + l] = static_cast<uint8_t>((l % 16) | (15 - l % 16) << 4);
  std::vector<uint8_t> raw(sizeof b);
  std::memcpy(raw.data(), &b, sizeof b);
  const auto y = dequantize(DType::Q4_K, raw, 256);
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) {
      const int q = j % 2 == 0 ? l % 16 : 15 - l % 16;
      const float expected =
          static_cast<float>(sc[j]) * static_cast<float>(q) - 0.5f * static_cast<float>(mn[j]);
      ASSERT_EQ(y[32 * j + l], expected) << "sub-block " << j << " element " << l;
    }
  }
}

TEST(DequantizeQ6_K, LayoutAndSignedScales) {
  // Element e of each 128-half: ql nibble and qh bit pair as ggml-common.h
  // describes; code c(e) = e % 64 stored, value d * scale[e/16] * (c - 32).
  BlockQ6_K b{};
  b.d = 0x3400;  // 0.25
  for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<int8_t>(k - 8);
  auto code = [](int e) { return e % 64; };
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const int e = 128 * half + l;
      const int c0 = code(e), c1 = code(e + 32), c2 = code(e + 64), c3 = code(e + 96);
      b.ql[64 * half + l] = static_cast<uint8_t>((c0 & 15) | (c2 & 15) << 4);
      b.ql[64 * half + l + 32] = static_cast<uint8_t>((c1 & 15) | (c3 & 15) << 4);
      b.qh[32 * half + l] =
          static_cast<uint8_t>(c0 >> 4 | (c1 >> 4) << 2 | (c2 >> 4) << 4 | (c3 >> 4) << 6);
    }
  }
  std::vector<uint8_t> raw(sizeof b);
  std::memcpy(raw.data(), &b, sizeof b);
  const auto y = dequantize(DType::Q6_K, raw, 256);
  for (int e = 0; e < 256; ++e)
    ASSERT_EQ(y[e], 0.25f * static_cast<float>(e / 16 - 8) * static_cast<float>(code(e) - 32)) << e;
}

TEST(QuantizeKQuants, ZeroBlocksGiveZeros) {
  const std::vector<float> x(256 * 3, 0.0f);
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K,
                  DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1}) {
    const auto q = quantize(t, x);
    const auto y = dequantize(t, q, static_cast<int64_t>(x.size()));
    for (float v : y) ASSERT_EQ(v, 0.0f) << dtype_name(t);
  }
}

TEST(QuantizeQ8_K, BsumsAreSumsOfSixteenCodes) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist;
  std::vector<float> x(256 * 3);
  for (auto& v : x) v = dist(rng);
  const auto q = quantize(DType::Q8_K, x);
  for (int i = 0; i < 3; ++i) {
    BlockQ8_K b;
    std::memcpy(&b, q.data() + i * sizeof b, sizeof b);
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += b.qs[16 * g + k];
      EXPECT_EQ(b.bsums[g], sum);
    }
  }
}

TEST(QuantizeQ8_1, SumFieldIsScaleTimesCodeSum) {
  std::vector<float> x(64);
  for (int j = 0; j < 64; ++j) x[j] = std::sin(0.3f * static_cast<float>(j)) + 0.2f;
  const auto q = quantize(DType::Q8_1, x);
  for (int i = 0; i < 2; ++i) {
    BlockQ8_1 b;
    std::memcpy(&b, q.data() + i * sizeof b, sizeof b);
    int sum = 0;
    for (int8_t c : b.qs) sum += c;
    // s = fp16(sum * d) with the float32 d, so compare within fp16 rounding.
    const float d = fp16_to_f32(b.d);
    EXPECT_NEAR(fp16_to_f32(b.s), static_cast<float>(sum) * d,
                std::fabs(static_cast<float>(sum) * d) * 2e-3f + 1e-6f);
  }
}

TEST(QuantizeAnyType, NonFiniteInputIsNotUndefinedBehaviour) {
  // Weights with inf/NaN are garbage in, but quantizing them must not hit C++
  // UB (float -> int casts of NaN); the sanitizer build checks this test.
  std::vector<float> x(256 * 2, 1.0f);
  x[3] = NAN;
  x[100] = INFINITY;
  x[300] = -INFINITY;
  x[301] = 3e38f;
  for (DType t : kWritable) {
    const auto q = quantize(t, x);
    const auto y = dequantize(t, q, static_cast<int64_t>(x.size()));
    EXPECT_EQ(y.size(), x.size());
  }
}

// --- Errors ------------------------------------------------------------------------

TEST(QuantizeErrors, BadLengthNamesTheType) {
  std::vector<float> x(100);
  std::vector<uint8_t> buf(4096);
  Status st = quantize_row(DType::Q4_K, x.data(), buf.data(), 100);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("Q4_K"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("256"), std::string::npos) << st.message();
  std::vector<float> y(100);
  st = dequantize_row(DType::Q8_0, buf.data(), y.data(), 33);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("Q8_0"), std::string::npos) << st.message();
  st = dequantize_row(DType::F16, buf.data(), y.data(), -1);
  EXPECT_FALSE(st.ok());
}

TEST(QuantizeErrors, UnknownAndUnsupportedTypes) {
  std::vector<float> x(256);
  std::vector<uint8_t> buf(4096);
  Status st = dequantize_row(static_cast<DType>(99), buf.data(), x.data(), 256);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("99"), std::string::npos) << st.message();
  st = dequantize_row(DType::I32, buf.data(), x.data(), 256);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("I32"), std::string::npos) << st.message();
  st = quantize_row(DType::F64, x.data(), buf.data(), 256);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("F64"), std::string::npos) << st.message();
  st = quantize_row(static_cast<DType>(20), x.data(), buf.data(), 256);  // IQ4_NL in ggml
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("20"), std::string::npos) << st.message();
}

TEST(QuantizeErrors, CanQuantizeListsExactlyTheWritableTypes) {
  for (DType t : kWritable) EXPECT_TRUE(can_quantize(t)) << dtype_name(t);
  for (DType t :
       {DType::F64, DType::I8, DType::I16, DType::I32, DType::I64, static_cast<DType>(16)})
    EXPECT_FALSE(can_quantize(t));
  // Every writable type round-trips through quantize_row without an error.
  std::vector<float> x(256, 0.25f);
  for (DType t : kWritable) {
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(t, 256)));
    EXPECT_TRUE(quantize_row(t, x.data(), q.data(), 256).ok()) << dtype_name(t);
  }
}

TEST(Dequantize, F64NarrowsToFloat) {
  const double v[3] = {1.0, -2.5, 1e-300};
  std::vector<uint8_t> raw(sizeof v);
  std::memcpy(raw.data(), v, sizeof v);
  const auto y = dequantize(DType::F64, raw, 3);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.5f);
  EXPECT_EQ(y[2], 0.0f);
}

// --- Round trips -----------------------------------------------------------------------

// Per-block max-error bounds for the simple types, from their definitions.
// e16(v) = max(|v| * 2^-11, 2^-25) is fp16's rounding error for a stored d or
// m (relative for normal halves, absolute in fp16's subnormal range, which
// small weights reach: d = 2e-5 for |x| < 2.5e-3 in Q8_0).
//   Q8_0/Q8_1: d = amax/127, codes round(x/d): |err| <= d/2 + 127 * e16(d).
//   Q4_0: d = max/-8, codes in [-8, 7]; x = -max needs code 8 and is clamped
//     to 7, so |err| <= |d| + 8 * e16(d). Q5_0 likewise with 16.
//   Q4_1: d = (max-min)/15, |err| <= d/2 + 15 * e16(d) + e16(min); Q5_1 with 31.
//   Q8_K: d = amax/127 kept in float32: |err| <= d/2 (+ float rounding).
double e16(double v) { return std::max(std::fabs(v) / 2048, 0x1p-25); }

double simple_bound(DType t, const float* x, int n) {
  double amax = 0, mn = x[0], mx = x[0];
  for (int i = 0; i < n; ++i) {
    amax = std::max(amax, std::fabs(double{x[i]}));
    mn = std::min(mn, double{x[i]});
    mx = std::max(mx, double{x[i]});
  }
  const double slack = 1e-6 * amax + 1e-30;
  switch (t) {
    case DType::Q8_0:
    case DType::Q8_1:
      return amax / 127 / 2 + 127 * e16(amax / 127) + slack;
    case DType::Q8_K:
      return amax / 127 * 0.5 * (1 + 1e-5) + slack;
    case DType::Q4_0:
      return amax / 8 + 8 * e16(amax / 8) + slack;
    case DType::Q5_0:
      return amax / 16 + 16 * e16(amax / 16) + slack;
    case DType::Q4_1:
      return (mx - mn) / 15 / 2 + 15 * e16((mx - mn) / 15) + e16(mn) + slack;
    case DType::Q5_1:
      return (mx - mn) / 31 / 2 + 31 * e16((mx - mn) / 31) + e16(mn) + slack;
    default:
      return 0;
  }
}

std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(rng);
  return x;
}

TEST(RoundTrip, SimpleTypesStayWithinTheirPerBlockBound) {
  for (DType t : {DType::Q8_0, DType::Q8_1, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_K}) {
    const int qk = static_cast<int>(block_size(t));
    const int64_t n = qk * 37;  // an odd number of blocks
    for (uint32_t seed : {1u, 2u}) {
      auto x = gaussian(n, seed, seed == 1 ? 1.0f : 1e-3f);
      if (seed == 2) x[5] = 30.0f;  // an outlier in the first block
      const auto y = dequantize(t, quantize(t, x), n);
      for (int64_t b = 0; b < n / qk; ++b) {
        const double bound = simple_bound(t, x.data() + b * qk, qk);
        for (int j = 0; j < qk; ++j) {
          const int64_t i = b * qk + j;
          ASSERT_LE(std::fabs(double{x[i]} - y[i]), bound)
              << dtype_name(t) << " block " << b << " element " << j;
        }
      }
    }
  }
}

// The K-quants choose scales by a least-squares search, which bounds the error
// on average rather than per element, so their check is the RMS error of unit
// Gaussian data. Expected value: uniform quantization with step D has RMS
// error D/sqrt(12); D comes from each type's group size and levels:
//   Q6_K: 64 symmetric levels / 16: D ~ 2*E[max|x|] / 63 = 2*1.77/63 -> 0.016
//   Q5_K: 32 levels over the range of 32: D ~ 4.1/31 -> 0.038
//   Q4_K: 16 levels over the range of 32: D ~ 4.1/15 -> 0.079
//   Q3_K: 8 symmetric levels / 16: D ~ 2*1.77/7 -> 0.146
//   Q2_K: 4 levels over the range of 16 (min clamped to <= 0): D ~ 3.5/3 -> 0.34
// These estimates ignore the quantized sub-scales (8-, 6- or 4-bit) and the
// least-squares search; measured on this data: Q6_K 0.0177, Q5_K 0.0363,
// Q4_K 0.0710, Q3_K 0.153, Q2_K 0.294. The bounds allow 1.4x the estimate.
TEST(RoundTrip, KQuantsRmsErrorMatchesTheirBitWidth) {
  struct Case {
    DType t;
    double expected_rms;
  };
  const Case cases[] = {{DType::Q6_K, 0.016},
                        {DType::Q5_K, 0.038},
                        {DType::Q4_K, 0.079},
                        {DType::Q3_K, 0.146},
                        {DType::Q2_K, 0.34}};
  const int64_t n = 256 * 17;
  const auto x = gaussian(n, 42, 1.0f);
  double prev = 0;
  for (const Case& c : cases) {
    const auto y = dequantize(c.t, quantize(c.t, x), n);
    double se = 0;
    for (int64_t i = 0; i < n; ++i) se += (double{x[i]} - y[i]) * (double{x[i]} - y[i]);
    const double rms = std::sqrt(se / static_cast<double>(n));
    EXPECT_LT(rms, 1.4 * c.expected_rms) << dtype_name(c.t);
    EXPECT_GT(rms, prev) << dtype_name(c.t) << " should be coarser than the type before";
    prev = rms;
  }
}

TEST(RoundTrip, PlainTypes) {
  auto x = gaussian(1001, 3, 100.0f);
  x[0] = 1e-40f;    // subnormal float32
  x[1] = 70000.0f;  // beyond fp16's range
  const auto f32 = dequantize(DType::F32, quantize(DType::F32, x), 1001);
  EXPECT_EQ(f32, x);
  const auto f16 = dequantize(DType::F16, quantize(DType::F16, x), 1001);
  const auto bf16 = dequantize(DType::BF16, quantize(DType::BF16, x), 1001);
  EXPECT_TRUE(std::isinf(f16[1]));
  for (int i = 2; i < 1001; ++i) {
    // Round to nearest: half an ulp, 2^-11 relative for fp16, 2^-8 for bf16
    // (plus fp16's subnormal spacing 2^-24 near zero).
    EXPECT_LE(std::fabs(f16[i] - x[i]), std::fabs(x[i]) / 2048 + 0x1p-25f) << i;
    EXPECT_LE(std::fabs(bf16[i] - x[i]), std::fabs(x[i]) / 256) << i;
  }
}

}  // namespace
}  // namespace hanul
