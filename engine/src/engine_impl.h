// EngineImpl: the shell around scheduler::Core. The Core decides (verdicts,
// retraining orders, what an apply commits); the shell runs threads, takes
// locks, computes with the models, writes the store, keeps the requests'
// payloads and delivers answers. Split by concern:
//   engine.cc      Open, recovery, Close, introspection
//   inference.cc   admission, batching workers, verdicts, parked requests
//   deletions.cc   RequestDeletion, GetDeletion
//   unlearning.cc  the control loop, retraining, apply and swap, Drain
//
// Locking: mu_ guards the Core, the published snapshot and the waiting
// requests' payloads. apply_mu_ serialises the apply-and-swap step of
// finished retrainings (and the swap-in of other engines' models) and is
// taken before mu_, never after. catchup_mu_ serialises reading the shared
// deletion log and is taken before mu_ too. The request
// queue and the compute gate have their own locks and are never taken while
// holding mu_. Callbacks run with no engine lock held.
#ifndef ERASER_ENGINE_SRC_ENGINE_IMPL_H_
#define ERASER_ENGINE_SRC_ENGINE_IMPL_H_

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "compute_gate.h"
#include "eraser/common/mutex.h"
#include "eraser/engine/engine.h"
#include "eraser/scheduler/core.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/ensemble.h"
#include "eraser/unlearning/sisa.h"
#include "request.h"
#include "request_queue.h"

namespace eraser::engine::internal {

// The served models: immutable once published; replaced as a whole.
struct Snapshot {
  std::vector<unlearning::ShardModel> shards;  // index = shard id
  // The same models, evaluated together (one stacked computation for MLPs).
  std::shared_ptr<const unlearning::Ensemble> ensemble;
  std::vector<uint64_t> versions() const;
};

// The clean prefixes loaded for the rule `prefix` (Core::WantedPrefixes),
// by shard: at most one model per shard. Immutable once published.
struct Prefixes {
  std::vector<int32_t> stage;     // -1: none
  std::vector<uint64_t> served;   // the shard's served version at the load
  std::vector<uint64_t> version;  // the checkpoint's
  // Null where none is loaded, or the load failed (not retried until the
  // wanted stage or the served version changes).
  std::vector<std::shared_ptr<const unlearning::Model>> models;
};

// A snapshot of `shards` with its ensemble built.
StatusOr<std::shared_ptr<const Snapshot>> MakeSnapshot(
    std::vector<unlearning::ShardModel> shards);

// An answer ready to deliver (outside the lock).
struct Answer {
  RequestPtr request;
  StatusOr<Prediction> result;
  certify::CertificateRecord record;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(const EngineOptions& options,
             std::unique_ptr<storage::Store> store,
             std::unique_ptr<unlearning::Sisa> sisa,
             std::shared_ptr<const Snapshot> snapshot,
             unlearning::DatasetInfo dataset);
  ~EngineImpl() override;

  // Builds the Core from the store (slice sizes, pending deletions with
  // their arrival times, the watermark) and starts the threads.
  Status Start() EXCLUDES(mu_);

  Status InferAsync(std::vector<float> features, InferCallback done) override;
  Status InferAsync(std::vector<float> features, InferCallback done,
                    Duration max_wait) override;
  Status InferRowsAsync(std::vector<std::vector<float>> rows, RowCallback done,
                        Duration max_wait) override;
  std::future<StatusOr<Prediction>> Infer(std::vector<float> features) override;
  StatusOr<DeletionSeq> RequestDeletion(
      const storage::DeletionTarget& target) override;
  StatusOr<DeletionInfo> GetDeletion(DeletionSeq seq) override;
  Status Drain() override;
  using Engine::Close;
  void Close(Duration grace) override;
  EngineStats Stats() const override;
  std::shared_ptr<metrics::EngineMetrics> metrics() const override {
    return metrics_;
  }
  std::size_t feature_size() const override { return feature_size_; }
  std::size_t num_shards() const override { return num_shards_; }
  const unlearning::DatasetInfo& dataset() const override { return dataset_; }
  StatusOr<std::vector<float>> TestSample(uint64_t index) const override;
  std::string policy() const override { return options_.policy.ToString(); }
  const InferenceOptions& inference_options() const override {
    return options_.inference;
  }

