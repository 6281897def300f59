// Core: every decision the engine makes, in one pure state machine.
//
// It owns the facts those decisions rest on: the pending deletions (which
// samples of which shard each still holds), the served model version of
// each shard, the watermark (every deletion up to it registered), the parked
// requests with their vote tallies, the retrainings in flight, and the
// measured retraining times. It is driven by events carrying times from the
// caller's clock and answers with decisions (a request's verdict, the
// retrainings to start, what an apply commits). It does no I/O, starts no
// thread, reads no clock and sees no model: the engine (the shell) runs
// models, writes the store and calls back.
//
// Not thread-safe: the engine calls it under one lock.
//
// Decision table (docs/engine.md): a request is `clean` when no shard that
// voted is affected; otherwise, by policy:
//   ERASER, wait     certified, else parked until certified (`waited`)
//   ERASER, partial  certified, else the unaffected shards' plurality
//                    (`partial`); with every shard affected it is parked
//                    like `wait`
//   ERASER, prefix   certified; else as `partial`, except that a tie
//                    among the unaffected shards' leading labels (all
//                    labels when every shard is affected) goes to the one
//                    most of the affected shards' clean prefixes vote for
//                    (`prefix`); parked only if no shard can vote
//   ERASER, reject   certified, else `rejected`
//   inference-first  `uncertified` (an exposure)
//   immediate        held, and computed again once nothing is pending
// While unlearning is overloaded (capacity below the offered deletion
// rate, or a deadline at risk), `wait` requests that cannot be certified get
// the `partial` answer instead of parking: answers degrade to keep the
// slots for deadlines.
#ifndef ERASER_SCHEDULER_CORE_H_
#define ERASER_SCHEDULER_CORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "eraser/certify/record.h"
#include "eraser/certify/tally.h"
#include "eraser/common/clock.h"
#include "eraser/common/ids.h"
#include "eraser/scheduler/estimator.h"
#include "eraser/scheduler/policy.h"
#include "eraser/scheduler/retry.h"

