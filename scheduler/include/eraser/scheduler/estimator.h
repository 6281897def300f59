// How long a retraining will hold its slot, from the measured distribution
// of past ones, for planning deadlines.
//
// The bound: a retraining's time is t = o + r * w for work w (sample-epochs),
// a fixed overhead o >= 0 (apply, compaction) and a rate r, so t grows with
// w and t / w falls with it. A measured (w_i, t_i) then bounds any w from
// above by t_i * max(1, w / w_i). The plan takes the largest such bound over
// the recent measurements (the tail of the distribution, not its mean: one
// slow retraining under contention moves every plan for the next `window`
// retrainings) times a safety factor.
#ifndef ERASER_SCHEDULER_ESTIMATOR_H_
#define ERASER_SCHEDULER_ESTIMATOR_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "eraser/common/clock.h"
#include "eraser/common/status.h"

namespace eraser::scheduler {

// The rate assumed when nothing better is known: an ensemble trained before
// eraser recorded each model's cost, with the default MLP's cost on a fast
// machine.
inline constexpr double kFallbackSecondsPerSampleEpoch = 1e-5;

struct EstimatorOptions {
  // Seconds per sample-epoch assumed before retrainings are measured (and
  // kept in the bound until `window` have been). 0, the default, means the
  // model's own cost: the engine puts the one `eraser train` measured here
  // (unlearning::ModelCost); an Estimator left with 0 assumes
  // kFallbackSecondsPerSampleEpoch.
  double initial_seconds_per_sample_epoch = 0;
  // Measurements kept, newest first.
  std::size_t window = 32;
  // The planned time is the measured bound times this factor...
  double safety = 1.25;
  // ...plus this margin before the deadline.
  Duration margin = std::chrono::seconds(1);

  // The one validator (the Core's and the engine's options hold these):
  // kInvalidArgument naming the field after `prefix`.
  Status Validate(const std::string& prefix) const;
  // initial_seconds_per_sample_epoch, or the fallback when it is 0.
  double InitialRate() const;
};

class Estimator {
 public:
  explicit Estimator(const EstimatorOptions& options) : options_(options) {}

  // A retraining of `sample_epochs` held its slot for `held`.
  void Observe(uint64_t sample_epochs, Duration held);
  // Seconds to plan for a retraining of `sample_epochs`: the largest bound
  // of the window times the safety factor.
  double Plan(uint64_t sample_epochs) const;
  // The mean over the window of t_i / w_i, times `sample_epochs`: a typical
  // (not a planning) estimate.
  double Typical(uint64_t sample_epochs) const;
  std::size_t measurements() const { return samples_.size(); }
  const EstimatorOptions& options() const { return options_; }

 private:
  struct Sample {
    uint64_t work;
    double seconds;
  };
  const EstimatorOptions options_;
  std::deque<Sample> samples_;  // newest first, at most `window`
};

}  // namespace eraser::scheduler

#endif  // ERASER_SCHEDULER_ESTIMATOR_H_
