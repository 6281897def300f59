// Deletion requests: resolution, durable acknowledgement, status.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include "engine_impl.h"
#include "eraser/common/sync_point.h"

namespace eraser::engine::internal {
namespace {

// Adds to `out` the shards another engine retrained past `versions` (the
// served ones) without a sample of `record`.
void AddRetrainedElsewhere(const storage::DeletionRecord& record,
                           const std::vector<uint64_t>& versions,
                           std::set<ShardId>* out) {
  for (const auto& [shard, version] : record.excluded_from) {
    if (shard.value() < versions.size() && version > versions[shard.value()]) {
      out->insert(shard);
    }
  }
}

}  // namespace

void EngineImpl::BlankTestRows(OwnerId owner) {
  const auto rows = test_rows_by_owner_.find(owner.value());
  if (rows == test_rows_by_owner_.end()) return;
  MutexLock lock(&test_mu_);
  for (std::size_t i : rows->second) dataset_.test.EraseRow(i);
}

bool EngineImpl::TestRowsLeft(OwnerId owner) const {
  const auto rows = test_rows_by_owner_.find(owner.value());
  if (rows == test_rows_by_owner_.end()) return false;
  MutexLock lock(&test_mu_);
  const datasets::Split& test = dataset_.test;
  return !std::all_of(rows->second.begin(), rows->second.end(),
                      [&test](std::size_t i) { return test.erased(i); });
}

Status EngineImpl::EraseTestRows(OwnerId owner) {
  // Already blank here means erased in the store first (by this engine, or
  // by the one that took a deletion this one has registered).
  if (!TestRowsLeft(owner)) return OkStatus();
  uint64_t attempt = 0;
  {
    MutexLock lock(&mu_);
    attempt = core_->ErasureAttempt();
  }
  const Status erased = sisa_->EraseTestRows(owner);
  if (!erased.ok() && store_->ErasureOwed()) {
    // Perhaps replaced in the store and still in its files (a compaction
    // that failed on a full disk): the erasure is retried in the
    // background, as an apply's is. The rows stay in memory, so that the
    // client's retry goes to the store, whose edit then finds nothing to
    // change and succeeds only once the compaction is done (helper-54).
    {
      MutexLock lock(&mu_);
      core_->OnErasureFailed(clock_->Now());
      metrics_->SetErasureOwed(true);
      event_ = true;
    }
    control_cv_.SignalAll();
  }
  RETURN_IF_ERROR(erased);
  ERASER_SYNC_POINT("EngineImpl::EraseTestRows:Erased");
  BlankTestRows(owner);
  {
    // Its compaction paid every erasure owed when it began.
    MutexLock lock(&mu_);
    if (core_->erasure_owed()) {
      core_->OnErasureFinished(attempt);
      if (!core_->erasure_owed()) {
        metrics_->SetErasureOwed(false);
        std::fprintf(stderr, "eraser: owed erasure finished\n");
      }
    }
  }
  return OkStatus();
}

StatusOr<std::vector<float>> EngineImpl::TestSample(uint64_t index) const {
  MutexLock lock(&test_mu_);
  const datasets::Split& test = dataset_.test;
  if (index >= test.size()) {
    return NotFoundError("test_index " + std::to_string(index) +
                         " is outside the test split (" +
                         std::to_string(test.size()) + " samples)");
  }
  if (test.erased(index)) {
    return NotFoundError("test sample " + std::to_string(index) +
                         " was erased: a deletion named its owner");
  }
  std::vector<float> features(test.feature_count());
  test.Decode(index, features.data());
  return features;
}

StatusOr<std::vector<storage::SampleLocation>> EngineImpl::Resolve(
    const storage::DeletionTarget& target) {
  if (target.kind == storage::DeletionTarget::Kind::kSample) {
    StatusOr<storage::SampleLocation> location =
        store_->LookupSample(SampleId(target.id));
    if (location.status().code() == StatusCode::kNotFound) {
      return NotFoundError("unknown sample " + std::to_string(target.id));
    }
    RETURN_IF_ERROR(location.status());
    return std::vector<storage::SampleLocation>{*location};
  }
  StatusOr<std::vector<storage::SampleLocation>> owned =
      store_->OwnerSamples(OwnerId(target.id));
  if (owned.status().code() == StatusCode::kNotFound) {
    // An owner whose rows were all drawn into the test split: no model
    // holds them; the deletion erases them there.
    if (HasTestRows(OwnerId(target.id))) {
      return std::vector<storage::SampleLocation>{};
    }
    return NotFoundError("unknown owner " + std::to_string(target.id));
  }
  return owned;
}

StatusOr<DeletionSeq> EngineImpl::RequestDeletion(
    const storage::DeletionTarget& target) {
  {
    MutexLock lock(&mu_);
    if (closed_) return ShuttingDownError();
  }
  if (rewound_from_.load() != 0) return RewoundError();
  // Deletions other engines acknowledged first are registered first: one
  // that erased a sample this one names keeps it pending here until this
  // engine's model of its shard leaves it out.
  RETURN_IF_ERROR(CatchUp());
  ASSIGN_OR_RETURN(std::vector<storage::SampleLocation> samples,
                   Resolve(target));
  // A sample erased by a deletion another engine appended after that
  // read, and already applied there: that deletion is registered first,
  // so that this engine, whose model may still hold the sample, keeps it
  // pending until its model leaves it out.
  if (shared_store_ &&
      std::any_of(samples.begin(), samples.end(),
                  [](const storage::SampleLocation& s) { return s.erased; })) {
    RETURN_IF_ERROR(CatchUp());
  }
  std::vector<scheduler::SampleHit> live;
  for (const storage::SampleLocation& s : samples) {
    if (!s.erased) live.push_back({s.id, s.shard, s.slice});
  }
  ERASER_SYNC_POINT("EngineImpl::RequestDeletion:Resolved");
  // A repeated request (a client's retry, or a flood of the same one) is
  // answered with the pending deletion of the same target naming the same
  // samples: it is durable and registered already, its deadline runs from
  // its arrival, and nothing is written again. (Only the same target: the
  // answer is that deletion's record, which the caller may read.)
  std::vector<DeletionSeq> naming;
  {
    MutexLock lock(&mu_);
    naming = core_->PendingNaming(live);
  }
  std::optional<DeletionSeq> same;
  for (DeletionSeq candidate : naming) {
    StatusOr<storage::DeletionRecord> record = store_->GetDeletion(candidate);
    if (record.ok() && record->target == target) {
      same = candidate;
      break;
    }
  }
  // So is a repeat of one that left nothing to do (every sample it names
  // erased, and its owner's test rows): answered with the newest deletion
  // of the target, writing nothing, however often it comes. A deletion of
  // another target that erased them (an owner's, for a sample) is no
  // answer: this one is appended, once.
  if (!same && live.empty() &&
      !(target.kind == storage::DeletionTarget::Kind::kOwner &&
        TestRowsLeft(OwnerId(target.id)))) {
    // Not found, or not readable (then the append below says whether the
    // store can be written): appended, once.
    if (StatusOr<DeletionSeq> found = store_->FindDeletion(target);
        found.ok()) {
      same = *found;
      // Another replica's, appended since this one read the log (and not
      // yet acknowledged there): registered here too before it is
      // answered with, as an append of this one's would be (helper-56).
      if (shared_store_ && same->value() > caught_up_.load()) {
        RETURN_IF_ERROR(CatchUp());
      }
      // Still pending only if its mark as applied failed (a full disk):
      // marked now, as the append below would be (a failure waits for an
      // open's, as there).
      StatusOr<storage::DeletionRecord> record = store_->GetDeletion(*same);
      if (record.ok() && record->state == storage::DeletionState::kPending) {
        (void)store_->MarkApplied({*same}, clock_->Now());
      }
    }
  }
  DeletionSeq seq;
  if (same) {
    seq = *same;
  } else {
    // The owner's test rows go before the deletion is acknowledged: if
    // their erasure fails, nothing is (and a retry erases them).
    if (target.kind == storage::DeletionTarget::Kind::kOwner) {
      RETURN_IF_ERROR(EraseTestRows(OwnerId(target.id)));
    }
    const TimePoint arrival = clock_->Now();
    const uint64_t read = std::max(caught_up_.load(), own_newest_.load());
    // Durable first: the sequence number is returned only after the synced
    // write, so an acknowledged deletion survives any crash.
    ASSIGN_OR_RETURN(seq, store_->AppendDeletion(target, samples, arrival));
    // The log's end was at least `read` before the append: a number that
    // is not beyond it was issued again by a database that lost the
    // deletions after it, which no replica would register.
    if (shared_store_ && seq.value() <= read) {
      return LogRewound(read);
    }
    ERASER_SYNC_POINT("EngineImpl::RequestDeletion:Appended");
    metrics_->DeletionReceived();
    {
      // Registered, with the watermark raised, in one step: an answer
      // decided after this sees both.
      MutexLock lock(&mu_);
      // Sharing the log, a read of it since the append may have registered
      // it already (and this engine applied it since): once is enough.
      if (!shared_store_ || seq.value() > caught_up_.load()) {
        core_->OnDeletion(seq, arrival, live);
        if (shared_store_) {
          // As the record stores it (to the microsecond).
          own_unread_[seq.value()] = {target,
                                      FromUnixMicros(ToUnixMicros(arrival))};
          own_newest_ = std::max(own_newest_.load(), seq.value());
        }
      }
      UpdateGauges();
      event_ = true;
    }
    control_cv_.SignalAll();
    if (live.empty()) {
      // Everything it names is already gone from every model: applied now.
      // It is durable and acknowledged whatever this write does: if it
      // fails (a full disk), the record says pending until an engine's
      // next open marks it (docs/engine.md).
      if (Status marked = store_->MarkApplied({seq}, arrival); marked.ok()) {
        metrics_->DeletionApplied(0);
      } else {
        std::fprintf(stderr,
                     "eraser: deletion %llu holds no sample any model has, "
                     "but its record could not be marked applied (%s); an "
                     "engine's next open marks it\n",
                     static_cast<unsigned long long>(seq.value()),
                     marked.ToString().c_str());
      }
    }
  }
  if (membership_ != nullptr) {
    // Acknowledged once every other replica that may still answer has
    // registered it: those with a live lease, each registering it when
    // notified (or at its next renewal), or losing its lease within one
    // lease. Two leases bound the wait with room to spare.
    Status registered =
        membership_->AwaitRegistered(seq, 2 * options_.replica_lease);
    if (!registered.ok()) {
      return UnavailableError(
          "deletion " + std::to_string(seq.value()) +
          " is recorded and will be applied, but is not acknowledged: " +
          registered.message());
    }
    // A database that lost the deletion while the others registered it (a
    // failover to a standby without it) may since have given its number to
    // another: it is acknowledged only if its record is still there
    // (helper-51).
    if (rewound_from_.load() != 0) return RewoundError();
    StatusOr<storage::DeletionRecord> stored = store_->GetDeletion(seq);
    if (stored.status().code() == StatusCode::kNotFound ||
        (stored.ok() && !(stored->target == target))) {
      return LogRewound(seq.value());
    }
    if (!stored.ok()) {
      return UnavailableError(
          "deletion " + std::to_string(seq.value()) +
          " is recorded and will be applied, but is not acknowledged: its "
          "record cannot be read back: " +
          stored.status().message());
    }
  }
  if (same) metrics_->DeletionRepeated();
  return seq;
}

bool EngineImpl::LeaseHeld() const {
  if (rewound_from_.load() != 0) return false;
  return membership_ == nullptr ||
         std::chrono::steady_clock::now() < lease_until_;
}

Status EngineImpl::RewoundError() const {
  return UnavailableError(
      "the shared deletion log no longer holds the deletions this replica "
      "read up to " +
      std::to_string(rewound_from_.load()) +
      ": the database lost deletions it had acknowledged (a failover to a "
      "standby that was not synchronous, a restore from a backup); this "
      "replica answers nothing, takes no deletion and applies none until it "
      "is restarted, which reads the log again");
}

Status EngineImpl::LogRewound(uint64_t read) {
  uint64_t none = 0;
  if (rewound_from_.compare_exchange_strong(none, read)) {
    std::fprintf(stderr, "eraser: %s\n", RewoundError().ToString().c_str());
  }
  return RewoundError();
}

Status EngineImpl::SyncDeletions() {
  RETURN_IF_ERROR(CatchUp());
  return membership_->Report(DeletionSeq(caught_up_.load()));
}

Status EngineImpl::RenewLease() {
  // A replica that found the log rewound renews nothing: its lease runs
  // out in the database, and acknowledgements stop waiting for it.
  if (rewound_from_.load() != 0) return RewoundError();
  // While the log cannot be read, this engine cannot register what others
  // acknowledge: it lets its lease run out rather than keep
  // acknowledgements waiting.
  if (log_unreadable_.load()) RETURN_IF_ERROR(CatchUp());
  const uint64_t registered = caught_up_.load();
  // What this engine read or appended before the renewal reads the log's
  // head: an append of its own committed while the renewal ran may be
  // beyond that head, and is no loss (the replay on PostgreSQL).
  const uint64_t known = std::max(registered, own_newest_.load());
  // The database's lease starts at the renewal, after this; this engine's
  // ends a tenth earlier than the database's (clock rates differ by far
  // less).
  const auto sent = std::chrono::steady_clock::now();
  const auto until =
      sent + options_.replica_lease - options_.replica_lease / 10;
  ASSIGN_OR_RETURN(storage::Store::Membership::Renewal renewal,
                   membership_->Renew(DeletionSeq(registered)));
  ERASER_SYNC_POINT("EngineImpl::RenewLease:Renewed");
  if (renewal.log_head.value() < known) return LogRewound(known);
  bool continued;
  {
    MutexLock lock(&mu_);
    // Continuous only if the answer came while the previous lease held:
    // then the database's lease never ran out in between, and no
    // acknowledgement went ahead without this engine.
    const auto now = std::chrono::steady_clock::now();
    continued = renewal.continued && now < lease_until_;
    // Not continued: acknowledgements may have gone ahead without this
    // engine (whatever its own clock says): no answer until it has read
    // the log.
    lease_until_ = continued ? until : std::min(lease_until_, now);
  }
  if (continued && renewal.log_head.value() <= registered) return OkStatus();
  // A lapse (or a deletion whose notification was missed): the log read
  // starts after the renewal committed, so it holds every deletion an
  // acknowledgement may have skipped this engine for.
  RETURN_IF_ERROR(SyncDeletions());
  if (!continued) {
    MutexLock lock(&mu_);
    lease_until_ = until;
  }
  return OkStatus();
}

void EngineImpl::LeaseLoop() {
  using Steady = std::chrono::steady_clock;
  const Duration period = options_.replica_lease / 3;
  const Duration retry =
      std::min<Duration>(period, std::chrono::milliseconds(100));
  Steady::time_point next = Steady::now() + period;
  bool failing = false;  // reported once, until a renewal succeeds
  bool held = true;
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stop_lease_) return;
      if (held && !LeaseHeld() && rewound_from_.load() == 0) {
        std::fprintf(stderr,
                     "eraser: this replica's lease ran out: answers are "
                     "refused until it is renewed\n");
      }
      held = LeaseHeld();
    }
    metrics_->SetLease(held, membership_->live_members());
    Steady::time_point now = Steady::now();
    bool renewed_now = false;
    if (now >= next) {
      // Renewals a third of a lease apart, however long each takes.
      const Steady::time_point started = now;
      const Status renewed = RenewLease();
      if (!renewed.ok() && !failing && rewound_from_.load() == 0) {
        std::fprintf(stderr,
                     "eraser: cannot renew this replica's lease (%s): it "
                     "answers until the lease runs out\n",
                     renewed.ToString().c_str());
      } else if (renewed.ok() && failing) {
        std::fprintf(stderr, "eraser: this replica's lease is renewed\n");
      }
      failing = !renewed.ok();
      renewed_now = renewed.ok();
      now = Steady::now();
      next = failing ? now + retry : std::max(started + period, now);
    }
    const Duration wait =
        std::clamp<Duration>(std::chrono::duration_cast<Duration>(next - now),
                             Duration(0), std::chrono::milliseconds(200));
    StatusOr<bool> notified = membership_->AwaitDeletions(wait);
    if (!notified.ok()) {
      // The database cannot be reached: wait out the slice (Close cuts it
      // short) rather than spin on connection attempts.
      MutexLock lock(&mu_);
      const TimePoint until = SystemClock::Default()->Now() + wait;
      while (!stop_lease_ &&
             lease_cv_.WaitUntil(&mu_, *SystemClock::Default(), until)) {
      }
      continue;
    }
    if (*notified) SyncDeletions().IgnoreError();  // the renewal retries
    // At most once per renewal (it reads the log's pending part).
    if (renewed_now) FindModelsRetrainedElsewhere().IgnoreError();
  }
}

