#include "eraser/common/mutex.h"

namespace eraser {

void CondVar::Wait() {
  std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
  cv_.wait(lock);
  lock.release();
}

bool CondVar::WaitUntil(const Clock& clock, TimePoint deadline) {
  if (clock.Now() >= deadline) return false;
  std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
  clock.WaitUntil(cv_, lock, deadline);
  lock.release();
  return clock.Now() < deadline;
}

}  // namespace eraser
