// The `exclusive` execution context: inference batches and retrainings
// never overlap, as on one accelerator shared by both. A waiting
// retraining blocks new batches, so inference cannot starve it. In the
// `concurrent` context every call returns at once.
#ifndef ERASER_ENGINE_SRC_COMPUTE_GATE_H_
#define ERASER_ENGINE_SRC_COMPUTE_GATE_H_

#include <condition_variable>
#include <mutex>

#include "eraser/common/thread_annotations.h"

namespace eraser::engine::internal {

class ComputeGate {
 public:
  explicit ComputeGate(bool exclusive) : exclusive_(exclusive) {}

  void EnterInference();
  void ExitInference();
  void EnterRetrain();
  void ExitRetrain();

 private:
  const bool exclusive_;
  std::mutex mu_;
  std::condition_variable cv_;
  int inference_ GUARDED_BY(mu_) = 0;
  int retrains_ GUARDED_BY(mu_) = 0;
  int retrains_waiting_ GUARDED_BY(mu_) = 0;
};

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_COMPUTE_GATE_H_