Status EngineImpl::FindModelsRetrainedElsewhere() {
  // Only records CatchUp has registered (a later one is looked at once it
  // registers). The model ReloadShards loads is the newest, which may also
  // leave out a deletion not registered yet: its registration then counts
  // only the samples the served model holds (HeldHits), and a parked vote
  // from the model it replaced is asked again (Core::Remove).
  const uint64_t registered = caught_up_.load();
  std::optional<DeletionSeq> oldest;
  std::vector<uint64_t> versions;
  {
    MutexLock lock(&mu_);
    oldest = core_->OldestPending();
    versions = snapshot_->versions();
  }
  if (!oldest.has_value() || oldest->value() > registered) return OkStatus();
  ASSIGN_OR_RETURN(std::vector<storage::DeletionRecord> records,
                   store_->DeletionsAfter(DeletionSeq(oldest->value() - 1)));
  std::set<ShardId> newer;
  for (const storage::DeletionRecord& r : records) {
    if (r.seq.value() > registered) break;
    AddRetrainedElsewhere(r, versions, &newer);
  }
  if (newer.empty()) return OkStatus();
  {
    MutexLock lock(&mu_);
    reload_.insert(newer.begin(), newer.end());
    event_ = true;
  }
  control_cv_.SignalAll();
  return OkStatus();
}

