#include "eraser/common/clock.h"

#include <algorithm>

namespace eraser {

int64_t ToUnixMicros(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             t.time_since_epoch())
      .count();
}

TimePoint FromUnixMicros(int64_t micros) {
  return TimePoint(std::chrono::microseconds(micros));
}

namespace {

struct Anchor {
  TimePoint wall;
  std::chrono::steady_clock::time_point steady;
};

const Anchor& ProcessAnchor() {
  static const Anchor anchor{
      std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now()),
      std::chrono::steady_clock::now()};
  return anchor;
}

}  // namespace

TimePoint SystemClock::Now() const {
  const Anchor& a = ProcessAnchor();
  return a.wall + std::chrono::duration_cast<Duration>(
                      std::chrono::steady_clock::now() - a.steady);
}

void SystemClock::WaitUntil(std::condition_variable& cv,
                            std::unique_lock<std::mutex>& lock,
                            TimePoint deadline) const {
  const Duration left = deadline - Now();
  if (left <= Duration(0)) return;
  // At most a day per call: callers loop on their condition anyway.
  cv.wait_for(lock, std::min<Duration>(left, std::chrono::hours(24)));
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

void ManualClock::WaitUntil(std::condition_variable& cv,
                            std::unique_lock<std::mutex>& lock,
                            TimePoint deadline) const {
  // Registered before the time is read: an Advance after the read takes the
  // waiter's mutex before notifying, which it cannot get until wait()
  // releases it, so its wake-up is never lost.
  {
    std::lock_guard<std::mutex> w(waiters_mu_);
    waiters_.push_back({&cv, lock.mutex()});
  }
  if (Now() < deadline) cv.wait(lock);
  std::lock_guard<std::mutex> w(waiters_mu_);
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->cv == &cv && it->mu == lock.mutex()) {
      waiters_.erase(it);
      break;
    }
  }
}

std::size_t ManualClock::waiters() const {
  std::lock_guard<std::mutex> w(waiters_mu_);
  return waiters_.size();
}

void ManualClock::WakeAll() {
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> w(waiters_mu_);
    waiters = waiters_;
  }
  for (const Waiter& w : waiters) {
    std::lock_guard<std::mutex> lock(*w.mu);
    w.cv->notify_all();
  }
}

void ManualClock::Advance(Duration d) {
  if (d.count() > 0) nanos_.fetch_add(d.count(), std::memory_order_acq_rel);
  WakeAll();
}

void ManualClock::AdvanceTo(TimePoint t) {
  const int64_t target = t.time_since_epoch().count();
  int64_t current = nanos_.load(std::memory_order_acquire);
  while (current < target && !nanos_.compare_exchange_weak(
                                 current, target, std::memory_order_acq_rel)) {
  }
  WakeAll();
}

}  // namespace eraser
