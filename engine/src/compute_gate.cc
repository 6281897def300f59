#include "compute_gate.h"

namespace eraser::engine::internal {

void ComputeGate::EnterInference() {
  MutexLock lock(&mu_);
  while (retrains_ > 0 || retrains_waiting_ > 0) cv_.Wait(&mu_);
  ++inference_;
}

void ComputeGate::ExitInference() {
  {
    MutexLock lock(&mu_);
    --inference_;
  }
  cv_.SignalAll();
}

void ComputeGate::EnterRetrain(bool borrowed) {
  if (!exclusive_ && !borrowed) return;
  MutexLock lock(&mu_);
  ++retrains_waiting_;
  while (inference_ > 0) cv_.Wait(&mu_);
  --retrains_waiting_;
  ++retrains_;
}

void ComputeGate::ExitRetrain(bool borrowed) {
  if (!exclusive_ && !borrowed) return;
  {
    MutexLock lock(&mu_);
    --retrains_;
  }
  cv_.SignalAll();
}

}  // namespace eraser::engine::internal