namespace eraser::scheduler {

struct CoreOptions {
  Policy policy;
  std::size_t shards = 0;
  int classes = 0;
  // Epochs of each training stage (the cost model: retraining shard k from
  // slice r costs sum over stages j >= r of epochs[j] * samples in slices
  // 0..j).
  std::vector<uint32_t> epochs;
  // Retrainings that may run at once.
  int slots = 1;
  // Extra slots a retraining may take from inference when a deadline is at
  // risk (the engine pauses inference while one runs). 0 disables it.
  int borrowable_slots = 1;
  // Work conservation: the borrowable slots also run, yielding to
  // inference, any retraining the plan starts while the normal slots are
  // busy (parked requests, the timing policy, work owed beyond a deadline),
  // whatever the policy. The deadline arithmetic still counts only `slots`.
  bool use_idle_cores = false;
  EstimatorOptions estimates;
  // The window over which offered and sustainable deletion rates are
  // measured.
  Duration rate_window = std::chrono::seconds(60);
  // How a shard whose retraining failed, and an owed erasure, are retried.
  RetryOptions retry;
  // A parked request waits at most this long for the retrainings it needs
  // (they may be failing, or be behind deadlines), then gets the partial
  // answer, or `rejected` with a retry hint when every shard is affected.
  // A request may ask for less (Decide's and Hold's `max_wait`).
  Duration max_wait = kDefaultMaxWait;
  // Test only: sees (and may change) the affected flags of every decision.
  // Lets a test plant the bug of an engine that forgets a shard.
  std::function<void(std::vector<uint8_t>* affected)> testing_affected_hook;
  // Test only: added to every clean stage the Core computes (CleanStage);
  // 1 plants the bug of a prefix one stage too deep.
  int testing_clean_stage_offset = 0;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

// One live (not yet erased) sample a deletion names, and where it sits.
struct SampleHit {
  SampleId sample;
  ShardId shard;
  uint32_t slice = 0;
};

enum class Reason {
  kImmediate,  // the immediate baseline
  kDeadline,   // the oldest covered deletion is due
  kBacklog,    // early: the work owed would not fit a deadline (KeepBusy)
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
  uint32_t first_slice = 0;         // earliest slice holding a sample
  std::vector<SampleId> samples;    // to leave out, ascending
  std::vector<DeletionSeq> covers;  // ascending
  Reason reason = Reason::kImmediate;
  // Runs on a slot borrowed from inference. Unless it `yields`, it takes
  // precedence over inference (a deadline at risk: inference pauses or is
  // throttled meanwhile); a retraining that `yields` runs only while
  // inference leaves the core idle, pausing between mini-batches while a
  // batch computes (CoreOptions::use_idle_cores).
  bool borrowed = false;
  bool yields = false;
  // A yielding order takes precedence over inference from this time on
  // (max: never), as a borrowed one does from the start: then, even
  // restarted at full speed, it would end no earlier than a margin before
  // its deadline (its progress on what inference left is not known, so it
  // is assumed to be none). The Core sets it when the order starts; the
  // executor checks it at each pause. (An Interrupt may promote the order
  // earlier; this time stays when it is at risk from.)
  TimePoint promote_at = TimePoint::max();
  // The deadline of the oldest deletion it covers (max: the policy has
  // none).
  TimePoint due = TimePoint::max();
  uint64_t predicted_sample_epochs = 0;
  double predicted_seconds = 0;  // the planning estimate (high quantile)
};

// What committing an order writes, decided before the write.
struct ApplyPlan {
  // Pending deletions the retrained model no longer holds: every one the
  // order covers, and any acknowledged meanwhile naming only samples it
  // left out. Their records note the shard's new version.
  std::vector<DeletionSeq> excluded;
  // Of those, the ones no shard holds any more: marked applied.
  std::vector<DeletionSeq> completed;
};

// A computed request's fate.
struct Verdict {
  enum class Kind {
    kAnswer,  // answer it now with the fields below
    kParked,  // parked for retraining (rule wait): see Revotes
    kHeld,    // the immediate baseline: compute it again later
  };
  Kind kind = Kind::kAnswer;
  int32_t label = -1;
  certify::Decision decision = certify::Decision::kClean;
  int32_t margin = 0;
  std::vector<ShardId> affected;
  // The version of each shard's model behind its vote (for `partial`, the
  // affected shards did not contribute).
  std::vector<uint64_t> versions;
  bool exposed = false;
  uint64_t watermark = 0;
  // Pending deletions held by the affected shards (for the audit record).
  std::vector<DeletionSeq> pending;
  // For `prefix` (empty otherwise), by shard: the stage of the clean prefix
  // that voted (its version is in `versions`), -1 where the served model
  // voted or the shard was left out.
  std::vector<int32_t> prefix_stages;
};

// The clean prefixes that voted with a batch, by shard (the rule
// `prefix`): stage[k] < 0 where shard k has none. A clean prefix of shard k
// is the checkpoint of stage `stage[k]` (trained on slices 0..stage[k]),
// read from the store while the shard served `served[k]`; `version[k]` is
// the checkpoint's own version, `votes[k * n + i]` its vote on request i of
// n.
struct PrefixVotes {
  std::vector<int32_t> stage;
  std::vector<uint64_t> served;
  std::vector<uint64_t> version;
  std::vector<int32_t> votes;
};

// A deletion that left every shard, and whether it left later than the
// policy's deadline after its arrival (the Core judges it, on every path
// that completes a deletion).
struct Completion {
  DeletionSeq seq;
  TimePoint arrival;
  bool late = false;
};

// A parked request wants shard `shard`'s vote from model `version`, which
// holds no pending deletion.
struct Revote {
  uint64_t request = 0;
  ShardId shard;
  uint64_t version = 0;
};

// Unlearning load and capacity over the last rate_window.
struct Capacity {
  double offered_per_second = 0;  // deletions acknowledged
  double applied_per_second = 0;  // deletions applied
  double busy_fraction = 0;       // of the slots, retraining
  // Deletions per second the slots could apply if always busy, at the
  // measured work per deletion; 0 until something was applied.
  double sustainable_per_second = 0;
  bool overloaded = false;
  // Deletions whose deadline planning says cannot be met with the normal
  // slots (a borrowed slot is then used), or whose retraining yields to
  // inference and could no longer end in time even at full speed.
  std::size_t deadlines_at_risk = 0;
};

class Core {
 public:
  // `slice_sizes[k][r]`: live samples in slice r of shard k; `versions[k]`:
  // the served model version of shard k.
  Core(CoreOptions options, std::vector<std::vector<uint64_t>> slice_sizes,
       std::vector<uint64_t> versions, TimePoint now);
  ~Core();

