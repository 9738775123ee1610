// fp16 / bf16 conversions: exhaustive over all 65536 bit patterns, and every
// round-to-nearest-even decision (ties, one float32 ulp either side).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "hanul/tensor/half.h"

namespace hanul {
namespace {

// IEEE binary16 decoded from its definition (sign, 5-bit exponent bias 15,
// 10-bit fraction), independently of half.h's bit shuffling.
double fp16_by_definition(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, frac = h & 1023;
  double v;
  if (exp == 0)
    v = std::ldexp(frac, -24);
  else if (exp == 31)
    v = frac ? NAN : INFINITY;
  else
    v = std::ldexp(1024 + frac, exp - 25);
  return sign ? -v : v;
}

TEST(Fp16, AllHalvesDecodeByDefinition) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = fp16_to_f32(static_cast<uint16_t>(h));
    const double want = fp16_by_definition(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(got), want) << std::hex << h;
    ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;  // -0.0 stays -0.0
  }
}

TEST(Fp16, AllHalvesRoundTripThroughFloat) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_f32(static_cast<uint16_t>(h));
    const uint16_t back = f32_to_fp16(f);
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {  // NaN stays NaN, sign kept
      EXPECT_EQ(back & 0x7c00, 0x7c00);
      EXPECT_NE(back & 0x3ff, 0);
      EXPECT_EQ(back & 0x8000, h & 0x8000);
      continue;
    }
    ASSERT_EQ(back, h) << std::hex << h;
  }
}

// For each pair of neighbouring finite halves (lo, lo+1) of both signs: the
// exact midpoint goes to the even one, and one float32 ulp either side of it
// goes to the nearer one. This covers subnormals, the normal/subnormal border
// and the carry into the next exponent.
TEST(Fp16, RoundsToNearestEvenAtEveryBoundary) {
  for (uint32_t lo = 0; lo < 0x7bff; ++lo) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const double a = fp16_by_definition(static_cast<uint16_t>(lo));
      const double b = fp16_by_definition(static_cast<uint16_t>(lo + 1));
      const float mid = static_cast<float>((a + b) / 2);  // exact: 11 bits + 1
      ASSERT_EQ(static_cast<double>(mid), (a + b) / 2);
      const float s = sign ? -1.0f : 1.0f;
      const uint16_t even = static_cast<uint16_t>((lo & 1) ? lo + 1 : lo);
      ASSERT_EQ(f32_to_fp16(s * mid), sign | even) << std::hex << lo;
      ASSERT_EQ(f32_to_fp16(s * std::nextafter(mid, 0.0f)), sign | lo) << std::hex << lo;
      ASSERT_EQ(f32_to_fp16(s * std::nextafter(mid, INFINITY)), sign | (lo + 1)) << std::hex << lo;
    }
  }
}

TEST(Fp16, OverflowUnderflowAndSpecials) {
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7bff);                        // max finite
  EXPECT_EQ(f32_to_fp16(std::nextafter(65520.0f, 0.0f)), 0x7bff);  // below the tie
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);                        // tie -> even = inf
  EXPECT_EQ(f32_to_fp16(1e30f), 0x7c00);
  EXPECT_EQ(f32_to_fp16(-1e30f), 0xfc00);
  EXPECT_EQ(f32_to_fp16(INFINITY), 0x7c00);
  EXPECT_EQ(f32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_EQ(f32_to_fp16(0x1p-25f), 0x0000);  // tie with 0 -> 0
  EXPECT_EQ(f32_to_fp16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_fp16(0x1.8p-24f), 0x0002);  // 1.5 ulp tie -> 2
  EXPECT_EQ(f32_to_fp16(1e-45f), 0x0000);      // float32 subnormal
  EXPECT_EQ(f32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_fp16(0.1f), 0x2e66);
  const uint16_t nan = f32_to_fp16(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x3ff, 0);
}

#if defined(__FLT16_MAX__) && (defined(__x86_64__) || defined(__aarch64__))
// The compiler's own _Float16 conversion (IEEE round to nearest even) as a
// second reference, on a spread of float32 bit patterns across the range.
TEST(Fp16, AgreesWithCompilerFloat16OnSampledFloats) {
  for (uint64_t u = 0; u < (1ull << 32); u += 4093) {
    const float f = f32_from_bits(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    ASSERT_EQ(f32_to_fp16(f), bits) << std::hex << u;
  }
}
#endif

TEST(Bf16, AllBf16DecodeToTheTopHalfOfAFloat) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    ASSERT_EQ(f32_bits(f), h << 16);
    if (!std::isnan(f)) {
      ASSERT_EQ(f32_to_bf16(f), h);
    }
  }
}

TEST(Bf16, RoundsToNearestEvenAtEveryBoundary) {
  for (uint32_t lo = 0; lo < 0x7f7f; ++lo) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const uint32_t mid = ((sign | lo) << 16) + 0x8000;
      const uint16_t even = static_cast<uint16_t>(sign | ((lo & 1) ? lo + 1 : lo));
      ASSERT_EQ(f32_to_bf16(f32_from_bits(mid)), even) << std::hex << lo;
      ASSERT_EQ(f32_to_bf16(f32_from_bits(mid - 1)), sign | lo) << std::hex << lo;
      ASSERT_EQ(f32_to_bf16(f32_from_bits(mid + 1)), sign | (lo + 1)) << std::hex << lo;
    }
  }
}

TEST(Bf16, SpecialsAndQuietNan) {
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-INFINITY), 0xff80);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7f7f8000u)), 0x7f80);  // max tie rounds to inf
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7f7f7fffu)), 0x7f7f);
  // A signalling NaN whose payload lies only in the dropped bits must not
  // become inf: GGML sets the quiet bit (64 in the bf16).
  const uint16_t snan = f32_to_bf16(f32_from_bits(0x7f800001u));
  EXPECT_EQ(snan, 0x7fc0);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0xffc00000u)), 0xffc0);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
}

}  // namespace
}  // namespace hanul