 private:
  // ---- inference.cc ----
  void WorkerLoop();
  // InferAsync's checks of one row: its feature count, finite values.
  Status CheckFeatures(const std::vector<float>& features) const;
  // Takes `rows` of the queue's capacity, or refuses (kResourceExhausted,
  // counted as queue_full).
  Status Reserve(std::size_t rows);
  // Queues one admitted row; false once the queue is closed.
  bool Enqueue(std::vector<float> features, InferCallback done,
               Duration max_wait);
  void ComputeBatch(std::vector<RequestPtr>& batch) EXCLUDES(mu_);
  // Holds the batch (the immediate baseline with a deletion pending);
  // false if it must be computed.
  bool HoldBatch(std::vector<RequestPtr>& batch, std::vector<Answer>* refused)
      EXCLUDES(mu_);
  // Turns a verdict into an answer, or keeps the request's payload while it
  // is parked or held.
  void Settle(RequestPtr request, scheduler::Verdict verdict,
              TimePoint computed, std::vector<Answer>* answers) REQUIRES(mu_);
  Answer MakeAnswer(RequestPtr request, const scheduler::Verdict& verdict,
                    TimePoint computed) REQUIRES(mu_);
  void Deliver(std::vector<Answer> answers) EXCLUDES(mu_);
  // Runs the Core's revotes (one forward pass of one model each) and
  // answers the requests they certify.
  void RefreshParked() EXCLUDES(mu_);
  // Puts the requests the Core releases back at the front of the queue.
  void ReleaseHeld() EXCLUDES(mu_);
  // Answers the parked and held requests that have waited max_wait with
  // their fallback.
  std::vector<Answer> ExpireWaiting(TimePoint now) REQUIRES(mu_);
  void UpdateGauges() REQUIRES(mu_);

  // ---- deletions.cc ----
  // With a store shared by several engines (PostgreSQL): registers the
  // deletions the log holds after the last one registered, whoever
  // acknowledged them, with the samples this engine's models still hold;
  // and asks for the swap-in of shards another engine retrained. An error
  // (the log cannot be read) stops the lease's renewals until a read
  // succeeds.
  Status CatchUp() EXCLUDES(mu_, catchup_mu_);
  // With a shared store: asks for the swap-in of shards whose newer model,
  // committed by another engine, leaves out deletions this engine holds
  // pending (the log's records since the oldest of them say so in their
  // excluded_from), among the deletions CatchUp has registered. Called by
  // the lease thread after each renewal: a deletion registered earlier is
  // not read again by CatchUp when another engine applies it.
  Status FindModelsRetrainedElsewhere() EXCLUDES(mu_);
  // Loads the newest committed model of each shard in reload_ that another
  // engine retrained and serves it; the Core forgets the samples it leaves
  // out. Called by the control loop.
  void ReloadShards() EXCLUDES(mu_);
  // Sharing the store: renews this engine's lease. A renewal that follows
  // a lapse (or the first) reads the log and registers what it holds
  // before the lease counts as held again: every deletion acknowledged
  // while this engine held none is registered before it answers.
  Status RenewLease() EXCLUDES(mu_, catchup_mu_);
  // The lease thread: renews every third of the lease, and registers and
  // reports deletions as they are notified.
  void LeaseLoop() EXCLUDES(mu_, catchup_mu_);
  // Reads the log and reports what is registered.
  Status SyncDeletions() EXCLUDES(mu_, catchup_mu_);
  // Whether this engine may answer now: always with a store of its own;
  // sharing one, while its lease holds on this machine's monotonic clock
  // and the shared log has not gone back.
  bool LeaseHeld() const REQUIRES(mu_);
  // The shared log no longer holds what this engine read from it, up to
  // `read` (it ends before, or holds another record there): the database
  // lost acknowledged deletions. From then on the engine refuses answers,
  // deletions and applies, and renews no lease (RewoundError); returns
  // that error.
  Status LogRewound(uint64_t read);
  Status RewoundError() const;
  // Erases `owner`'s rows of the test split from the store, then from
  // memory; OK when it has none left.
  Status EraseTestRows(OwnerId owner) EXCLUDES(test_mu_);
  // Blanks them in memory only (another engine erased them in the store).
  void BlankTestRows(OwnerId owner) EXCLUDES(test_mu_);
  // Whether the test split has rows of `owner` (erased or not).
  bool HasTestRows(OwnerId owner) const {
    return test_rows_by_owner_.count(owner.value()) > 0;
  }
  // Whether rows of `owner` in the test split are not erased yet.
  bool TestRowsLeft(OwnerId owner) const EXCLUDES(test_mu_);
  StatusOr<std::vector<storage::SampleLocation>> Resolve(
      const storage::DeletionTarget& target);