  // ---- deletions ----------------------------------------------------------
  // An acknowledged deletion (or one recovered at start, with its arrival
  // time, so its deadline resumes) and its live samples: registered, and
  // the watermark raised, in one step. Parked requests whose voters hold
  // it become affected there. A seq already known is ignored; a deletion
  // with no live sample only raises the watermark.
  void OnDeletion(DeletionSeq seq, TimePoint arrival,
                  const std::vector<SampleHit>& live);
  // The pending deletions that name exactly `live`, the same samples in
  // the same shards (what a repeated request names), ascending: asking for
  // one of them again adds nothing to what it will apply.
  std::vector<DeletionSeq> PendingNaming(
      const std::vector<SampleHit>& live) const;
  // Every deletion up to `seq` is known (registered, or applied before the
  // engine started): the watermark is at least `seq`.
  void KnownUpTo(DeletionSeq seq);
  // The highest sequence number up to which every deletion is registered:
  // concurrent requests may register out of order (the log issues numbers
  // in order, the engine registers each after its append), and a number
  // is not reached until those below it are.
  uint64_t watermark() const { return watermark_; }

  // ---- inference ----------------------------------------------------------
  // True when a request must not be computed now (the immediate baseline
  // with a deletion pending): Hold it instead.
  bool HoldsInference() const;
  // `max_wait` bounds how long this request may be held (or parked), below
  // CoreOptions::max_wait.
  void Hold(uint64_t request, TimePoint now,
            Duration max_wait = Duration::max());
  // Decides request `request` from one vote per shard, computed by the
  // models of `versions`, at `now`. A shard is affected if its served
  // model holds a pending deletion, or if it was replaced since `versions`
  // (the newer model may have been retrained to forget something the one
  // that voted holds).
  // Under the rule `prefix`, `prefix` (may be null) holds the clean
  // prefixes' votes on the batch, and `row` this request's index in it: a
  // prefix votes only if it is still clean (its stage at most the shard's
  // CleanStage, read while the shard served the model it serves now).
  // Under the rule `soft`, `probs` (may be null: the votes' plurality
  // decides) holds each shard's probabilities for this request, shard k's
  // `classes` of them at probs[k * classes].
  Verdict Decide(uint64_t request, const std::vector<int32_t>& votes,
                 const std::vector<uint64_t>& versions, TimePoint now,
                 Duration max_wait = Duration::max(),
                 const PrefixVotes* prefix = nullptr, std::size_t row = 0,
                 std::size_t rows = 1, const float* probs = nullptr);
  // Whether Decide uses the shards' probabilities (the rule `soft`): the
  // shell computes them only then.
  bool UsesProbabilities() const;
  // The stage of shard `shard`'s clean prefix: the last stage before the
  // slice of its earliest pending deletion (slices - 1 when none is
  // pending), -1 when that deletion is in slice 0.
  int32_t CleanStage(ShardId shard) const;
  // The clean prefixes the rule `prefix` can use now, by shard: CleanStage
  // of each affected shard, -1 for the others (and for every shard under
  // any other rule). The shell loads them, off the inference path, when
  // this changes.
  std::vector<int32_t> WantedPrefixes() const;
  // Whether answers that cannot be certified would now use clean prefixes:
  // the rule is `prefix` and a shard is affected (the shell computes prefix
  // votes only then).
  bool UsesPrefixes() const;
  // The votes parked requests can use now: affected shards whose served
  // model holds no pending deletion and is newer than the one that voted.
  std::vector<Revote> Revotes() const;
  // A revote's result. Returns the answer (`waited`) once the request
  // certifies; nothing if it stays parked or the revote is stale.
  std::optional<Verdict> OnRevote(const Revote& revote, int32_t vote,
                                  TimePoint now);
  // Held requests to compute again: every one once nothing is pending.
  std::vector<uint64_t> TakeReleased();
  // Parked and held requests, forgotten (the engine is closing).
  std::vector<uint64_t> TakeAllWaiting();
  // Forgets one parked or held request.
  void Forget(uint64_t request);

