// EngineOptions: everything Engine::Open needs, composed of the modules'
// options. Plain structs; every field has one definition and one default,
// stated beside it (the command line takes its defaults from here). The
// whole set is validated once, at Open, and an error names the field.
// Strings (policies, durations) are parsed where they enter, by the caller.
#ifndef ERASER_ENGINE_OPTIONS_H_
#define ERASER_ENGINE_OPTIONS_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "eraser/common/clock.h"
#include "eraser/common/status.h"
#include "eraser/metrics/engine_metrics.h"
#include "eraser/scheduler/estimator.h"
#include "eraser/scheduler/policy.h"
#include "eraser/unlearning/sisa.h"

namespace eraser::engine {

struct InferenceOptions {
  // Requests admitted and not yet answered (queued, being computed or
  // parked). One more is refused with kResourceExhausted.
  std::size_t queue_capacity = 4096;
  // A worker takes up to this many queued requests as one batch...
  std::size_t max_batch_size = 64;
  // ...waiting at most this long after the oldest was queued for more.
  Duration max_queue_delay = std::chrono::milliseconds(2);
  // Inference worker threads (one Torch thread each).
  int threads = 1;
};

// Where unlearning runs relative to inference.
enum class ExecutionContext {
  // On its own arena while inference goes on.
  kConcurrent,
  // Inference pauses while a retraining runs, as on a server with one
  // accelerator shared by both.
  kExclusive,
};

// "concurrent" or "exclusive"; kInvalidArgument otherwise.
StatusOr<ExecutionContext> ParseExecutionContext(std::string_view text);
const char* ExecutionContextName(ExecutionContext context);

struct UnlearningOptions {
  // Retrainings that may run at once (the unlearning arena's slots).
  int concurrency = 1;
  ExecutionContext context = ExecutionContext::kConcurrent;
  // When a deadline is at risk with every slot busy, one more retraining
  // may run on the inference core: inference pauses while it does.
  bool borrow_inference_core = true;
  // How retraining times are planned for deadlines.
  scheduler::EstimatorOptions estimates;
};

struct EngineOptions {
  // The data directory (built by `eraser train`). Required.
  std::string data_dir;
  // When to unlearn and what uncertified answers get (ParsePolicy parses
  // the strings and presets users write). Default: eraser-lazy-wait.
  scheduler::Policy policy;
  InferenceOptions inference;
  UnlearningOptions unlearning;
  // Store every answer's certificate record in the audit column family.
  bool audit = false;
  // The time source for everything the engine decides on (deletion
  // arrivals, deadlines, batching delays, latencies); null means the
  // system clock. Not owned; must outlive the engine.
  const Clock* clock = nullptr;
  // Metrics to update; null means the engine creates its own registry
  // (Engine::metrics() returns it).
  std::shared_ptr<metrics::EngineMetrics> metrics;

  // Building a missing ensemble: when the directory holds none and
  // `train_data` is set, Open ingests it and trains with `sisa` completed
  // for it (unlearning::ForDataset). Borrowed for the duration of Open only.
  const datasets::Dataset* train_data = nullptr;
  unlearning::SisaOptions sisa;

  // kInvalidArgument naming the first bad field ("inference.threads must
  // be in 1..64").
  Status Validate() const;
};

}  // namespace eraser::engine

#endif  // ERASER_ENGINE_OPTIONS_H_
