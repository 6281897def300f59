#include "eraser/engine/options.h"

#include <cmath>

namespace eraser::engine {
namespace {

Status Field(const char* name, const std::string& why) {
  return InvalidArgumentError(std::string(name) + " " + why);
}

}  // namespace

Status EngineOptions::Validate() const {
  if (data_dir.empty()) return Field("data_dir", "is required");
  StatusOr<scheduler::Policy> parsed = scheduler::ParsePolicy(policy);
  if (!parsed.ok()) {
    return InvalidArgumentError("policy: " + parsed.status().message());
  }
  if (inference.queue_capacity < 1 || inference.queue_capacity > 1'000'000) {
    return Field("inference.queue_capacity", "must be in 1..1000000");
  }
  if (inference.max_batch_size < 1 || inference.max_batch_size > 4096) {
    return Field("inference.max_batch_size", "must be in 1..4096");
  }
  if (inference.max_queue_delay < Duration(0) ||
      inference.max_queue_delay > std::chrono::seconds(10)) {
    return Field("inference.max_queue_delay", "must be in 0..10s");
  }
  if (inference.threads < 1 || inference.threads > 64) {
    return Field("inference.threads", "must be in 1..64");
  }
  if (unlearning.concurrency < 1 || unlearning.concurrency > 64) {
    return Field("unlearning.concurrency", "must be in 1..64");
  }
  const scheduler::SchedulerOptions& s = unlearning.scheduler;
  if (!(s.initial_seconds_per_sample_epoch > 0) ||
      !std::isfinite(s.initial_seconds_per_sample_epoch)) {
    return Field("unlearning.scheduler.initial_seconds_per_sample_epoch",
                 "must be positive");
  }
  if (!(s.estimate_weight > 0 && s.estimate_weight <= 1)) {
    return Field("unlearning.scheduler.estimate_weight", "must be in (0, 1]");
  }
  if (!(s.deadline_safety >= 1 && s.deadline_safety <= 100)) {
    return Field("unlearning.scheduler.deadline_safety", "must be in 1..100");
  }
  if (s.deadline_margin < Duration(0)) {
    return Field("unlearning.scheduler.deadline_margin",
                 "must not be negative");
  }
  if (train_data != nullptr) {
    if (Status st = sisa.Validate(); !st.ok()) {
      return InvalidArgumentError("sisa: " + st.message());
    }
  }
  return OkStatus();
}

}  // namespace eraser::engine