  // ---- unlearning ---------------------------------------------------------
  // The retrainings to start now; each counts as running until OnApplied,
  // OnRetrainFailed or OnRetrainPreempted.
  std::vector<RetrainOrder> Poll(TimePoint now);
  // When Poll must next be called if no event arrives; nullopt if never.
  std::optional<TimePoint> NextWakeup() const;
  // What committing `order` now writes: call it with the store write
  // ahead, and pass the same plan to OnApplied once it committed.
  ApplyPlan PlanApply(const RetrainOrder& order) const;
  // The order's retrained model (version `version`) is committed and
  // served, with `plan`, the PlanApply the commit wrote. The Core forgets
  // exactly what the store recorded: a deletion acknowledged after the plan
  // stays pending even if it names only samples the order left out, and a
  // later order of the shard (with nothing left to train) records it.
  // `held` is how long the order held its slot (retraining, apply,
  // compaction); `sample_epochs` the work it did. Returns the deletions it
  // completed.
  std::vector<Completion> OnApplied(const RetrainOrder& order,
                                    const ApplyPlan& plan, uint64_t version,
                                    TimePoint now, Duration held,
                                    uint64_t sample_epochs);
  // The order failed after holding its slot for `held`: its deletions wait
  // again, and the shard is retried no earlier than the time returned
  // (CoreOptions::retry).
  TimePoint OnRetrainFailed(const RetrainOrder& order, TimePoint now,
                            Duration held);
  // What the running yielding retrainings must do at their next pause,
  // decided when a shard past its latest start finds no slot free
  // (docs/engine.md, "A late shard makes room on the idle core"): take
  // precedence over inference now
  // (promoted early), or stop and give their slot to the late shard
  // (preempted). Each is named once. A preempted order counts as running
  // until OnRetrainPreempted (or, if it ended first, OnApplied or
  // OnRetrainFailed).
  struct Interrupt {
    ShardId shard;
    bool stop = false;  // preempt; otherwise promote now
  };
  std::vector<Interrupt> TakeInterrupts();
  // The order stopped as an Interrupt asked, after holding its slot for
  // `held`: its deletions wait again, with no backoff, and nothing is
  // learnt from its partial work.
  void OnRetrainPreempted(const RetrainOrder& order, TimePoint now,
                          Duration held);

  // The erasure (compaction) owed when an apply committed but its
  // compaction failed, or found owed at open. It is retried with the
  // shards' backoff; NextWakeup includes the retry.
  // Owed at open (a crash or a full disk left it): due at once.
  void OnErasureOwedAtOpen(TimePoint now);
  // An apply's compaction or a retry failed at `now`: returns when to try
  // again (CoreOptions::retry).
  TimePoint OnErasureFailed(TimePoint now);
  // Whether a retry is due; if so, *attempt names it for
  // OnErasureFinished.
  bool ErasureDue(TimePoint now, uint64_t* attempt) const;
  // The attempt an erasure starting now would be: an apply's own
  // compaction pays every debt recorded before it began.
  uint64_t ErasureAttempt() const { return erasure_.failures_ever; }
  // The retry `attempt` finished the erasure. A failure recorded since it
  // began keeps the debt (the retry may have started before that apply).
  void OnErasureFinished(uint64_t attempt);
  bool erasure_owed() const { return erasure_.owed; }
  // Another engine sharing the store committed model `version` of `shard`,
  // now served here: it leaves out `gone` (the shard's samples erased in the
  // store). Pending deletions lose those samples in the shard, as after
  // OnApplied; returns the deletions that completed. Ignored unless
  // `version` is newer than the shard's.
  std::vector<Completion> OnReplaced(ShardId shard, uint64_t version,
                                     const std::vector<SampleId>& gone,
                                     TimePoint now);
  // Forgets every shard's failures: what they waited for (a store that
  // could not be reached) is back, so failed shards are retried at once.
  void ClearBackoff();
  // The samples pending deletions still name in `shard`.
  std::vector<SampleId> PendingSamples(ShardId shard) const;
  // Parked and held requests that have waited max_wait by `now`: removed,
  // with the fallback verdict each gets (partial when unaffected shards
  // have a plurality, otherwise rejected).
  std::vector<std::pair<uint64_t, Verdict>> ExpireParked(TimePoint now);
  // Shards whose retraining is backing off after failures at `now`.
  std::vector<ShardId> BackingOff(TimePoint now) const;
  // The inference load: requests queued, and the fraction of recent time
  // the inference workers were busy (for idle:U).
  void OnLoad(std::size_t queued, double utilization);
  // While draining, every waiting shard is retrained as slots allow,
  // whatever the policy.
  void SetDraining(bool draining) { draining_ = draining; }
  // Overloaded as of the last Poll (what Decide degrades answers on).
  bool overloaded() const { return overloaded_; }

