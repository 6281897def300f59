// Keeps inference batches and some retrainings from overlapping, as on one
// accelerator shared by both: every retraining in the `exclusive` context,
// and, in either context, a retraining that borrows the inference core for
// a deadline at risk. A waiting retraining blocks new batches, so inference
// cannot starve it. Retrainings that share nothing pass at once.
#ifndef ERASER_ENGINE_SRC_COMPUTE_GATE_H_
#define ERASER_ENGINE_SRC_COMPUTE_GATE_H_

#include "eraser/common/mutex.h"

namespace eraser::engine::internal {

class ComputeGate {
 public:
  // `exclusive`: every retraining excludes inference.
  explicit ComputeGate(bool exclusive) : exclusive_(exclusive) {}

  void EnterInference() EXCLUDES(mu_);
  void ExitInference() EXCLUDES(mu_);
  // `borrowed`: this retraining excludes inference whatever the context.
  void EnterRetrain(bool borrowed) EXCLUDES(mu_);
  void ExitRetrain(bool borrowed) EXCLUDES(mu_);

 private:
  const bool exclusive_;
  Mutex mu_;
  CondVar cv_;
  int inference_ GUARDED_BY(mu_) = 0;
  int retrains_ GUARDED_BY(mu_) = 0;
  int retrains_waiting_ GUARDED_BY(mu_) = 0;
};

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_COMPUTE_GATE_H_
