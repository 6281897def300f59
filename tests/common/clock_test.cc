#include "eraser/common/clock.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace eraser {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock clock;
  const TimePoint start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(seconds(3));
  EXPECT_EQ(clock.Now() - start, seconds(3));
}

TEST(ManualClock, NeverRunsBackwards) {
  ManualClock clock(FromUnixMicros(1'000'000));
  clock.Advance(seconds(-5));
  EXPECT_EQ(ToUnixMicros(clock.Now()), 1'000'000);
  clock.AdvanceTo(FromUnixMicros(500'000));
  EXPECT_EQ(ToUnixMicros(clock.Now()), 1'000'000);
  clock.AdvanceTo(FromUnixMicros(2'500'000));
  EXPECT_EQ(ToUnixMicros(clock.Now()), 2'500'000);
}

TEST(ManualClock, ConcurrentAdvancesAllCount) {
  ManualClock clock(FromUnixMicros(0));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&clock] {
      for (int i = 0; i < 1000; ++i) clock.Advance(milliseconds(1));
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(clock.Now().time_since_epoch(), seconds(4));
}

TEST(SystemClock, IsCloseToChronoSystemClock) {
  const auto before = std::chrono::system_clock::now();
  const TimePoint now = SystemClock::Default()->Now();
  const auto after = std::chrono::system_clock::now();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

TEST(UnixMicros, RoundTrips) {
  const int64_t micros = 1'767'225'600'123'456;
  EXPECT_EQ(ToUnixMicros(FromUnixMicros(micros)), micros);
}

}  // namespace
}  // namespace eraser