  // ---- state --------------------------------------------------------------
  std::size_t pending_deletions() const { return pending_.size(); }
  // Deletions completed later than the deadline, on any path (a local
  // retraining, or a model another engine retrained).
  uint64_t deadline_misses() const { return deadline_misses_; }
  bool IsPending(DeletionSeq seq) const { return pending_.count(seq) > 0; }
  // A pending deletion's arrival time.
  std::optional<TimePoint> Arrival(DeletionSeq seq) const;
  // The lowest sequence number pending, if any.
  std::optional<DeletionSeq> OldestPending() const {
    if (pending_.empty()) return std::nullopt;
    return pending_.begin()->first;
  }
  // Shards whose served model holds a pending deletion.
  std::vector<ShardId> AffectedShards() const;
  std::size_t parked() const { return parked_.size(); }
  std::size_t held() const { return held_.size(); }
  std::size_t running() const { return running_.size(); }
  // True when nothing is pending and nothing runs.
  bool Idle() const { return pending_.empty() && running_.empty(); }
  const std::vector<uint64_t>& versions() const { return versions_; }
  Capacity GetCapacity(TimePoint now) const;
  const Estimator& estimator() const { return estimator_; }
  // The planning estimate of the costliest retraining now: the shard with
  // the most live samples, from its first slice.
  double WholeShardSeconds() const;
  const Policy& policy() const { return options_.policy; }
  // The retraining slots the plan counts, and those it may borrow.
  int slots() const { return options_.slots; }
  int borrowable_slots() const { return options_.borrowable_slots; }
  bool uses_idle_cores() const { return options_.use_idle_cores; }

 private:
  struct Pending {
    TimePoint arrival;
    // Per shard still holding it: its samples there (id -> slice).
    std::map<ShardId, std::map<SampleId, uint32_t>> samples;
  };
  struct Running {
    RetrainOrder order;
    TimePoint started;
    bool preempted = false;       // asked to stop (TakeInterrupts)
    bool promoted_early = false;  // asked to take precedence before promote_at
  };
  struct Parked {
    certify::VoteTally tally;
    std::vector<uint64_t> versions;  // behind each vote
    TimePoint expires;               // then the fallback answer
  };
  struct Backoff {
    int failures = 0;
    TimePoint retry_at;
  };
  // One more failure of `b` at `now`: sets and returns b.retry_at.
  TimePoint Fail(Backoff& b, TimePoint now);
  struct Erasure {
    bool owed = false;
    Backoff backoff;
    uint64_t failures_ever = 0;  // names attempts (OnErasureFinished)
  };
  // Counts over one second of the rate window.
  struct Bucket {
    TimePoint start;
    std::size_t acknowledged = 0;
    std::size_t applied = 0;
    double busy_seconds = 0;  // slot time of the orders applied in it
  };

  // ---- core.cc ----
  bool ShardAffected(std::size_t k) const;
  std::vector<DeletionSeq> PendingIn(const std::vector<ShardId>& shards) const;
  Verdict Answer(int32_t label, certify::Decision decision, int32_t margin,
                 const std::vector<uint8_t>& affected,
                 std::vector<uint64_t> versions) const;
  // The `prefix` answer: a tie among the unaffected shards' leading labels
  // (all labels if none votes) broken by the clean prefixes' votes for
  // them. Nothing if the unaffected shards lead with one label or no clean
  // prefix votes for a tied one (then `partial` decides).
  std::optional<Verdict> PrefixAnswer(const std::vector<int32_t>& votes,
                                      const std::vector<uint8_t>& affected,
                                      const std::vector<uint64_t>& versions,
                                      int32_t margin, const PrefixVotes& prefix,
                                      std::size_t row, std::size_t rows) const;
  void Park(uint64_t request, const std::vector<int32_t>& votes,
            const std::vector<uint8_t>& affected,
            const std::vector<uint64_t>& versions, TimePoint expires);
  // When a request parked or held at `now` falls back: after the shorter
  // of CoreOptions::max_wait and the request's own.
  TimePoint Expiry(TimePoint now, Duration max_wait) const;
  std::vector<DeletionSeq> Excluded(const RetrainOrder& order) const;
  // Drops the order's samples from the pending deletions of its shard (the
  // shard's version becomes `version`): `excluded` leave the shard; the
  // others keep their samples still in it (all of them if none is); returns
  // the deletions completed.
  std::size_t Remove(const RetrainOrder& order, uint64_t version,
                     const std::vector<DeletionSeq>& excluded);

  Bucket& BucketAt(TimePoint t);
  // Of `before` (pending deletions with their arrivals), those no longer
  // pending, judged against the deadline at `now`.
  std::vector<Completion> Completed(
      const std::vector<std::pair<DeletionSeq, TimePoint>>& before,
      TimePoint now);

