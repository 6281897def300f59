// Engine: the unlearning-aware serving engine a process embeds.
//
// It answers inference requests from a sharded (SISA) ensemble while it
// accepts deletion requests, decides by policy when to unlearn, retrains the
// affected shards in the background and swaps them in without blocking
// inference, and certifies every answer computed while deletions are
// pending (DESIGN sections 1 to 4).
//
//   EngineOptions options;
//   options.data_dir = "data/fmnist";           // built by `eraser train`
//   ASSIGN_OR_RETURN(options.policy,
//   scheduler::ParsePolicy("eraser-lazy-wait"));
//   ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Open(options));
//   std::future<StatusOr<Prediction>> f = engine->Infer(features);
//   ASSIGN_OR_RETURN(DeletionSeq seq,
//                    engine->RequestDeletion(DeletionTarget::Owner(OwnerId(7))));
//   RETURN_IF_ERROR(engine->Drain());
//
// Thread safety: every method may be called from any thread at any time,
// including concurrently with Close (calls after Close fail with
// kUnavailable). Callbacks run on engine threads, never under an engine
// lock; they may call back into the engine but must not block for long.
#ifndef ERASER_ENGINE_ENGINE_H_
#define ERASER_ENGINE_ENGINE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eraser/certify/record.h"
#include "eraser/common/clock.h"
#include "eraser/common/ids.h"
#include "eraser/common/statusor.h"
#include "eraser/engine/options.h"
#include "eraser/scheduler/core.h"
#include "eraser/storage/records.h"

