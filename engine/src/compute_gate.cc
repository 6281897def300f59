#include "compute_gate.h"

#include <algorithm>

namespace eraser::engine::internal {

TimePoint ComputeGate::EnterInference() {
  MutexLock lock(&mu_);
  while (true) {
    if (retrains_ > 0 || retrains_waiting_ > 0) {
      cv_.Wait(&mu_);
      continue;
    }
    if (borrowed_ == 0) break;
    // Inference may have computed share_ of the time since the borrowing
    // began, plus one burst.
    const TimePoint now = clock_->Now();
    const Duration used = inference_busy_ - kBurst;
    const TimePoint allowed_at =
        borrow_start_ + std::chrono::duration_cast<Duration>(used / share_);
    if (now >= allowed_at) break;
    cv_.WaitUntil(&mu_, *clock_, allowed_at);
  }
  ++inference_;
  return clock_->Now();
}

void ComputeGate::ExitInference(TimePoint entered) {
  {
    MutexLock lock(&mu_);
    --inference_;
    ++batches_;
    if (borrowed_ > 0) {
      inference_busy_ += clock_->Now() - std::max(entered, borrow_start_);
    }
  }
  cv_.SignalAll();
}

void ComputeGate::EnterRetrain(bool borrowed) {
  if (Excludes(borrowed)) {
    MutexLock lock(&mu_);
    ++retrains_waiting_;
    while (inference_ > 0) cv_.Wait(&mu_);
    --retrains_waiting_;
    ++retrains_;
    return;
  }
  if (!borrowed) return;
  MutexLock lock(&mu_);
  if (borrowed_++ == 0) {
    borrow_start_ = clock_->Now();
    inference_busy_ = Duration(0);
  }
}

void ComputeGate::ExitRetrain(bool borrowed) {
  if (Excludes(borrowed)) {
    {
      MutexLock lock(&mu_);
      --retrains_;
    }
    cv_.SignalAll();
    return;
  }
  if (!borrowed) return;
  {
    MutexLock lock(&mu_);
    --borrowed_;
  }
  cv_.SignalAll();
}

Duration ComputeGate::YieldToInference() {
  MutexLock lock(&mu_);
  if (inference_ == 0) return Duration(0);
  const TimePoint start = clock_->Now();
  // Only the batch under way: a saturating inference load alternates with
  // the retraining batch by batch instead of starving it.
  const uint64_t seen = batches_;
  ++yielding_;
  while (inference_ > 0 && batches_ == seen) cv_.Wait(&mu_);
  --yielding_;
  return clock_->Now() - start;
}

}  // namespace eraser::engine::internal