namespace {

// The samples of `record` that a model of their shard at `versions` still
// holds: live when the request arrived, and not left out by a retraining of
// the shard up to that version (excluded_from).
std::vector<scheduler::SampleHit> HeldHits(
    const storage::DeletionRecord& record,
    const std::vector<uint64_t>& versions) {
  std::vector<scheduler::SampleHit> hits;
  for (const storage::SampleLocation& s : record.samples) {
    if (s.erased || s.shard.value() >= versions.size()) continue;
    bool left_out = false;
    for (const auto& [shard, version] : record.excluded_from) {
      left_out = left_out ||
                 (shard == s.shard && version <= versions[s.shard.value()]);
    }
    if (!left_out) hits.push_back({s.id, s.shard, s.slice});
  }
  return hits;
}

}  // namespace

Status EngineImpl::CatchUp() {
  if (!shared_store_) return OkStatus();
  ERASER_SYNC_POINT("EngineImpl::CatchUp:Begin");
  MutexLock catchup(&catchup_mu_);
  // Records read before an apply the Core has taken since (this engine's
  // own, with or without a new model, or another's model swapped in) may
  // predate it: registered then, a deletion it applied would be pending
  // again, with the samples its record named before (its shard affected
  // until another order, the deletion applied and counted twice). So the
  // log is read again when an apply came between the read and the
  // registration; after a few reads what was read is registered, which can
  // only keep a shard affected longer.
  constexpr int kReads = 4;
  for (int attempt = 1;; ++attempt) {
    uint64_t before = 0;
    {
      MutexLock lock(&mu_);
      before = applies_;
    }
    // One read of the log per batch: what any engine acknowledged before it,
    // from the last record read, which must still be there as it was.
    const uint64_t from = caught_up_.load();
    StatusOr<std::vector<storage::DeletionRecord>> read =
        store_->DeletionsAfter(DeletionSeq(from == 0 ? 0 : from - 1));
    if (!read.ok()) {
      if (!log_unreadable_) {
        std::fprintf(stderr,
                     "eraser: the shared deletion log cannot be read (%s): "
                     "the lease is not renewed until it can\n",
                     read.status().ToString().c_str());
      }
      log_unreadable_ = true;
      return read.status();
    }
    const bool recovered = log_unreadable_;
    if (recovered) {
      std::fprintf(stderr,
                   "eraser: the shared deletion log is readable again\n");
      log_unreadable_ = false;
    }
    std::vector<storage::DeletionRecord>& records = *read;
    if (from != 0) {
      if (records.empty() || records.front().seq.value() != from ||
          !(records.front().target == last_read_target_) ||
          records.front().arrival != last_read_arrival_) {
        return LogRewound(from);
      }
      records.erase(records.begin());
    }
    if (records.empty() && !recovered) return OkStatus();
    ERASER_SYNC_POINT("EngineImpl::CatchUp:Read");
    {
      MutexLock lock(&mu_);
      // Retrainings that failed on the store's absence go again now.
      if (recovered) core_->ClearBackoff();
      if (applies_ != before && attempt < kReads) continue;
      // Its own appends read back must be as it wrote them.
      for (const storage::DeletionRecord& r : records) {
        const auto own = own_unread_.find(r.seq.value());
        if (own == own_unread_.end()) continue;
        if (!(own->second.first == r.target) ||
            own->second.second != r.arrival) {
          return LogRewound(r.seq.value());
        }
        own_unread_.erase(own);
      }
      const std::vector<uint64_t> versions = snapshot_->versions();
      // Another engine's arrival time is on its clock: one behind this one
      // would make its deadline later here (and a miss uncounted); no
      // arrival is later than now.
      const TimePoint now = clock_->Now();
      for (const storage::DeletionRecord& r : records) {
        core_->OnDeletion(r.seq, std::min(r.arrival, now),
                          HeldHits(r, versions));
        AddRetrainedElsewhere(r, versions, &reload_);
        // The engine that took it erased the owner's test rows first.
        if (r.target.kind == storage::DeletionTarget::Kind::kOwner) {
          BlankTestRows(OwnerId(r.target.id));
        }
      }
      if (!records.empty()) {
        caught_up_ = records.back().seq.value();
        last_read_target_ = records.back().target;
        last_read_arrival_ = records.back().arrival;
      }
      UpdateGauges();
      event_ = true;
    }
    control_cv_.SignalAll();
    return OkStatus();
  }
}

StatusOr<DeletionInfo> EngineImpl::GetDeletion(DeletionSeq seq) {
  ASSIGN_OR_RETURN(storage::DeletionRecord record, store_->GetDeletion(seq));
  DeletionInfo info;
  info.seq = seq;
  info.target = record.target;
  info.state = record.state;
  info.arrival = record.arrival;
  if (record.state == storage::DeletionState::kApplied) {
    info.applied = record.applied;
  }
  info.samples = record.samples.size();
  // The shards it had to leave: samples already erased when it arrived
  // left their shards with the deletion that erased them.
  for (const storage::SampleLocation& s : record.samples) {
    if (!s.erased) info.shards.push_back(s.shard);
  }
  std::sort(info.shards.begin(), info.shards.end());
  info.shards.erase(std::unique(info.shards.begin(), info.shards.end()),
                    info.shards.end());
  info.excluded_from = record.excluded_from;
  return info;
}

}  // namespace eraser::engine::internal
