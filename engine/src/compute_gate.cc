#include "compute_gate.h"

namespace eraser::engine::internal {

void ComputeGate::EnterInference() {
  if (!exclusive_) return;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return retrains_ == 0 && retrains_waiting_ == 0; });
  ++inference_;
}

void ComputeGate::ExitInference() {
  if (!exclusive_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --inference_;
  }
  cv_.notify_all();
}

void ComputeGate::EnterRetrain() {
  if (!exclusive_) return;
  std::unique_lock<std::mutex> lock(mu_);
  ++retrains_waiting_;
  cv_.wait(lock, [this] { return inference_ == 0; });
  --retrains_waiting_;
  ++retrains_;
}

void ComputeGate::ExitRetrain() {
  if (!exclusive_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --retrains_;
  }
  cv_.notify_all();
}

}  // namespace eraser::engine::internal
