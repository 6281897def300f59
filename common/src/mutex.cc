#include "eraser/common/mutex.h"

namespace eraser {

void CondVar::Wait(Mutex* mu) {
  std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
  cv_.wait(lock);
  lock.release();
}

bool CondVar::WaitUntil(Mutex* mu, const Clock& clock, TimePoint deadline) {
  if (clock.Now() >= deadline) return false;
  std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
  clock.WaitUntil(cv_, lock, deadline);
  lock.release();
  return clock.Now() < deadline;
}

}  // namespace eraser
