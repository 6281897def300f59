// EngineImpl: the Engine behind the public interface. Split by concern:
//   engine.cc      Open, recovery, Close, introspection
//   inference.cc   admission, batching workers, certification, parked
//                  requests
//   deletions.cc   RequestDeletion, GetDeletion, the pending index
//   unlearning.cc  the scheduler loop, retraining, apply and swap, Drain
//
// Locking: mu_ guards the engine state (pending index, scheduler, parked
// requests, the published snapshot). apply_mu_ serialises the apply-and-swap
// step of finished retrainings (taken before mu_, never after). The request
// queue and the compute gate have their own locks and are never taken while
// holding mu_. Callbacks run with no engine lock held.
#ifndef ERASER_ENGINE_SRC_ENGINE_IMPL_H_
#define ERASER_ENGINE_SRC_ENGINE_IMPL_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "compute_gate.h"
#include "eraser/common/thread_annotations.h"
#include "eraser/engine/engine.h"
#include "eraser/scheduler/scheduler.h"
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
};

// A snapshot of `shards` with its ensemble built.
StatusOr<std::shared_ptr<const Snapshot>> MakeSnapshot(
    std::vector<unlearning::ShardModel> shards);

// A deletion that some served model still holds.
struct PendingDeletion {
  TimePoint arrival;
  // Shards whose served model still holds its samples, and those samples.
  std::map<ShardId, std::vector<SampleId>> samples;
};

// An answer ready to deliver (outside the lock).
struct Answer {
  RequestPtr request;
  StatusOr<Prediction> result;
  certify::CertificateRecord record;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(const EngineOptions& options, const scheduler::Policy& policy,
             std::unique_ptr<storage::Store> store,
             std::unique_ptr<unlearning::Sisa> sisa,
             std::shared_ptr<const Snapshot> snapshot,
             unlearning::DatasetInfo dataset);
  ~EngineImpl() override;

  // Reloads pending deletions from the store and starts the threads.
  Status Start();

  Status InferAsync(std::vector<float> features, InferCallback done) override;
  std::future<StatusOr<Prediction>> Infer(std::vector<float> features) override;
  StatusOr<DeletionSeq> RequestDeletion(
      const storage::DeletionTarget& target) override;
  StatusOr<DeletionInfo> GetDeletion(DeletionSeq seq) override;
  Status Drain() override;
  void Close() override;
  EngineStats Stats() const override;
  std::shared_ptr<metrics::EngineMetrics> metrics() const override {
    return metrics_;
  }
  std::size_t feature_size() const override { return feature_size_; }
  const unlearning::DatasetInfo& dataset() const override { return dataset_; }
  std::size_t num_shards() const override { return num_shards_; }
  std::string policy() const override { return policy_.ToString(); }

 private:
  // ---- inference.cc ----
  void WorkerLoop();
  void ComputeBatch(std::vector<RequestPtr>& batch);
  // Decides a computed request: answers it (appending to `answers`) or
  // parks it. `affected` are flags per shard.
  void Decide(RequestPtr request, const std::vector<int32_t>& votes,
              const std::vector<uint8_t>& affected, const Snapshot& snapshot,
              SteadyTime computed, std::vector<Answer>* answers)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Affected flags for answers computed with `snapshot`: shards with a
  // pending deletion, and shards replaced since the snapshot was taken.
  std::vector<uint8_t> AffectedFlags(const Snapshot& snapshot) const
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer MakeAnswer(RequestPtr request, int32_t label, Decision decision,
                    int32_t margin, const std::vector<uint8_t>& affected,
                    const std::vector<uint64_t>& versions, SteadyTime computed)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Deliver(std::vector<Answer> answers) LOCKS_EXCLUDED(mu_);
  // Re-votes parked requests on shards replaced since they voted, when the
  // new model holds no pending deletion, and answers those now certified.
  void RefreshParked() LOCKS_EXCLUDED(mu_);
  // `immediate`: requeues parked requests once nothing is pending.
  void ReleaseImmediate() LOCKS_EXCLUDED(mu_);
  void UpdateGauges() EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ---- deletions.cc ----
  // Registers an acknowledged deletion of `live` samples (not yet erased).
  void RegisterDeletion(DeletionSeq seq, TimePoint arrival,
                        const std::vector<storage::SampleLocation>& live)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Samples of `samples` that are still stored (not erased).
  StatusOr<std::vector<storage::SampleLocation>> LiveSamples(
      const std::vector<storage::SampleLocation>& samples);

  // ---- unlearning.cc ----
  void ControlLoop();
  void RetrainerLoop();
  void RunOrder(const scheduler::RetrainOrder& order);
  uint64_t RetrainCost(ShardId shard, uint32_t first_slice) const
      EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EngineOptions options_;
  const scheduler::Policy policy_;
  const Clock* const clock_;
  const std::shared_ptr<metrics::EngineMetrics> metrics_;
  const std::unique_ptr<storage::Store> store_;
  const std::unique_ptr<unlearning::Sisa> sisa_;
  const unlearning::DatasetInfo dataset_;
  const std::size_t num_shards_;
  const std::size_t feature_size_;
  const int classes_;

  RequestQueue queue_;
  ComputeGate gate_;
  std::atomic<uint64_t> next_request_id_{1};
  std::atomic<std::size_t> inflight_{0};
  std::atomic<int64_t> busy_nanos_{0};  // inference compute time, for `idle`

  mutable std::mutex mu_;
  std::condition_variable control_cv_;  // events for the scheduler loop
  std::condition_variable retrain_cv_;  // orders for the retrainers
  std::condition_variable drain_cv_;    // progress for Drain
  bool closed_ GUARDED_BY(mu_) = false;
  bool stop_control_ GUARDED_BY(mu_) = false;
  bool stop_retrainers_ GUARDED_BY(mu_) = false;
  bool event_ GUARDED_BY(mu_) = false;
  int draining_ GUARDED_BY(mu_) = 0;
  Status drain_error_ GUARDED_BY(mu_);
  std::shared_ptr<const Snapshot> snapshot_ GUARDED_BY(mu_);
  std::map<DeletionSeq, PendingDeletion> pending_ GUARDED_BY(mu_);
  std::vector<std::set<DeletionSeq>> shard_pending_ GUARDED_BY(mu_);
  std::vector<std::vector<uint64_t>> slice_sizes_ GUARDED_BY(mu_);
  // First model version of each shard that excludes a deletion.
  std::map<DeletionSeq, std::vector<std::pair<ShardId, uint64_t>>> excluded_
      GUARDED_BY(mu_);
  std::unique_ptr<scheduler::Scheduler> scheduler_ GUARDED_BY(mu_);
  std::deque<scheduler::RetrainOrder> orders_ GUARDED_BY(mu_);
  // Highest deletion sequence number accepted so far.
  uint64_t watermark_ GUARDED_BY(mu_) = 0;
  uint64_t retrains_ GUARDED_BY(mu_) = 0;
  unlearning::Cost unlearning_cost_ GUARDED_BY(mu_);
  std::map<uint64_t, RequestPtr> parked_ GUARDED_BY(mu_);
  std::vector<RequestPtr> parked_immediate_ GUARDED_BY(mu_);

  std::mutex apply_mu_;
  std::vector<std::thread> workers_;
  std::vector<std::thread> retrainers_;
  std::thread control_;
  std::once_flag close_once_;
};

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_ENGINE_IMPL_H_
