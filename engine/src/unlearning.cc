// Unlearning: the control loop that polls the Core, retraining on the
// unlearning arena, the apply-and-swap step, and Drain.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine_impl.h"
#include "eraser/common/sync_point.h"

namespace eraser::engine::internal {
namespace {

constexpr auto kLoadSamplePeriod = std::chrono::milliseconds(100);

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

void EngineImpl::ControlLoop() {
  MutexLock lock(&mu_);
  int64_t last_busy = busy_nanos_.load();
  TimePoint last_sample = clock_->Now();
  double utilization = 0;
  bool overloaded = false;
  while (!stop_control_) {
    TimePoint now = clock_->Now();
    if (now - last_sample >= kLoadSamplePeriod) {
      const int64_t busy = busy_nanos_.load();
      utilization = std::min(
          1.0, static_cast<double>(busy - last_busy) * 1e-9 /
                   (Seconds(now - last_sample) * options_.inference.threads));
      last_busy = busy;
      last_sample = now;
    }
    // Requests that waited too long get their fallback answer.
    if (std::vector<Answer> expired = ExpireWaiting(now); !expired.empty()) {
      mu_.Unlock();
      Deliver(std::move(expired));
      mu_.Lock();
    }
    RetryErasure(now);
    if (!reload_.empty()) {
      mu_.Unlock();
      ReloadShards();
      mu_.Lock();
    }
    core_->OnLoad(queue_.size(), utilization);
    // The lock was let go above (a compaction can take seconds): the plan
    // is made at the time it is made.
    now = clock_->Now();
    for (scheduler::RetrainOrder& order : core_->Poll(now)) {
      if (options_.unlearning.log_retrainings) LogStarted(order, now);
      // The shard's previous order has ended: nothing asked of it applies.
      interrupts_[order.shard.value()].store(kNone);
      orders_.push_back(std::move(order));
    }
    if (!orders_.empty()) retrain_cv_.SignalAll();
    // Carried out at the retrainings' next pauses (Retrain).
    for (const scheduler::Core::Interrupt& i : core_->TakeInterrupts()) {
      interrupts_[i.shard.value()].store(i.stop ? kStop : kPromote);
      if (options_.unlearning.log_retrainings) {
        std::fprintf(stderr,
                     "eraser: %.3f s: shard %u retraining asked to %s: a "
                     "late shard finds no slot free\n",
                     Seconds(now - started_at_), i.shard.value(),
                     i.stop ? "stop (preempted)" : "take precedence now");
      }
      ERASER_SYNC_POINT("EngineImpl::ControlLoop:Interrupt");
    }
    LoadPrefixes();
    const scheduler::Capacity capacity = core_->GetCapacity(now);
    metrics_->SetCapacity(capacity.offered_per_second,
                          capacity.sustainable_per_second, capacity.overloaded,
                          capacity.deadlines_at_risk);
    metrics_->SetBackingOff(core_->BackingOff(now).size());
    if (capacity.overloaded != overloaded) {
      overloaded = capacity.overloaded;
      std::fprintf(stderr,
                   overloaded
                       ? "eraser: unlearning overloaded: %.2f deletions/s "
                         "offered, %.2f sustainable, %zu deadlines at risk; "
                         "answers degrade to keep the slots for deadlines\n"
                       : "eraser: unlearning no longer overloaded (%.2f "
                         "deletions/s offered, %.2f sustainable, %zu at "
                         "risk)\n",
                   capacity.offered_per_second, capacity.sustainable_per_second,
                   capacity.deadlines_at_risk);
    }
    // Sleep until the Core's next wake-up, an event, or the next load
    // sample when the policy looks at load or overload is being watched.
    TimePoint until = now + std::chrono::seconds(1);
    if (std::optional<TimePoint> wake = core_->NextWakeup()) {
      until = std::min(until, *wake);
    }
    if (options_.policy.timing == scheduler::Timing::kIdle) {
      until = std::min(until, now + kLoadSamplePeriod);
    }
    while (!event_ && !stop_control_ &&
           control_cv_.WaitUntil(&mu_, *clock_, until)) {
    }
    event_ = false;
  }
}

void EngineImpl::RetrainerLoop() {
  MutexLock lock(&mu_);
  while (true) {
    while (!stop_retrainers_ && orders_.empty()) retrain_cv_.Wait(&mu_);
    // At shutdown, orders not started are dropped: their deletions stay
    // pending in the durable log.
    if (stop_retrainers_) return;
    const scheduler::RetrainOrder order = std::move(orders_.front());
    orders_.pop_front();
    ++active_retrains_;
    mu_.Unlock();
    RunOrder(order);
    mu_.Lock();
    --active_retrains_;
    drain_cv_.SignalAll();
  }
}

void EngineImpl::LoadPrefixes() {
  if (options_.policy.rule != scheduler::UncertifiedRule::kPrefix ||
      !options_.policy.certifies()) {
    return;
  }
  const std::vector<int32_t> wanted = core_->WantedPrefixes();
  const std::vector<uint64_t>& served = core_->versions();
  const std::size_t k = num_shards_;
  std::shared_ptr<const Prefixes> loaded = prefixes_;
  auto current = [&](std::size_t s) {
    return loaded != nullptr && loaded->stage[s] == wanted[s] &&
           loaded->served[s] == served[s];
  };
  bool changed = false;
  for (std::size_t s = 0; s < k; ++s) {
    // A prefix no longer wanted is dropped too: at most one per shard stays
    // in memory.
    const bool held = loaded != nullptr && loaded->models[s] != nullptr;
    changed |= wanted[s] >= 0 ? !current(s) : held;
  }
  if (!changed) return;
  auto next = std::make_shared<Prefixes>();
  next->stage.assign(k, -1);
  next->served.assign(k, 0);
  next->version.assign(k, 0);
  next->models.resize(k);
  std::vector<std::size_t> load;
  for (std::size_t s = 0; s < k; ++s) {
    if (wanted[s] < 0) continue;
    next->stage[s] = wanted[s];
    next->served[s] = served[s];
    if (current(s)) {
      next->version[s] = loaded->version[s];
      next->models[s] = loaded->models[s];
    } else {
      load.push_back(s);
    }
  }
  // Read after the served versions: a checkpoint is at least as new as the
  // chain of the model served then (docs/engine.md, "Prefix answers").
  mu_.Unlock();
  for (std::size_t s : load) {
    StatusOr<unlearning::ShardModel> m = sisa_->LoadStage(
        ShardId(static_cast<uint32_t>(s)), static_cast<uint32_t>(wanted[s]));
    if (m.ok()) {
      next->version[s] = m->version;
      next->models[s] = std::move(m->model);
    } else {
      std::fprintf(stderr,
                   "eraser: cannot load shard %zu's clean prefix (stage %d): "
                   "%s\n",
                   s, wanted[s], m.status().ToString().c_str());
    }
  }
  mu_.Lock();
  prefixes_ = std::move(next);
}

void EngineImpl::RetryErasure(TimePoint now) {
  uint64_t attempt = 0;
  if (!core_->ErasureDue(now, &attempt)) return;
  // Compaction takes seconds: not under the lock.
  mu_.Unlock();
  const Status erased = store_->FinishErasure();
  mu_.Lock();
  if (erased.ok()) {
    core_->OnErasureFinished(attempt);
    if (!core_->erasure_owed()) {
      metrics_->SetErasureOwed(false);
      std::fprintf(stderr, "eraser: owed erasure finished\n");
    }
    return;
  }
  const TimePoint failed = clock_->Now();
  const TimePoint retry = core_->OnErasureFailed(failed);
  std::fprintf(stderr, "eraser: erasure still owed (%s); retry in %.1f s\n",
               erased.ToString().c_str(), Seconds(retry - failed));
}

EngineImpl::Retrained EngineImpl::Retrain(
    const scheduler::RetrainOrder& order) {
  Retrained r;
  if (options_.testing.retrain_fault) {
    r.status = options_.testing.retrain_fault(order.shard);
    if (!r.status.ok()) return r;
  }
  // A retraining on an idle inference core steps aside, between
  // mini-batches, while an inference batch computes, until the time the
  // Core set for its promotion (its deadline needs the core) or until the
  // Core asks it to take precedence now (another shard's late deadline
  // waits for the core): from its next pause on it takes precedence, as a
  // borrowed retraining does from the start. Asked to stop (preempted), it
  // stops at its next pause, and its deletions wait again. Any other takes
  // its place at the gate. One request: the pauses come one at a time.
  bool promoted = false;
  std::function<Status()> pause;
  if (order.yields) {
    pause = [this, &r, &order, &promoted]() -> Status {
      if (promoted) return OkStatus();
      const int asked = interrupts_[order.shard.value()].load();
      const TimePoint now = clock_->Now();
      // A stop decided just before this retraining's own promotion time
      // (the Core's clock lags this one) is not carried out: it then needs
      // its core itself, and ends as any order does.
      if (asked == kStop && now < order.promote_at) {
        r.preempted = true;
        return UnavailableError(
            "shard " + std::to_string(order.shard.value()) +
            "'s retraining preempted: a shard due earlier needs its core");
      }
      if (asked != kNone || now >= order.promote_at) {
        gate_.EnterRetrain(/*borrowed=*/true);
        promoted = true;
        ++promoted_;
        metrics_->RetrainPromoted();
        if (options_.unlearning.log_retrainings) {
          std::fprintf(stderr,
                       "eraser: %.3f s: shard %u retraining promoted: takes "
                       "precedence over inference\n",
                       Seconds(now - started_at_), order.shard.value());
        }
        return OkStatus();
      }
      r.paused += gate_.YieldToInference();
      return OkStatus();
    };
  } else {
    gate_.EnterRetrain(order.borrowed);
  }
  // The gate is left however the retraining ends.
  struct LeaveGate {
    ComputeGate& gate;
    const scheduler::RetrainOrder& order;
    const bool& promoted;
    ~LeaveGate() {
      if (!order.yields) {
        gate.ExitRetrain(order.borrowed);
      } else if (promoted) {
        gate.ExitRetrain(/*borrowed=*/true);
      }
    }
  };
  StatusOr<std::vector<unlearning::RetrainResult>> retrained = [&] {
    LeaveGate leave{gate_, order, promoted};
    return sisa_->Retrain({{order.shard, order.samples}}, pause);
  }();
  r.status = retrained.status();
  if (!r.status.ok()) return r;
  r.result = std::move(retrained->front());
  return r;
}

void EngineImpl::PrepareSnapshot(const scheduler::RetrainOrder& order,
                                 Retrained& r) {
  if (!r.status.ok() || r.result.model == nullptr) return;
  // The snapshot to publish is built before anything is committed, so a
  // failure here leaves the store untouched. Only applies replace
  // snapshot_, and they are serialised by apply_mu_.
  std::vector<unlearning::ShardModel> shards;
  {
    MutexLock lock(&mu_);
    shards = snapshot_->shards;
  }
  shards[order.shard.value()] = {order.shard, r.result.version, r.result.model};
  StatusOr<std::shared_ptr<const Snapshot>> next =
      MakeSnapshot(std::move(shards));
  r.status = next.status();
  if (next.ok()) r.next = std::move(next).value();
}

bool EngineImpl::Commit(const scheduler::RetrainOrder& order,
                        Retrained& retrained) {
  if (!retrained.status.ok()) return false;
  if (shared_store_ && retrained.result.model == nullptr) {
    // Nothing of the order is left in the store: another engine's apply
    // erased it. This engine's model leaves it out only if it is the
    // shard's newest (the newest leaves out every erased sample of its
    // shard); otherwise the newer one is swapped in.
    StatusOr<storage::Checkpoint> newest =
        store_->GetCheckpoint(order.shard, sisa_->options().slices - 1);
    if (!newest.ok()) {
      retrained.status = newest.status();
      retrained.failed_in = "storage";
      return false;
    }
    uint64_t served = 0;
    {
      MutexLock lock(&mu_);
      served = snapshot_->shards[order.shard.value()].version;
    }
    if (newest->version > served) {
      retrained.status =
          AlreadyExistsError("shard " + std::to_string(order.shard.value()) +
                             ": another engine committed model version " +
                             std::to_string(newest->version));
      return false;
    }
  }
  storage::ApplyBatch batch;
  batch.checkpoints = retrained.result.checkpoints;
  batch.erase = order.samples;
  batch.applied_at = clock_->Now();
  {
    MutexLock lock(&mu_);
    retrained.plan = core_->PlanApply(order);
    retrained.erasure_attempt = core_->ErasureAttempt();
    batch.applied = retrained.plan.completed;
    const uint64_t version =
        retrained.next != nullptr
            ? retrained.result.version
            : snapshot_->shards[order.shard.value()].version;
    for (DeletionSeq seq : retrained.plan.excluded) {
      batch.excluded.push_back({seq, order.shard, version});
    }
  }
  bool committed = false;
  retrained.failed_in = "storage";
  if (rewound_from_.load() != 0) {
    // The Core's pending deletions may carry numbers the database gave
    // again to others: an apply would mark those applied (docs/scale-out.md).
    retrained.status = RewoundError();
    return false;
  }
  retrained.status = store_->Apply(batch, &committed);
  return committed;
}

void EngineImpl::Swap(const scheduler::RetrainOrder& order,
                      Retrained& retrained, bool committed, TimePoint started) {
  const TimePoint now = clock_->Now();
  // What a deadline waits for is the application, so the Core learns the
  // whole time the slot was held: retraining, apply and compaction; less
  // what a yielding retraining left to inference (the inference load, not
  // the retraining's cost).
  const Duration held = now - started - retrained.paused;
  if (!committed && retrained.preempted) {
    // Not a failure: the shard waits again, with no backoff.
    core_->OnRetrainPreempted(order, now, held);
    ++preempted_;
    metrics_->RetrainPreempted();
    event_ = true;
    if (options_.unlearning.log_retrainings) {
      std::fprintf(stderr,
                   "eraser: %.3f s: shard %u retraining preempted after %.2f "
                   "s: its %zu deletion%s wait again\n",
                   Seconds(now - started_at_), order.shard.value(),
                   Seconds(now - started), order.covers.size(),
                   order.covers.size() == 1 ? "" : "s");
    }
    return;
  }
  if (!committed) {
    const TimePoint retry = core_->OnRetrainFailed(order, now, held);
    const Status& s = retrained.status;
    if (retrained.claimed_elsewhere || s.code() == StatusCode::kAlreadyExists) {
      // Another engine retrains the shard, or already committed a newer
      // model: it is swapped in when the log shows it (or now), and what
      // still pends is retried after the backoff.
      if (s.code() == StatusCode::kAlreadyExists) reload_.insert(order.shard);
      event_ = true;
      if (options_.unlearning.log_retrainings) {
        std::fprintf(stderr,
                     "eraser: %.3f s: shard %u retraining not applied: %s\n",
                     Seconds(now - started_at_), order.shard.value(),
                     s.ToString().c_str());
      }
      return;
    }
    if (closed_ && s.code() == StatusCode::kUnavailable) {
      std::fprintf(stderr,
                   "eraser: retraining of shard %u stopped at shutdown; its "
                   "deletions stay pending\n",
                   order.shard.value());
      return;
    }
    const char* reason = s.code() == StatusCode::kResourceExhausted
                             ? "disk_full"
                             : retrained.failed_in;
    ++retrain_failures_;
    metrics_->RetrainFailed(reason);
    last_retrain_failure_ = "shard " + std::to_string(order.shard.value()) +
                            " (" + reason + "): " + s.ToString();
    std::fprintf(stderr, "eraser: retraining %s; retry in %.3g s\n",
                 last_retrain_failure_.c_str(), Seconds(retry - now));
    return;
  }
  // The new checkpoints are durable: publish the model in one pointer swap,
  // then let the Core forget what the shard no longer holds.
  uint64_t version = snapshot_->shards[order.shard.value()].version;
  const unlearning::RetrainResult& result = retrained.result;
  if (retrained.next != nullptr) {
    snapshot_ = std::move(retrained.next);
    version = result.version;
    metrics_->Retrained(result.cost.wall_seconds, result.cost.sample_epochs);
    ++retrains_;
    unlearning_cost_.sample_epochs += result.cost.sample_epochs;
    unlearning_cost_.cpu_seconds += result.cost.cpu_seconds;
    unlearning_cost_.wall_seconds += result.cost.wall_seconds;
  }
  const std::vector<scheduler::Completion> completed = core_->OnApplied(
      order, retrained.plan, version, now, held, result.cost.sample_epochs);
  ++applies_;
  for (const scheduler::Completion& c : completed) {
    metrics_->DeletionApplied(Seconds(now - c.arrival));
    if (c.late) metrics_->DeadlineMissed();
  }
  if (options_.unlearning.log_retrainings) {
    LogApplied(order, now, now - started, retrained.paused, completed);
  }
}

void EngineImpl::LogStarted(const scheduler::RetrainOrder& order,
                            TimePoint now) const {
  const char* core = !order.borrowed ? "an unlearning slot"
                     : order.yields  ? "the idle inference core, yielding"
                                     : "the inference core, borrowed";
  char due[48] = "no deadline";
  if (order.due != TimePoint::max()) {
    const double left = Seconds(order.due - now);
    std::snprintf(due, sizeof due,
                  left >= 0 ? "due in %.2f s" : "overdue by %.2f s",
                  std::abs(left));
  }
  std::fprintf(stderr,
               "eraser: %.3f s: shard %u retraining started (%s) on %s: from "
               "slice %u, %zu deletion%s, planned %.2f s, %s\n",
               Seconds(now - started_at_), order.shard.value(),
               scheduler::ReasonName(order.reason), core, order.first_slice,
               order.covers.size(), order.covers.size() == 1 ? "" : "s",
               order.predicted_seconds, due);
}

void EngineImpl::LogApplied(
    const scheduler::RetrainOrder& order, TimePoint now, Duration wall,
    Duration paused,
    const std::vector<scheduler::Completion>& completed) const {
  double longest = 0;
  std::size_t late = 0;
  for (const scheduler::Completion& c : completed) {
    longest = std::max(longest, Seconds(now - c.arrival));
    late += c.late;
  }
  std::fprintf(stderr,
               "eraser: %.3f s: shard %u retraining applied after %.2f s "
               "(planned %.2f s, %.2f s yielded to inference): covered %zu "
               "deletion%s, completed %zu, longest delay %.2f s, %zu late\n",
               Seconds(now - started_at_), order.shard.value(), Seconds(wall),
               order.predicted_seconds, Seconds(paused), order.covers.size(),
               order.covers.size() == 1 ? "" : "s", completed.size(), longest,
               late);
}

void EngineImpl::ReloadShards() {
  std::set<ShardId> shards;
  {
    MutexLock lock(&mu_);
    shards.swap(reload_);
  }
  const uint32_t last_slice = sisa_->options().slices - 1;
  for (ShardId shard : shards) {
    // The pending samples the store has erased, read before the model: the
    // model read next is at least as new as the apply that erased them, so
    // it leaves them out.
    std::vector<SampleId> pending;
    {
      MutexLock lock(&mu_);
      pending = core_->PendingSamples(shard);
    }
    std::vector<SampleId> gone;
    Status status;
    for (SampleId id : pending) {
      StatusOr<storage::SampleLocation> l = store_->LookupSample(id);
      if (!l.ok()) {
        status = l.status();
        break;
      }
      if (l->erased) gone.push_back(id);
    }
    StatusOr<storage::Checkpoint> checkpoint =
        status.ok() ? store_->GetCheckpoint(shard, last_slice)
                    : StatusOr<storage::Checkpoint>(status);
    StatusOr<std::shared_ptr<const unlearning::Model>> model =
        checkpoint.ok()
            ? unlearning::LoadModel(sisa_->options().model, checkpoint->blob)
            : StatusOr<std::shared_ptr<const unlearning::Model>>(
                  checkpoint.status());
    MutexLock apply_lock(&apply_mu_);
    std::vector<unlearning::ShardModel> models;
    {
      MutexLock lock(&mu_);
      if (!model.ok()) {
        // Tried again at the control loop's next turn.
        reload_.insert(shard);
        std::fprintf(stderr, "eraser: cannot load shard %u's newer model: %s\n",
                     shard.value(), model.status().ToString().c_str());
        continue;
      }
      if (checkpoint->version <= snapshot_->shards[shard.value()].version) {
        continue;  // this engine's own apply got there first
      }
      models = snapshot_->shards;
    }
    models[shard.value()] = {shard, checkpoint->version, *model};
    StatusOr<std::shared_ptr<const Snapshot>> next =
        MakeSnapshot(std::move(models));
    MutexLock lock(&mu_);
    if (!next.ok()) {
      std::fprintf(stderr, "eraser: cannot serve shard %u's newer model: %s\n",
                   shard.value(), next.status().ToString().c_str());
      continue;
    }
    snapshot_ = std::move(next).value();
    ++applies_;
    const TimePoint now = clock_->Now();
    for (const scheduler::Completion& c :
         core_->OnReplaced(shard, checkpoint->version, gone, now)) {
      metrics_->DeletionApplied(Seconds(now - c.arrival));
      if (c.late) metrics_->DeadlineMissed();
    }
    ++reloads_;
    metrics_->ShardReloaded();
    UpdateGauges();
    drain_cv_.SignalAll();
  }
  RefreshParked();
  ReleaseHeld();
  ERASER_SYNC_POINT("EngineImpl::ReloadShards:Done");
}

void EngineImpl::RunOrder(const scheduler::RetrainOrder& order) {
  const TimePoint started = clock_->Now();
  // Sharing the store, one engine at a time retrains a shard; the claim is
  // held until the apply has committed.
  std::unique_ptr<storage::Store::ShardClaim> claim;
  Retrained retrained;
  if (rewound_from_.load() != 0) {
    // Nothing is retrained for a log that lost deletions (Commit).
    retrained.status = RewoundError();
    retrained.failed_in = "storage";
  } else if (shared_store_) {
    StatusOr<std::unique_ptr<storage::Store::ShardClaim>> got =
        store_->TryClaimShard(order.shard);
    if (!got.ok()) {
      retrained.status = got.status();
      retrained.failed_in = "storage";
    } else if (*got == nullptr) {
      retrained.status =
          UnavailableError("shard " + std::to_string(order.shard.value()) +
                           " is being retrained by another engine");
      retrained.claimed_elsewhere = true;
    } else {
      claim = std::move(got).value();
    }
  }
  if (retrained.status.ok()) retrained = Retrain(order);
  Status failure;
  {
    // One apply-and-swap at a time: which deletions an order completes
    // depends on the shards other orders have already applied.
    MutexLock apply_lock(&apply_mu_);
    PrepareSnapshot(order, retrained);
    const bool committed = Commit(order, retrained);
    ERASER_SYNC_POINT("EngineImpl::RunOrder:Committed");
    MutexLock lock(&mu_);
    Swap(order, retrained, committed, started);
    ERASER_SYNC_POINT("EngineImpl::RunOrder:Swapped");  // with mu_ held
    failure = retrained.status;
    if (committed && !failure.ok()) {
      // Applied, but the compaction failed: the erased bytes are still in
      // the files. The debt is durable; retry it with a backoff.
      const TimePoint failed = clock_->Now();
      const TimePoint retry = core_->OnErasureFailed(failed);
      metrics_->SetErasureOwed(true);
      std::fprintf(stderr,
                   "eraser: shard %u applied, erasure owed (%s); retry in "
                   "%.1f s\n",
                   order.shard.value(), failure.ToString().c_str(),
                   Seconds(retry - failed));
    } else if (committed && core_->erasure_owed()) {
      // The apply's compaction paid every erasure owed when it began.
      core_->OnErasureFinished(retrained.erasure_attempt);
      if (!core_->erasure_owed()) {
        metrics_->SetErasureOwed(false);
        std::fprintf(stderr, "eraser: owed erasure finished\n");
      }
    }
    // A compaction failure after the commit, or a failed retraining: Drain
    // reports it (a failed order's deletions wait for another).
    // (Not the shard another engine retrains, or already retrained, nor a
    // preempted retraining.)
    if (!failure.ok() && draining_ > 0 && !retrained.claimed_elsewhere &&
        !retrained.preempted && failure.code() != StatusCode::kAlreadyExists) {
      drain_error_ = failure;
    }
    UpdateGauges();
    event_ = true;
  }
  control_cv_.SignalAll();
  drain_cv_.SignalAll();
  RefreshParked();
  ReleaseHeld();
}

Status EngineImpl::Drain() {
  // Sharing the store, what Drain waits for includes every deletion other
  // engines acknowledged before it.
  RETURN_IF_ERROR(CatchUp());
  MutexLock lock(&mu_);
  if (closed_) return ShuttingDownError();
  if (draining_++ == 0) drain_error_ = OkStatus();
  core_->SetDraining(true);
  event_ = true;
  control_cv_.SignalAll();
  ERASER_SYNC_POINT("EngineImpl::Drain:Waiting");
  while (!closed_ && drain_error_.ok() && !(core_->Idle() && orders_.empty())) {
    drain_cv_.Wait(&mu_);
  }
  Status result = closed_ ? ShuttingDownError() : drain_error_;
  if (--draining_ == 0) core_->SetDraining(false);
  return result;
}

}  // namespace eraser::engine::internal