  // ---- plan.cc ----
  // Shards with pending deletions and no retraining in flight.
  std::vector<ShardId> Waiting() const;
  // Waiting() minus the shards backing off at `now`.
  std::vector<ShardId> Startable(TimePoint now) const;
  uint32_t FirstSlice(ShardId shard) const;
  uint64_t Cost(ShardId shard, uint32_t first_slice) const;
  TimePoint Due(ShardId shard) const;
  double PredictSeconds(ShardId shard) const;
  // The work ahead of `shard` per slot: what is left of the running
  // retrainings but `without`'s, and the waiting shards due before it.
  double BacklogAhead(ShardId shard, TimePoint now, int slots,
                      std::optional<ShardId> without = std::nullopt) const;
  TimePoint LatestStart(ShardId shard, TimePoint now, int slots,
                        std::optional<ShardId> without = std::nullopt) const;
  // The span rates are measured over at `now`, counting from `first` (the
  // Core's start, or an older deletion it recovered).
  double RateWindowSeconds(TimePoint now, TimePoint first) const;
  // GetCapacity(now).offered_per_second, without the rest.
  double OfferedPerSecond(TimePoint now) const;
  // The planned time of retraining `shard` for a deletion of a random
  // sample of it (from the slice it lands in).
  double ExpectedRetrainSeconds(ShardId shard) const;
  // Whether the normal slots should start waiting shards now rather than
  // idle until their latest starts: the work they owe, plus a reserve for
  // the retrainings deletions arriving within one deadline are likely to
  // need, would not fit in one deadline (docs/engine.md).
  bool KeepBusy(TimePoint now) const;
  std::vector<ShardId> WaitWanted() const;
  bool TimingTriggered(TimePoint now);
  Reason TimingReason() const;
  RetrainOrder Start(ShardId shard, Reason reason, bool borrowed, TimePoint now,
                     bool yields = false);
  int FreeSlots(bool borrow) const;
  // Starts `shard` on a free normal slot, else (use_idle_cores) on a free
  // borrowable slot, yielding to inference; false when neither is free.
  bool StartOnFreeSlot(ShardId shard, Reason reason, TimePoint now,
                       std::vector<RetrainOrder>* orders);
  bool HasFreeSlot() const {
    return FreeSlots(false) > 0 ||
           (options_.use_idle_cores && FreeSlots(true) > 0);
  }
  std::size_t DeadlinesAtRisk(TimePoint now) const;
  // Of the yielding retrainings not yet promoted (at their time or early)
  // at `now`, the shard of the one due last (while none is stopping): the
  // one that could make room for a late shard.
  std::optional<ShardId> Yielding(TimePoint now) const;
  // `late` is past its latest start and no slot can take it: the yielding
  // retraining V makes room. It stops (preempted) when it is due after
  // `late`, `late` is still past its latest start without V's remaining
  // work ahead of it, and V, waiting again, would not be past its own.
  // Otherwise it takes precedence at once (promoted) and runs at full
  // speed, freeing its core as soon as it can. Nothing when there is no
  // such V.
  void MakeRoomFor(ShardId late, TimePoint now);

  const CoreOptions options_;
  std::vector<std::vector<uint64_t>> slice_sizes_;
  std::vector<uint64_t> versions_;
  std::map<DeletionSeq, Pending> pending_;
  std::vector<std::set<DeletionSeq>> shard_pending_;  // index of pending_
  std::map<ShardId, Running> running_;
  std::vector<Interrupt> interrupts_;  // not yet taken
  std::vector<Backoff> backoff_;       // per shard
  Erasure erasure_;
  std::map<uint64_t, Parked> parked_;
  std::map<uint64_t, TimePoint> held_;  // request -> when it falls back
  uint64_t watermark_ = 0;
  std::set<uint64_t> registered_ahead_;  // above watermark_ + 1
  uint64_t deadline_misses_ = 0;
  Estimator estimator_;
  // The last rate_window in one-second buckets, oldest first: bounded.
  std::vector<Bucket> buckets_;
  std::size_t queued_ = 0;
  double utilization_ = 0;
  const TimePoint started_;
  TimePoint last_poll_;
  TimePoint next_tick_;
  // batch/periodic triggered: retrain every waiting shard as slots allow,
  // until none is left waiting.
  bool armed_ = false;
  bool draining_ = false;
  // GetCapacity().overloaded as of the last Poll (Decide reads it per
  // request, so it is not recomputed there).
  bool overloaded_ = false;
};

}  // namespace eraser::scheduler

#endif  // ERASER_SCHEDULER_CORE_H_
