#include "eraser/common/clock.h"

namespace eraser {

int64_t ToUnixMicros(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             t.time_since_epoch())
      .count();
}

TimePoint FromUnixMicros(int64_t micros) {
  return TimePoint(std::chrono::microseconds(micros));
}

TimePoint SystemClock::Now() const {
  return std::chrono::time_point_cast<Duration>(
      std::chrono::system_clock::now());
}

SystemClock* SystemClock::Default() {
  static SystemClock* const clock = new SystemClock();
  return clock;
}

ManualClock::ManualClock(TimePoint start)
    : nanos_(start.time_since_epoch().count()) {}

TimePoint ManualClock::Now() const {
  return TimePoint(Duration(nanos_.load(std::memory_order_acquire)));
}

void ManualClock::Advance(Duration d) {
  if (d.count() > 0) nanos_.fetch_add(d.count(), std::memory_order_acq_rel);
}

void ManualClock::AdvanceTo(TimePoint t) {
  const int64_t target = t.time_since_epoch().count();
  int64_t current = nanos_.load(std::memory_order_acquire);
  while (current < target && !nanos_.compare_exchange_weak(
                                 current, target, std::memory_order_acq_rel)) {
  }
}

}  // namespace eraser
