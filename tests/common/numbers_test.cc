#include "eraser/common/numbers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "eraser/common/duration.h"
#include "eraser/common/random.h"
#include "testing/comma_locale.h"

namespace eraser {
namespace {

TEST(ParseDouble, DecimalNumbers) {
  const struct {
    const char* text;
    double value;
  } cases[] = {{"0", 0},      {"1.5", 1.5}, {"-2", -2},     {"+0.25", 0.25},
               {".5", 0.5},   {"5.", 5},    {"1e-3", 1e-3}, {"2.5E+2", 250},
               {"1e-400", 0}, {"0.1", 0.1}};
  for (const auto& c : cases) {
    double v = -7;
    EXPECT_TRUE(ParseDouble(c.text, &v)) << c.text;
    EXPECT_EQ(v, c.value) << c.text;
  }
  double v = 0;
  ASSERT_TRUE(ParseDouble("4.9e-324", &v));  // the least subnormal
  EXPECT_EQ(v, std::numeric_limits<double>::denorm_min());
}

TEST(ParseDouble, RefusesEverythingElseAndLeavesTheOutput) {
  for (const char* bad :
       {"",     " 1",  "1 ",    "+",      "-",    "+-1",  "++1",
        "--1",  ".",   "e5",    "1e",     "1,5",  "0x10", "inf",
        "-inf", "nan", "1e400", "-1e400", "1.5s", "1..2"}) {
    double v = -7;
    EXPECT_FALSE(ParseDouble(bad, &v)) << bad;
    EXPECT_EQ(v, -7) << bad;
  }
}

// The same text as printf in the C locale, over random values of every
// magnitude, and ParseDouble reads back what %.17g wrote.
TEST(FormatDouble, AsPrintfInTheCLocale) {
  Rng rng(3);
  for (int i = 0; i < 2000; ++i) {
    const double v = (rng.UniformDouble() - 0.5) *
                     std::pow(10.0, static_cast<int>(rng.Uniform(40)) - 20);
    for (int precision : {3, 6, 9, 17}) {
      char g[64];
      std::snprintf(g, sizeof(g), "%.*g", precision, v);
      EXPECT_EQ(FormatDouble(v, precision), g);
    }
    char f[128];
    std::snprintf(f, sizeof(f), "%.3f", v);
    EXPECT_EQ(FormatFixed(v, 3), f);
    double back = 0;
    ASSERT_TRUE(ParseDouble(FormatDouble(v, 17), &back));
    EXPECT_EQ(back, v);
  }
}

// A program embedding eraser may set a locale whose decimal separator is a
// comma; strtod and printf follow it, these do not.
TEST(Numbers, WhateverTheCLocale) {
  testing::CommaDecimalLocale german;
  ASSERT_TRUE(german.active());
  double v = 0;
  ASSERT_TRUE(ParseDouble("1.5", &v));
  EXPECT_EQ(v, 1.5);
  EXPECT_FALSE(ParseDouble("1,5", &v));
  ASSERT_TRUE(ParseDouble("1e-400", &v));  // the strtod fallback
  EXPECT_EQ(v, 0);
  EXPECT_EQ(FormatDouble(0.05, 17), "0.050000000000000003");
  EXPECT_EQ(FormatFixed(12.5, 3), "12.500");
  StatusOr<Duration> d = ParseDuration("1.5s");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, std::chrono::milliseconds(1500));
}

}  // namespace
}  // namespace eraser
