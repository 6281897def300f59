#include "eraser/engine/options.h"

#include <cmath>

namespace eraser::engine {
namespace {

Status Field(const char* name, const std::string& why) {
  return InvalidArgumentError(std::string(name) + " " + why);
}

}  // namespace

StatusOr<ExecutionContext> ParseExecutionContext(std::string_view text) {
  if (text == "concurrent") return ExecutionContext::kConcurrent;
  if (text == "exclusive") return ExecutionContext::kExclusive;
  return InvalidArgumentError(
      "the execution context must be concurrent or "
      "exclusive, not '" +
      std::string(text) + "'");
}

const char* ExecutionContextName(ExecutionContext context) {
  return context == ExecutionContext::kExclusive ? "exclusive" : "concurrent";
}

Status EngineOptions::Validate() const {
  if (data_dir.empty()) return Field("data_dir", "is required");
  if (Status s = policy.Validate(); !s.ok()) return s;
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
  if (replica_lease < std::chrono::milliseconds(100) ||
      replica_lease > std::chrono::hours(1)) {
    return Field("replica_lease", "must be in 100ms..1h");
  }
  RETURN_IF_ERROR(
      scheduler::ValidateMaxWait(inference.max_wait, "inference.max_wait"));
  if (!(unlearning.borrowed_inference_share >= 0 &&
        unlearning.borrowed_inference_share < 1)) {
    return Field("unlearning.borrowed_inference_share", "must be in [0, 1)");
  }
  if (unlearning.concurrency < 1 || unlearning.concurrency > 64) {
    return Field("unlearning.concurrency", "must be in 1..64");
  }
  RETURN_IF_ERROR(unlearning.estimates.Validate("unlearning.estimates."));
  RETURN_IF_ERROR(unlearning.retry.Validate("unlearning.retry."));
  if (train_data != nullptr) {
    if (Status st = sisa.Validate(); !st.ok()) {
      return InvalidArgumentError("sisa: " + st.message());
    }
  }
  return OkStatus();
}

}  // namespace eraser::engine
