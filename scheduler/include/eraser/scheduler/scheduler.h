// Scheduler: decides which shards to retrain and when, from events. It sees
// neither models nor storage: the engine tells it what happened (a deletion
// was acknowledged, a request was parked, a retraining finished, the load
// changed), asks it what to start (Poll) and when to ask again
// (NextWakeup), and executes the orders.
//
// Every order covers all the deletions of its shard that are not yet covered
// by another order; deletions acknowledged while it runs stay pending for a
// later order. At most `concurrency` orders run at once. Priorities when
// slots are short: deadlines (earliest first), then parked requests
// (cheapest shard first), then the timing policy.
//
// Not thread-safe: the engine calls it under its own lock. All times come
// from the caller, so tests drive it with a manual clock.
#ifndef ERASER_SCHEDULER_SCHEDULER_H_
#define ERASER_SCHEDULER_SCHEDULER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "eraser/common/clock.h"
#include "eraser/common/ids.h"
#include "eraser/scheduler/policy.h"

namespace eraser::scheduler {

struct SchedulerOptions {
  // Retrainings that may run at once (the unlearning arena's concurrency).
  int concurrency = 2;
  // Seconds per sample-epoch assumed until a retraining has been measured.
  double initial_seconds_per_sample_epoch = 1e-5;
  // Weight of the newest measurement in the running estimate (EWMA); the
  // first measurement replaces the assumed rate.
  double estimate_weight = 0.3;
  // A deadline retraining starts when the predicted duration times this
  // factor, plus `deadline_margin`, plus the work queued ahead of it, would
  // reach the deadline.
  double deadline_safety = 1.5;
  Duration deadline_margin = std::chrono::seconds(1);
};

// A pending deletion's samples in one shard, by earliest slice.
struct ShardHit {
  ShardId shard;
  uint32_t slice = 0;
};

enum class Reason {
  kImmediate,  // the immediate baseline
  kDeadline,   // the oldest covered deletion is about to miss its deadline
  kWait,       // a parked request needs the shard
  kBatch,      // batch:N reached
  kPeriodic,   // periodic:T tick
  kIdle,       // idle:U
  kShards,     // shards:A exceeded
  kDrain,      // the engine is draining: everything is unlearned now
};
const char* ReasonName(Reason reason);

struct RetrainOrder {
  ShardId shard;
  uint32_t first_slice = 0;         // earliest slice hit by `covers`
  std::vector<DeletionSeq> covers;  // ascending
  Reason reason = Reason::kImmediate;
  uint64_t predicted_sample_epochs = 0;
  double predicted_seconds = 0;
};

// The cost of retraining `shard` from `first_slice`, in sample-epochs.
using CostFunction =
    std::function<uint64_t(ShardId shard, uint32_t first_slice)>;

class Scheduler {
 public:
  Scheduler(const Policy& policy, const SchedulerOptions& options,
            CostFunction cost, TimePoint now);

  // ---- events -------------------------------------------------------------
  // A deletion was acknowledged (or recovered at start, with its original
  // arrival time, so its deadline resumes). A repeated seq is ignored.
  void OnDeletion(DeletionSeq seq, TimePoint arrival,
                  const std::vector<ShardHit>& hits);
  // An uncertified request is parked (rule wait). `affected` are its
  // affected shards; at least `min_to_resolve` of them must be retrained
  // before it can be certified. Calling again for the same id updates it.
  void OnParked(uint64_t request, const std::vector<ShardId>& affected,
                int min_to_resolve);
  // The request was answered (or given up) and needs nothing more.
  void OnUnparked(uint64_t request);
  // An order has finished: its retrained model was swapped in (succeeded)
  // or it failed, and its deletions return to the queue. `sample_epochs`
  // and `elapsed` (the time the order held its slot, from start to the
  // swap) refine the duration estimate.
  void OnRetrainFinished(ShardId shard, bool succeeded, Duration elapsed,
                         uint64_t sample_epochs);
  // The inference load: requests queued, and the fraction of recent time
  // the inference workers were busy.
  void OnLoad(std::size_t queued, double utilization);
  // While draining, every waiting shard is retrained as slots allow,
  // whatever the policy.
  void SetDraining(bool draining) { draining_ = draining; }

  // ---- decisions ----------------------------------------------------------
  // The retrainings to start now; they count as running until
  // OnRetrainFinished.
  std::vector<RetrainOrder> Poll(TimePoint now);
  // When Poll must next be called if no event arrives; nullopt if never.
  std::optional<TimePoint> NextWakeup() const;

  // ---- state --------------------------------------------------------------
  // Deletions acknowledged and not yet applied in every shard they hit.
  std::size_t pending_deletions() const { return deletions_.size(); }
  // Shards whose served model still holds a pending deletion.
  std::vector<ShardId> AffectedShards() const;
  bool IsRunning(ShardId shard) const { return running_.count(shard) > 0; }
  std::size_t running() const { return running_.size(); }
  std::size_t parked() const { return parked_.size(); }
  double seconds_per_sample_epoch() const { return seconds_per_sample_epoch_; }
  const Policy& policy() const { return policy_; }

 private:
  struct Deletion {
    TimePoint arrival;
    std::set<ShardId> shards_left;  // shards not yet retrained without it
  };
  // Deletions of a shard not covered by a running order.
  struct Waiting {
    std::map<DeletionSeq, uint32_t> seqs;  // seq -> earliest slice hit
    uint32_t first_slice() const;
  };
  struct Running {
    RetrainOrder order;
    std::map<DeletionSeq, uint32_t> covered;  // seq -> earliest slice hit
    TimePoint started;
  };
  struct Parked {
    std::vector<ShardId> affected;
    int min_to_resolve = 0;
  };

  TimePoint Due(ShardId shard) const;
  double PredictSeconds(ShardId shard) const;
  // Seconds of queued work that must run before `shard` by deadline order,
  // spread over the slots, including what is running now.
  double BacklogAhead(ShardId shard, TimePoint now) const;
  // The last moment `shard` can start and still finish by its deadline.
  TimePoint LatestStart(ShardId shard, TimePoint now) const;
  // Shards parked requests need started, cheapest first.
  std::vector<ShardId> WaitWanted() const;
  // Whether the timing policy wants every waiting shard retrained now.
  bool TimingTriggered(TimePoint now);
  Reason TimingReason() const;
  RetrainOrder Start(ShardId shard, Reason reason, TimePoint now);

  const Policy policy_;
  const SchedulerOptions options_;
  const CostFunction cost_;
  std::map<DeletionSeq, Deletion> deletions_;
  std::map<ShardId, Waiting> waiting_;
  std::map<ShardId, Running> running_;
  std::map<uint64_t, Parked> parked_;
  std::size_t queued_ = 0;
  double utilization_ = 0;
  TimePoint last_poll_;
  TimePoint next_tick_;
  // batch/periodic/shards triggered: retrain every waiting shard as slots
  // allow, until none is left waiting.
  bool armed_ = false;
  bool draining_ = false;
  double seconds_per_sample_epoch_;
  bool measured_ = false;  // a retraining has been measured
};

}  // namespace eraser::scheduler

#endif  // ERASER_SCHEDULER_SCHEDULER_H_
