#include "eraser/scheduler/estimator.h"

#include <algorithm>
#include <cmath>

namespace eraser::scheduler {

Status EstimatorOptions::Validate(const std::string& prefix) const {
  auto field = [&prefix](const char* name, const char* rule) {
    return InvalidArgumentError(prefix + name + " " + rule);
  };
  if (!(initial_seconds_per_sample_epoch >= 0) ||
      !std::isfinite(initial_seconds_per_sample_epoch)) {
    return field("initial_seconds_per_sample_epoch",
                 "must be positive, or 0 for the model's measured cost");
  }
  if (window < 1 || window > 4096) return field("window", "must be in 1..4096");
  if (!(safety >= 1 && safety <= 100)) {
    return field("safety", "must be in 1..100");
  }
  if (margin < Duration(0)) return field("margin", "must not be negative");
  return OkStatus();
}

double EstimatorOptions::InitialRate() const {
  return initial_seconds_per_sample_epoch > 0 ? initial_seconds_per_sample_epoch
                                              : kFallbackSecondsPerSampleEpoch;
}

void Estimator::Observe(uint64_t sample_epochs, Duration held) {
  if (sample_epochs == 0) return;
  samples_.push_front(
      {sample_epochs, std::chrono::duration<double>(held).count()});
  while (samples_.size() > std::max<std::size_t>(1, options_.window)) {
    samples_.pop_back();
  }
}

double Estimator::Plan(uint64_t sample_epochs) const {
  const double w = static_cast<double>(sample_epochs);
  // The assumed rate counts as one more measurement until the window is
  // full of real ones: a few fast retrainings do not make the plan
  // optimistic before the tail has been seen.
  double bound =
      samples_.size() < options_.window ? w * options_.InitialRate() : 0;
  for (const Sample& s : samples_) {
    bound = std::max(
        bound, s.seconds * std::max(1.0, w / static_cast<double>(s.work)));
  }
  return bound * options_.safety;
}

double Estimator::Typical(uint64_t sample_epochs) const {
  if (samples_.empty()) {
    return static_cast<double>(sample_epochs) * options_.InitialRate();
  }
  double rate = 0;
  for (const Sample& s : samples_) {
    rate += s.seconds / static_cast<double>(s.work);
  }
  return static_cast<double>(sample_epochs) * rate /
         static_cast<double>(samples_.size());
}

}  // namespace eraser::scheduler
