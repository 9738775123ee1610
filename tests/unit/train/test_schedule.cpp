#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "hanul/train/schedule.h"

namespace hanul {
namespace {

LrSchedule sched() { return LrSchedule{10, 110, 6e-4, 6e-5}; }

TEST(LrSchedule, Endpoints) {
  const LrSchedule s = sched();
  ASSERT_TRUE(s.validate().ok());
  EXPECT_DOUBLE_EQ(s.lr(0), 6e-4 / 10);  // first warm-up step: max_lr / warmup
  EXPECT_DOUBLE_EQ(s.lr(9), 6e-4);       // warm-up ends on max_lr
  EXPECT_DOUBLE_EQ(s.lr(10), 6e-4);      // decay starts at cos(0)
  EXPECT_DOUBLE_EQ(s.lr(110), 6e-5);     // decay ends at cos(π)
  EXPECT_DOUBLE_EQ(s.lr(111), 6e-5);     // then stays on min_lr
  EXPECT_DOUBLE_EQ(s.lr(1000000), 6e-5);
  EXPECT_DOUBLE_EQ(s.lr(-3), s.lr(0));
}

TEST(LrSchedule, MonotoneInEachPhase) {
  const LrSchedule s = sched();
  for (int64_t t = 1; t < 10; ++t) EXPECT_GT(s.lr(t), s.lr(t - 1)) << t;
  for (int64_t t = 11; t <= 110; ++t) EXPECT_LT(s.lr(t), s.lr(t - 1)) << t;
  for (int64_t t = 0; t < 200; ++t) {
    EXPECT_LE(s.lr(t), 6e-4) << t;
    EXPECT_GE(s.lr(t), s.lr(0) < 6e-5 ? s.lr(0) : 6e-5) << t;
  }
}

TEST(LrSchedule, ExactValues) {
  const LrSchedule s = sched();
  EXPECT_DOUBLE_EQ(s.lr(4), 6e-4 * 5 / 10);
  // Midpoint of the decay: cos(π/2) = 0, halfway between max and min.
  EXPECT_NEAR(s.lr(60), (6e-4 + 6e-5) / 2, 1e-18);
  // A quarter in: 0.5·(1 + cos(π/4)).
  EXPECT_DOUBLE_EQ(s.lr(35), 6e-5 + 0.5 * (1 + std::cos(std::numbers::pi * 0.25)) * (6e-4 - 6e-5));
  // Hand-computed: r = 0.9, coeff = 0.5·(1 + cos(0.9π)) = 0.024471741852423234.
  EXPECT_NEAR(s.lr(100), 6e-5 + 0.024471741852423234 * 5.4e-4, 1e-17);
}

TEST(LrSchedule, NoWarmupAndDegenerate) {
  const LrSchedule s{0, 100, 1.0, 0.0};
  EXPECT_DOUBLE_EQ(s.lr(0), 1.0);
  EXPECT_NEAR(s.lr(50), 0.5, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(100), 0.0);
  const LrSchedule flat{5, 5, 2.0, 1.0};  // warm-up only, then the floor
  EXPECT_DOUBLE_EQ(flat.lr(4), 2.0);
  EXPECT_DOUBLE_EQ(flat.lr(5), 2.0);
  EXPECT_DOUBLE_EQ(flat.lr(6), 1.0);
}

TEST(LrSchedule, ValidateRefusesBadSettings) {
  EXPECT_FALSE((LrSchedule{-1, 10, 1, 0}).validate().ok());
  EXPECT_FALSE((LrSchedule{20, 10, 1, 0}).validate().ok());
  EXPECT_FALSE((LrSchedule{0, 10, 1, 2}).validate().ok());
  EXPECT_FALSE((LrSchedule{0, 10, -1, -2}).validate().ok());
}

}  // namespace
}  // namespace hanul