  // ---- unlearning.cc ----
  void ControlLoop() EXCLUDES(mu_);
  void RetrainerLoop() EXCLUDES(mu_);
  void RunOrder(const scheduler::RetrainOrder& order) EXCLUDES(mu_);
  // Under the rule `prefix`: loads the clean prefixes the Core wants that
  // are not loaded (from the store, off the inference path) and publishes
  // them; called by the control loop.
  void LoadPrefixes() REQUIRES(mu_);
  // Retries an erasure owed since a compaction failed, when its backoff
  // allows; called by the control loop.
  void RetryErasure(TimePoint now) REQUIRES(mu_);
  // The phases of RunOrder.
  struct Retrained {
    Status status;
    // The step that failed, for eraser_retrain_failures_total: "training"
    // or "storage" ("disk_full" when the status says the disk is full).
    const char* failed_in = "training";
    unlearning::RetrainResult result;
    std::shared_ptr<const Snapshot> next;  // built before anything commits
    // Another engine sharing the store holds the shard's claim.
    bool claimed_elsewhere = false;
    // What Commit wrote: the Core forgets exactly that (Core::OnApplied).
    scheduler::ApplyPlan plan;
    // The time a yielding retraining spent paused for inference.
    Duration paused = Duration(0);
    // It stopped at a pause because the Core preempted it.
    bool preempted = false;
    // Core::ErasureAttempt before the apply: its compaction, if it
    // succeeds, also pays what was owed then.
    uint64_t erasure_attempt = 0;
  };
  Retrained Retrain(const scheduler::RetrainOrder& order) EXCLUDES(mu_);
  void PrepareSnapshot(const scheduler::RetrainOrder& order, Retrained& r)
      REQUIRES(apply_mu_) EXCLUDES(mu_);
  // Writes the order's apply batch; true if it committed.
  bool Commit(const scheduler::RetrainOrder& order, Retrained& retrained)
      REQUIRES(apply_mu_) EXCLUDES(mu_);
  void Swap(const scheduler::RetrainOrder& order, Retrained& retrained,
            bool committed, TimePoint started) REQUIRES(apply_mu_, mu_);
  // UnlearningOptions::log_retrainings: an order started, an order applied.
  void LogStarted(const scheduler::RetrainOrder& order, TimePoint now) const;
  void LogApplied(const scheduler::RetrainOrder& order, TimePoint now,
                  Duration wall, Duration paused,
                  const std::vector<scheduler::Completion>& completed) const;

  const EngineOptions options_;
  const Clock* const clock_;
  const std::shared_ptr<metrics::EngineMetrics> metrics_;
  const std::unique_ptr<storage::Store> store_;
  const std::unique_ptr<unlearning::Sisa> sisa_;
  // Its test split's rows change only when an owner's are erased, under
  // test_mu_ (EraseTestRows, BlankTestRows, TestRowsLeft, TestSample).
  unlearning::DatasetInfo dataset_;
  mutable Mutex test_mu_ ACQUIRED_AFTER(mu_);
  // The test split's rows of each owner (fixed: an erasure keeps owners).
  const std::unordered_map<uint64_t, std::vector<std::size_t>>
      test_rows_by_owner_;
  const std::size_t num_shards_;
  const std::size_t feature_size_;
  const int classes_;
  const bool trains_in_parallel_;  // unlearning::TrainsInParallel
  // The time the retraining log counts from (set by Start).
  TimePoint started_at_{};

  RequestQueue queue_;
  ComputeGate gate_;
  std::atomic<uint64_t> next_request_id_{1};
  std::atomic<std::size_t> inflight_{0};
  std::atomic<int64_t> busy_nanos_{0};   // inference compute time, for `idle`
  std::atomic<uint64_t> executions_{0};  // EngineStats::executions
  std::atomic<uint64_t> promoted_{0};    // EngineStats::retrains_promoted
  std::atomic<uint64_t> preempted_{0};   // EngineStats::retrains_preempted
  // Per shard, what the Core asked of its running yielding retraining
  // (Core::TakeInterrupts), read at the retraining's pauses: kNone,
  // kPromote or kStop. Set by the control loop; reset when the shard's next
  // order starts.
  enum Interrupt : int { kNone = 0, kPromote = 1, kStop = 2 };
  std::vector<std::atomic<int>> interrupts_;

