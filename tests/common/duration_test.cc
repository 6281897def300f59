#include "eraser/common/duration.h"

#include <gtest/gtest.h>

namespace eraser {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseDuration, Units) {
  EXPECT_EQ(*ParseDuration("30s"), seconds(30));
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*ParseDuration("2m"), minutes(2));
  EXPECT_EQ(*ParseDuration("1h"), hours(1));
  EXPECT_EQ(*ParseDuration("7us"), microseconds(7));
  EXPECT_EQ(*ParseDuration("0s"), Duration(0));
}

TEST(ParseDuration, RejectsMalformed) {
  for (const char* bad : {"", "s", "30", "30x", "-1s", "1..2s", ".s", "1e3s",
                          "30 s", "99999999h"}) {
    StatusOr<Duration> d = ParseDuration(bad);
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseDuration("30x").status().message().find("'30x'"),
            std::string::npos);
}

TEST(FormatDuration, ShortestExactForm) {
  EXPECT_EQ(FormatDuration(seconds(30)), "30s");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(minutes(2)), "2m");
  EXPECT_EQ(FormatDuration(hours(3)), "3h");
  EXPECT_EQ(FormatDuration(Duration(0)), "0s");
  for (const char* text : {"30s", "250ms", "2m", "1h", "7us"}) {
    EXPECT_EQ(FormatDuration(*ParseDuration(text)), text);
  }
}

}  // namespace
}  // namespace eraser
