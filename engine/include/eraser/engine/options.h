// EngineOptions: everything Engine::Open needs, composed of the modules'
// options. Plain structs; every field has one definition and one default,
// stated beside it (the command line takes its defaults from here). The
// whole set is validated once, at Open, and an error names the field.
// Strings (policies, durations) are parsed where they enter, by the caller.
#ifndef ERASER_ENGINE_OPTIONS_H_
#define ERASER_ENGINE_OPTIONS_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eraser/common/clock.h"
#include "eraser/common/status.h"
#include "eraser/metrics/engine_metrics.h"
#include "eraser/scheduler/estimator.h"
#include "eraser/scheduler/policy.h"
#include "eraser/scheduler/retry.h"
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
  // A request parked for retraining (rule wait, or partial, soft or
  // prefix with every shard affected), or held by the immediate baseline, waits
  // at most this long; then it gets the fallback answer: partial when the
  // unaffected shards have a plurality, otherwise rejected (HTTP 503,
  // Retry-After).
  Duration max_wait = scheduler::kDefaultMaxWait;
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
  // may run on the inference core, and takes precedence over inference:
  // in the concurrent context inference may compute for at most
  // borrowed_inference_share of the time it runs (0: inference pauses, as
  // in the exclusive context, which always pauses it).
  bool borrow_inference_core = true;
  double borrowed_inference_share = 0.25;
  // Work conservation (concurrent context, with borrow_inference_core):
  // retrainings the plan starts while every slot is busy run on the
  // inference core too, whatever the policy, yielding to inference
  // between mini-batches while a batch computes (docs/engine.md, "Idle
  // cores").
  bool use_idle_cores = true;
  // How retraining times are planned for deadlines.
  scheduler::EstimatorOptions estimates;
  // One line on stderr per retraining started (why, on which core, from
  // which slice, its planned time and deadline) and per retraining applied
  // (its time, the deletions it completed, their longest delay): what an
  // operator reads to see why a deadline was missed (docs/engine.md).
  bool log_retrainings = false;
  // A shard whose retraining failed (a Torch error, a failed write, a full
  // disk) is retried after retry.initial, doubling after each further
  // failure up to retry.max; a success resets it. The same backoff paces
  // retries of an erasure (compaction) that failed after its commit.
  scheduler::RetryOptions retry;
};

// Faults and bugs a test plants; empty in production.
struct TestingHooks {
  // Called before each retraining of `shard`; a non-OK status fails that
  // retraining with it, as a Torch or storage error would.
  std::function<Status(ShardId shard)> retrain_fault;
  // Sees (and may change) the affected flags of every decision: plants the
  // bug of an engine that forgets a shard, for the checks that must catch
  // it.
  std::function<void(std::vector<uint8_t>* affected)> affected_filter;
  // Added to the clean stage of every shard (scheduler::CoreOptions::
  // testing_clean_stage_offset): 1 plants the bug of a clean prefix one
  // stage too deep, which holds a pending deletion.
  int clean_stage_offset = 0;
};

struct EngineOptions {
  // The store built by `eraser train` (`--store`): a data directory
  // (RocksDB, this process only) or a postgresql:// URL (PostgreSQL, shared
  // by several engines; docs/scale-out.md). Required.
  std::string data_dir;
  // When to unlearn and what uncertified answers get (ParsePolicy parses
  // the strings and presets users write). Default: eraser-lazy-wait.
  scheduler::Policy policy;
  InferenceOptions inference;
  UnlearningOptions unlearning;
  // Store every answer's certificate record in the audit column family.
  bool audit = false;
  // Sharing a PostgreSQL store: this engine's lease among the replicas
  // (docs/scale-out.md). It answers only while it holds the lease, which
  // it renews every third of it; a deletion it acknowledges waits at most
  // this long for a replica that neither registers it nor answers. From
  // 100ms to 1h.
  Duration replica_lease = std::chrono::seconds(3);
  // The time source for everything the engine decides on (deletion
  // arrivals, deadlines, batching delays, latencies); null means the
  // system clock. Not owned; must outlive the engine.
  const Clock* clock = nullptr;
  // Metrics to update; null means the engine creates its own registry
  // (Engine::metrics() returns it).
  std::shared_ptr<metrics::EngineMetrics> metrics;
  TestingHooks testing;

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