namespace eraser::engine {

using certify::Decision;

// The answer to one inference request.
struct Prediction {
  uint64_t request_id = 0;
  // The served label; -1 when rejected.
  int32_t label = -1;
  Decision decision = Decision::kClean;
  // The certificate margin in votes, from the last certification (0 when
  // nothing was pending).
  int32_t margin = 0;
  // Shards counted as affected when the answer was (last) computed.
  std::vector<ShardId> affected;
  // The version of each shard's model whose vote made the answer, by shard.
  // For `partial`, only unaffected shards contributed; for `prefix`, an
  // affected shard that voted with its clean prefix has the prefix
  // checkpoint's version here.
  std::vector<uint64_t> model_versions;
  // For `prefix` (empty otherwise), by shard: the stage of the clean prefix
  // that voted (trained on slices 0..stage), or -1 where the served model
  // voted or the shard was left out.
  std::vector<int32_t> prefix_stages;
  // True for an answer served without a certificate although an affected
  // shard contributed (the inference-first baseline).
  bool exposed = false;
  // When the (last) computation of the answer started, on the engine's
  // clock: every deletion acknowledged before this instant is reflected in
  // `affected` or absent from the models used.
  TimePoint computed_at;
  // When the answer was (last) computed, the highest deletion sequence
  // number up to which the engine had registered every deletion; 0 if
  // none. The oracle of DESIGN guarantee 3 is the ensemble trained without
  // every deletion up to it.
  uint64_t deletion_watermark = 0;
  // Time in the queue before the first computation, computing (model
  // evaluation and certification), and parked waiting for unlearning.
  double queue_seconds = 0;
  double compute_seconds = 0;
  double wait_seconds = 0;
  // From admission to answer.
  double latency_seconds = 0;
};

using InferCallback = std::function<void(StatusOr<Prediction>)>;
// One row's answer of a request of several rows: its index, its result.
using RowCallback = std::function<void(std::size_t, StatusOr<Prediction>)>;

// A deletion request's state.
struct DeletionInfo {
  DeletionSeq seq;
  storage::DeletionTarget target;
  storage::DeletionState state = storage::DeletionState::kPending;
  TimePoint arrival;
  std::optional<TimePoint> applied;
  // The samples it resolved to, and the shards of those not yet erased
  // when it arrived (the shards it must leave; a sample already erased left
  // its shard with the deletion that erased it).
  std::size_t samples = 0;
  std::vector<ShardId> shards;
  // For each shard retrained without it: the first model version that
  // excludes it (recorded with the deletion, so it survives restarts).
  std::vector<std::pair<ShardId, uint64_t>> excluded_from;
};

// What the unlearning plan rests on (docs/engine.md).
struct PlanningFigures {
  // The model's cost measured by `eraser train` and stored with it; zero
  // for an ensemble trained before eraser recorded costs.
  unlearning::ModelCost model_cost;
  // The rate assumed for a retraining until enough were measured (the
  // model's cost, an operator's override, or the fallback).
  double initial_seconds_per_sample_epoch = 0;
  // Retrainings measured so far (of the estimator's window).
  std::size_t retrainings_measured = 0;
  // The planned time of the costliest retraining: the largest shard, from
  // its first slice.
  double whole_shard_retrain_seconds = 0;
  // Retrainings the plan runs at once, and the slots it may borrow from
  // inference: 1 and 0 for a model that trains one shard at a time
  // (unlearning::TrainsInParallel), whatever the options say.
  int slots = 0;
  int borrowable_slots = 0;
  // The borrowable slots also run, yielding to inference, what the plan
  // starts while the slots are busy (UnlearningOptions::use_idle_cores).
  bool idle_cores = false;
};

// A snapshot of the engine's state, for monitoring and tests.
struct EngineStats {
  std::size_t queued = 0;
  std::size_t parked = 0;
  std::size_t pending_deletions = 0;
  std::vector<ShardId> affected_shards;
  std::vector<uint64_t> model_versions;
  std::size_t retrains_running = 0;
  // Retrainings completed by this engine and their total cost.
  uint64_t retrains = 0;
  unlearning::Cost unlearning_cost;
  // Deletions applied later than the policy's deadline after their
  // acknowledgement, since Open.
  uint64_t deadline_misses = 0;
  // The unlearning load over the last minute (docs/engine.md): offered and
  // sustainable deletion rates, whether unlearning is overloaded (`wait`
  // answers are then degraded to keep the slots for deadlines), deadlines
  // at risk.
  scheduler::Capacity capacity;
  // Retrainings that failed since Open (each is retried per shard after a
  // backoff), the last failure ("shard 3 (storage): ..."), and the shards
  // now waiting for their retry.
  uint64_t retrain_failures = 0;
  std::string last_retrain_failure;
  std::vector<ShardId> backing_off;
  // A committed apply whose compaction failed still owes the erasure of
  // its samples' bytes; it is retried in the background until it succeeds.
  bool erasure_owed = false;
  // Why the store refuses writes now (a full disk: deletions get
  // kResourceExhausted), empty while it takes them.
  std::string store_refusing_writes;
  // Parked or held requests answered with the fallback after max_wait.
  uint64_t expired = 0;
  // With a store shared by several engines: shard models another engine
  // retrained and this one swapped in (instead of retraining them itself).
  uint64_t shard_reloads = 0;
  // With a store shared by several engines: whether this engine holds its
  // lease (it answers only then; docs/scale-out.md), the replicas whose
  // leases were live at its last look (itself included), and the answers
  // refused while it held none.
  bool lease_held = true;
  int live_replicas = 1;
  uint64_t lease_refusals = 0;
  // Ensemble evaluations by the inference workers that succeeded: one per
  // batch, however many requests it held (the statistics extension's
  // execution_count).
  uint64_t executions = 0;
  // Retrainings on an idle inference core (yielding to inference) that
  // their deadline, or another shard's late deadline, made take precedence
  // over inference before they ended (docs/engine.md, "Idle cores").
  uint64_t retrains_promoted = 0;
  // Retrainings on an idle inference core stopped to give it to a shard
  // due earlier that no slot could take; their deletions waited again.
  uint64_t retrains_preempted = 0;
  PlanningFigures planning;
};

class Engine {
 public:
  // Opens the data directory in options.data_dir: loads the latest
  // checkpoints, reloads pending deletions and resumes their deadlines, and
  // starts the inference workers and the unlearning scheduler. Trains the
  // ensemble first when the directory holds none and options.train_data is
  // set. Errors: kInvalidArgument (options, naming the field),
  // kFailedPrecondition (no trained ensemble), kDataLoss (corrupt data),
  // kNotFound (no such directory and nothing to train).
  static StatusOr<std::unique_ptr<Engine>> Open(const EngineOptions& options);

  // Close()s.
  virtual ~Engine() = default;

