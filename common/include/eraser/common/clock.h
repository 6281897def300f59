// Clock: the injected source of time. Production code uses SystemClock; tests
// drive time-based decisions with a ManualClock instead of sleeping.
//
// Times are wall-clock time points (system_clock, nanosecond resolution)
// because they are persisted: a deletion's arrival time must still mean the
// same instant after a restart, so its deadline can be resumed. Latencies
// inside one process are measured with std::chrono::steady_clock directly.
#ifndef ERASER_COMMON_CLOCK_H_
#define ERASER_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace eraser {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::time_point<std::chrono::system_clock, Duration>;

// Microseconds since the Unix epoch, the persisted form of a TimePoint.
int64_t ToUnixMicros(TimePoint t);
TimePoint FromUnixMicros(int64_t micros);

class Clock {
 public:
  virtual ~Clock() = default;
  // The current time. Thread-safe.
  virtual TimePoint Now() const = 0;
};

// Reads std::chrono::system_clock.
class SystemClock final : public Clock {
 public:
  TimePoint Now() const override;
  // A process-wide instance; never destroyed.
  static SystemClock* Default();
};

// A clock that moves only when told. Thread-safe: one thread may advance it
// while others read it.
class ManualClock final : public Clock {
 public:
  // Starts at `start` (by default 2026-01-01T00:00:00Z, so that times print
  // as plausible dates).
  explicit ManualClock(TimePoint start = FromUnixMicros(1767225600000000));

  TimePoint Now() const override;
  // Moves the clock forward by `d` (d >= 0; a negative d is ignored).
  void Advance(Duration d);
  // Moves the clock to `t` if t is later than now; a clock never runs back.
  void AdvanceTo(TimePoint t);

 private:
  std::atomic<int64_t> nanos_;
};

}  // namespace eraser

#endif  // ERASER_COMMON_CLOCK_H_
