// Clock: the injected source of time. Production code uses SystemClock; tests
// drive time-based decisions with a ManualClock instead of sleeping. Every
// time the engine decides on (deadlines, batching delays, latencies) comes
// from its Clock; timed waits go through WaitUntil so that a ManualClock
// can end them.
//
// Times are wall-clock time points (nanoseconds since the Unix epoch)
// because they are persisted: a deletion's arrival time must still mean the
// same instant after a restart, so its deadline can be resumed.
#ifndef ERASER_COMMON_CLOCK_H_
#define ERASER_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace eraser {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::time_point<std::chrono::system_clock, Duration>;

// Microseconds since the Unix epoch, the persisted form of a TimePoint.
int64_t ToUnixMicros(TimePoint t);
TimePoint FromUnixMicros(int64_t micros);

class Clock {
 public:
  virtual ~Clock() = default;
  // The current time. Thread-safe; never goes back.
  virtual TimePoint Now() const = 0;
  // Waits on `cv` (`lock` held on entry and on return) until it is
  // notified or this clock reaches `deadline`. Thread-safe.
  virtual void WaitUntil(std::condition_variable& cv,
                         std::unique_lock<std::mutex>& lock,
                         TimePoint deadline) const = 0;
};

// Wall-clock time that never goes back: read from system_clock once, when
// the process first asks, and advanced by steady_clock from then on, so a
// wall-clock step (NTP) changes no deadline or latency while it runs.
class SystemClock final : public Clock {
 public:
  TimePoint Now() const override;
  void WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 TimePoint deadline) const override;
  // A process-wide instance; never destroyed.
  static SystemClock* Default();
};

// A clock that moves only when told. Thread-safe: one thread may advance it
// while others read it or wait on it. Advance must not run concurrently
// with the destruction of an object whose thread waits on this clock (tests
// advance from the thread that later destroys what they test).
class ManualClock final : public Clock {
 public:
  // Starts at `start` (by default 2026-01-01T00:00:00Z, so that times print
  // as plausible dates).
  explicit ManualClock(TimePoint start = FromUnixMicros(1767225600000000));

  TimePoint Now() const override;
  // Waits until notified, or until Advance moves the clock to `deadline`.
  void WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 TimePoint deadline) const override;
  // Moves the clock forward by `d` (d >= 0; a negative d is ignored) and
  // wakes every timed wait on it.
  void Advance(Duration d);
  // Moves the clock to `t` if t is later than now; a clock never runs back.
  void AdvanceTo(TimePoint t);
  // Timed waits in progress on this clock: lets a test wait until a thread
  // is blocked on a deadline before it advances past it.
  std::size_t waiters() const;

 private:
  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mu;
  };
  void WakeAll();

  std::atomic<int64_t> nanos_;
  mutable std::mutex waiters_mu_;
  mutable std::vector<Waiter> waiters_;
};

}  // namespace eraser

#endif  // ERASER_COMMON_CLOCK_H_