  // ---- inference ----------------------------------------------------------
  // Submits `features`: feature_size() floats encoded as the dataset's are
  // (pixels / 255 for images; dataset().encoding for tables). On OK, `done`
  // is called exactly once with the Prediction, or with kUnavailable if the
  // engine closes before the request can be answered. Errors (and `done` is
  // not called): kInvalidArgument for a wrong feature count or a non-finite
  // value, kResourceExhausted when queue_capacity requests are in flight,
  // kUnavailable after Close.
  virtual Status InferAsync(std::vector<float> features,
                            InferCallback done) = 0;
  // The same, for a request that may wait at most `max_wait` parked for
  // unlearning (or held by the immediate baseline) before it gets the
  // fallback answer, when that is shorter than InferenceOptions::max_wait:
  // a client's own timeout (the Open Inference Protocol's
  // parameters.timeout). The default implementation ignores it.
  virtual Status InferAsync(std::vector<float> features, InferCallback done,
                            Duration max_wait) {
    (void)max_wait;
    return InferAsync(std::move(features), std::move(done));
  }
  // A request of several rows (a client's batch), admitted whole or
  // refused whole: on OK, done(i, result) is called exactly once for each
  // row i (on the caller's thread, before the call returns, for rows the
  // engine closing meanwhile kept out of the queue); on an error, for
  // none, and nothing was queued. The errors of
  // InferAsync (a bad row named by its index), and kInvalidArgument for no
  // rows or more rows than queue_capacity (it could never be admitted);
  // kResourceExhausted when the rows do not fit beside those in flight.
  virtual Status InferRowsAsync(std::vector<std::vector<float>> rows,
                                RowCallback done, Duration max_wait) = 0;
  // The same, as a future; admission errors are delivered through it.
  virtual std::future<StatusOr<Prediction>> Infer(
      std::vector<float> features) = 0;

  // ---- deletion -----------------------------------------------------------
  // Resolves `target` to its samples, appends the request to the deletion
  // log with a synced write, and only then returns its sequence number.
  // kNotFound for an unknown sample or owner; kUnavailable after Close.
  // Deleting samples that are already deleted or pending is harmless: the
  // new request is applied with (or immediately after) them. A repeated
  // request (a retry: the target of a pending deletion that names the same
  // samples) returns that deletion's number and writes nothing.
  virtual StatusOr<DeletionSeq> RequestDeletion(
      const storage::DeletionTarget& target) = 0;
  // kNotFound for a sequence number never issued.
  virtual StatusOr<DeletionInfo> GetDeletion(DeletionSeq seq) = 0;
  // Unlearns everything pending now and returns once no deletion is pending
  // (deletions acknowledged meanwhile included; with a store shared by
  // several engines, those the others acknowledged before the call too).
  // kUnavailable if the engine closes first; the error of a retraining that
  // failed while draining.
  virtual Status Drain() = 0;

  // Stops admitting work and starts no new retraining; answers the queued
  // requests, answers parked ones with kUnavailable, gives running
  // retrainings up to `grace` to finish and apply, then cancels them (at
  // their next stage; their deletions stay pending), and joins every
  // thread. Pending deletions stay durable. Idempotent.
  virtual void Close(Duration grace) = 0;
  // Close with no limit on the running retrainings.
  void Close() { Close(Duration::max()); }

  // ---- introspection ------------------------------------------------------
  virtual EngineStats Stats() const = 0;
  virtual std::shared_ptr<metrics::EngineMetrics> metrics() const = 0;
  virtual std::size_t feature_size() const = 0;
  // The dataset the directory was built from: class names, the tabular
  // encoding (to encode raw records), the test split, owners. A deletion
  // of an owner erases the owner's test rows in place (Split::erased): read
  // them with TestSample while deletions may come.
  virtual const unlearning::DatasetInfo& dataset() const = 0;
  // Row `index` of the test split as the model's input; kNotFound past its
  // end, or when a deletion of its owner erased it.
  virtual StatusOr<std::vector<float>> TestSample(uint64_t index) const = 0;
  virtual std::size_t num_shards() const = 0;
  // The policy in force, canonical form.
  virtual std::string policy() const = 0;
  // How requests are queued and batched (EngineOptions::inference).
  virtual const InferenceOptions& inference_options() const = 0;
};

// The kUnavailable every call returns once the engine is closing. The other
// kUnavailable a call can return means the store cannot be reached (a
// PostgreSQL store that is down); IsShuttingDown tells the two apart without
// reading the message (eraser serve's refusal reasons rest on it).
Status ShuttingDownError();
bool IsShuttingDown(const Status& status);

}  // namespace eraser::engine

#endif  // ERASER_ENGINE_ENGINE_H_
