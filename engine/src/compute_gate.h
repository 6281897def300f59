// Keeps inference batches and some retrainings from overlapping, as on one
// accelerator shared by both: every retraining in the `exclusive` context.
// A retraining that borrows the inference core for a deadline at risk
// takes precedence over inference: in the `exclusive` context (or with a
// share of 0) inference pauses while it runs; in the `concurrent` context
// inference keeps running but may compute for at most `borrowed_share` of
// the time the borrowing lasts (after a short burst allowance), so a light
// inference load is not paused for a whole retraining and a heavy one
// cannot slow the deadline's retraining much. A waiting retraining blocks
// new batches, so inference cannot starve it. Retrainings that share
// nothing pass at once. A retraining on an idle inference core (work
// conservation) passes at once too, but yields between mini-batches to an
// inference batch under way, until its deadline needs the core: then it
// enters as a borrowed retraining (RetrainOrder::promote_at).
#ifndef ERASER_ENGINE_SRC_COMPUTE_GATE_H_
#define ERASER_ENGINE_SRC_COMPUTE_GATE_H_

#include "eraser/common/clock.h"
#include "eraser/common/mutex.h"

namespace eraser::engine::internal {

class ComputeGate {
 public:
  // What inference may compute at once when a borrowing starts, before its
  // share applies: one batch.
  static constexpr Duration kBurst = std::chrono::milliseconds(10);

  // `exclusive`: every retraining excludes inference. `borrowed_share`, in
  // [0, 1): see above. `clock` outlives the gate.
  ComputeGate(bool exclusive, double borrowed_share, const Clock* clock)
      : exclusive_(exclusive), share_(borrowed_share), clock_(clock) {}

  // Returns when the inference batch may compute; pass what it returns to
  // ExitInference.
  TimePoint EnterInference() EXCLUDES(mu_);
  void ExitInference(TimePoint entered) EXCLUDES(mu_);
  // `borrowed`: this retraining takes precedence whatever the context.
  void EnterRetrain(bool borrowed) EXCLUDES(mu_);
  void ExitRetrain(bool borrowed) EXCLUDES(mu_);
  // For a retraining on an idle inference core, between mini-batches:
  // returns once the inference batch under way (if any) has ended, and the
  // time it waited. It waits out one batch, not a stream of them, so a
  // saturating load cannot starve the retraining.
  Duration YieldToInference() EXCLUDES(mu_);
  // Retrainings waiting in YieldToInference (for tests).
  int yielding() const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return yielding_;
  }

 private:
  // Whether a retraining with `borrowed` excludes inference outright.
  bool Excludes(bool borrowed) const {
    return exclusive_ || (borrowed && share_ <= 0);
  }

  const bool exclusive_;
  const double share_;
  const Clock* const clock_;
  mutable Mutex mu_;
  CondVar cv_;
  int yielding_ GUARDED_BY(mu_) = 0;
  uint64_t batches_ GUARDED_BY(mu_) = 0;  // inference batches that ended
  int inference_ GUARDED_BY(mu_) = 0;
  int retrains_ GUARDED_BY(mu_) = 0;  // excluding retrainings running
  int retrains_waiting_ GUARDED_BY(mu_) = 0;
  // Borrowed retrainings running beside inference, since when, and the
  // inference compute time since then.
  int borrowed_ GUARDED_BY(mu_) = 0;
  TimePoint borrow_start_ GUARDED_BY(mu_);
  Duration inference_busy_ GUARDED_BY(mu_) = Duration(0);
};

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_COMPUTE_GATE_H_