  // Whether other engines share the store (a postgresql:// store).
  const bool shared_store_;
  Mutex catchup_mu_ ACQUIRED_BEFORE(mu_);
  // The target and arrival of the record at caught_up_: a log that holds
  // another record there has lost it (LogRewound), even when it has grown
  // past it again.
  storage::DeletionTarget last_read_target_ GUARDED_BY(catchup_mu_);
  TimePoint last_read_arrival_ GUARDED_BY(catchup_mu_);
  // Every deletion up to this sequence number is registered in the Core.
  // (Written under catchup_mu_; atomic so that the lease thread reads it
  // without waiting behind a log read.)
  std::atomic<uint64_t> caught_up_{0};
  // Applies this engine's Core has taken (its own, with or without a new
  // model, and models of other engines swapped in): CatchUp reads the log
  // again when one came between its read and its registration.
  uint64_t applies_ GUARDED_BY(mu_) = 0;
  // The last read of the log failed (reported once, until one succeeds).
  std::atomic<bool> log_unreadable_{false};  // as caught_up_
  // What this engine had read of the shared log when it found the log
  // without it (0: never): LogRewound.
  std::atomic<uint64_t> rewound_from_{0};
  // This engine's own appends to the shared log that no read has returned
  // yet (the newest, which a database that lost its end lost first), with
  // their target and arrival: a read that returns another record under one
  // of their numbers, or a log that ends before the newest, is a loss.
  std::map<uint64_t, std::pair<storage::DeletionTarget, TimePoint>> own_unread_
      GUARDED_BY(mu_);
  std::atomic<uint64_t> own_newest_{0};
  // This engine's membership among the replicas (null with RocksDB), the
  // thread that keeps it, and the lease's end on the monotonic clock
  // (measured from before each renewal was sent, less a margin).
  std::unique_ptr<storage::Store::Membership> membership_;
  std::thread lease_thread_;
  CondVar lease_cv_;  // wakes the lease thread's backoff at Close
  bool stop_lease_ GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point lease_until_ GUARDED_BY(mu_);
  uint64_t lease_refusals_ GUARDED_BY(mu_) = 0;
  Mutex apply_mu_ ACQUIRED_BEFORE(mu_);
  mutable Mutex mu_;
  CondVar control_cv_;  // events for the control loop
  CondVar retrain_cv_;  // orders for the retrainers
  CondVar drain_cv_;    // progress for Drain
  bool closed_ GUARDED_BY(mu_) = false;
  bool stop_control_ GUARDED_BY(mu_) = false;
  bool stop_retrainers_ GUARDED_BY(mu_) = false;
  bool event_ GUARDED_BY(mu_) = false;
  int draining_ GUARDED_BY(mu_) = 0;
  Status drain_error_ GUARDED_BY(mu_);
  std::unique_ptr<scheduler::Core> core_ GUARDED_BY(mu_);
  std::shared_ptr<const Snapshot> snapshot_ GUARDED_BY(mu_);
  std::shared_ptr<const Prefixes> prefixes_ GUARDED_BY(mu_);
  // Payloads of the requests the Core has parked or held, by id.
  std::map<uint64_t, RequestPtr> waiting_ GUARDED_BY(mu_);
  std::deque<scheduler::RetrainOrder> orders_ GUARDED_BY(mu_);
  uint64_t retrains_ GUARDED_BY(mu_) = 0;
  int active_retrains_ GUARDED_BY(mu_) = 0;  // orders a retrainer runs
  uint64_t retrain_failures_ GUARDED_BY(mu_) = 0;
  std::string last_retrain_failure_ GUARDED_BY(mu_);
  uint64_t expired_ GUARDED_BY(mu_) = 0;
  // Shards with a newer model committed by another engine, to swap in.
  std::set<ShardId> reload_ GUARDED_BY(mu_);
  uint64_t reloads_ GUARDED_BY(mu_) = 0;
  unlearning::Cost unlearning_cost_ GUARDED_BY(mu_);
  // The model's cost measured at train (zero when none was recorded); set
  // by Start before any thread runs, read-only after.
  unlearning::ModelCost model_cost_;

  std::vector<std::thread> workers_;
  std::vector<std::thread> retrainers_;
  std::thread control_;
  std::once_flag close_once_;
};

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_ENGINE_IMPL_H_
