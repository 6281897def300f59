// The Core's retraining plan: which shards to retrain when, deadlines first
// and planned from the measured tail of retraining times, then parked
// requests, then the timing policy; and the unlearning capacity.
#include <algorithm>
#include <cmath>

#include "eraser/scheduler/core.h"

namespace eraser::scheduler {
namespace {

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

Duration FromSeconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

}  // namespace

std::vector<ShardId> Core::Waiting() const {
  std::vector<ShardId> shards;
  for (std::size_t k = 0; k < options_.shards; ++k) {
    const ShardId shard(static_cast<uint32_t>(k));
    if (!shard_pending_[k].empty() && running_.count(shard) == 0) {
      shards.push_back(shard);
    }
  }
  return shards;
}

std::vector<ShardId> Core::Startable(TimePoint now) const {
  std::vector<ShardId> shards;
  for (ShardId s : Waiting()) {
    const Backoff& b = backoff_[s.value()];
    if (b.failures == 0 || b.retry_at <= now) shards.push_back(s);
  }
  return shards;
}

uint32_t Core::FirstSlice(ShardId shard) const {
  uint32_t first = UINT32_MAX;
  for (DeletionSeq seq : shard_pending_[shard.value()]) {
    for (const auto& [sample, slice] : pending_.at(seq).samples.at(shard)) {
      first = std::min(first, slice);
    }
  }
  return first;
}

uint64_t Core::Cost(ShardId shard, uint32_t first_slice) const {
  const std::vector<uint64_t>& sizes = slice_sizes_[shard.value()];
  uint64_t total = 0;
  uint64_t cumulative = 0;
  for (std::size_t r = 0; r < sizes.size() && r < options_.epochs.size(); ++r) {
    cumulative += sizes[r];
    if (r >= first_slice) total += options_.epochs[r] * cumulative;
  }
  return total;
}

TimePoint Core::Due(ShardId shard) const {
  TimePoint oldest = TimePoint::max();
  for (DeletionSeq seq : shard_pending_[shard.value()]) {
    oldest = std::min(oldest, pending_.at(seq).arrival);
  }
  return oldest + options_.policy.deadline;
}

double Core::PredictSeconds(ShardId shard) const {
  return estimator_.Plan(Cost(shard, FirstSlice(shard)));
}

double Core::WholeShardSeconds() const {
  uint64_t most = 0;
  for (std::size_t k = 0; k < options_.shards; ++k) {
    most = std::max(most, Cost(ShardId(static_cast<uint32_t>(k)), 0));
  }
  return estimator_.Plan(most);
}

double Core::BacklogAhead(ShardId shard, TimePoint now, int slots,
                          std::optional<ShardId> without) const {
  double work = 0;
  for (const auto& [s, r] : running_) {
    if (s == without) continue;
    work += std::max(0.0, r.order.predicted_seconds - Seconds(now - r.started));
  }
  const TimePoint due = Due(shard);
  for (ShardId s : Waiting()) {
    if (s == shard) continue;
    const TimePoint other = Due(s);
    if (other < due || (other == due && s < shard)) work += PredictSeconds(s);
  }
  return work / std::max(1, slots);
}

TimePoint Core::LatestStart(ShardId shard, TimePoint now, int slots,
                            std::optional<ShardId> without) const {
  const double reserve =
      BacklogAhead(shard, now, slots, without) + PredictSeconds(shard);
  return Due(shard) - options_.estimates.margin - FromSeconds(reserve);
}

double Core::RateWindowSeconds(TimePoint now, TimePoint first) const {
  // Rates over the time the Core has seen (or the oldest deletion it
  // recovered at start), up to the window, so that a minute-long window
  // does not dilute the first arrivals; but over one deadline at least (a
  // single early deletion is not a rate).
  const double full = Seconds(options_.rate_window);
  return std::clamp(
      Seconds(now - first),
      std::min(full, std::max(1.0, Seconds(options_.policy.deadline))), full);
}

double Core::OfferedPerSecond(TimePoint now) const {
  std::size_t acknowledged = 0;
  TimePoint first = started_;
  for (const Bucket& b : buckets_) {
    if (b.start <= now - options_.rate_window) continue;
    acknowledged += b.acknowledged;
    first = std::min(first, b.start);
  }
  return acknowledged / RateWindowSeconds(now, first);
}

double Core::ExpectedRetrainSeconds(ShardId shard) const {
  // A deleted sample is in slice r with probability size_r / total.
  const std::vector<uint64_t>& sizes = slice_sizes_[shard.value()];
  uint64_t total = 0;
  for (uint64_t n : sizes) total += n;
  if (total == 0) return 0;
  double seconds = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    seconds += static_cast<double>(sizes[r]) / static_cast<double>(total) *
               estimator_.Plan(Cost(shard, static_cast<uint32_t>(r)));
  }
  return seconds;
}

bool Core::KeepBusy(TimePoint now) const {
  if (!options_.policy.has_deadline()) return false;
  // The work the slots owe: what is left of the running retrainings and
  // every waiting shard's.
  double owed = 0;
  for (const auto& [s, r] : running_) {
    owed += std::max(0.0, r.order.predicted_seconds - Seconds(now - r.started));
  }
  for (ShardId s : Waiting()) owed += PredictSeconds(s);
  if (owed == 0) return false;
  // Deletions arriving within one deadline, at about the 98th percentile
  // of a Poisson count at the offered rate; each that lands on a shard
  // holding none pending costs that shard a retraining, the others little.
  const double deadline = Seconds(options_.policy.deadline);
  const double mean = OfferedPerSecond(now) * deadline;
  const double arrivals = mean + 2 * std::sqrt(mean);
  const double hit =
      1 - std::pow(1 - 1.0 / static_cast<double>(options_.shards), arrivals);
  double reserve = 0;
  for (std::size_t k = 0; k < options_.shards; ++k) {
    const ShardId s(static_cast<uint32_t>(k));
    if (shard_pending_[k].empty() && running_.count(s) == 0) {
      reserve += hit * ExpectedRetrainSeconds(s);
    }
  }
  return (owed + reserve) / options_.slots >=
         deadline - Seconds(options_.estimates.margin);
}

int Core::FreeSlots(bool borrow) const {
  int used = 0;
  for (const auto& [s, r] : running_) used += r.order.borrowed == borrow;
  return (borrow ? options_.borrowable_slots : options_.slots) - used;
}

std::vector<ShardId> Core::WaitWanted() const {
  auto cheaper = [this](ShardId a, ShardId b) {
    const uint64_t ca = Cost(a, FirstSlice(a));
    const uint64_t cb = Cost(b, FirstSlice(b));
    return ca != cb ? ca < cb : a < b;
  };
  std::set<ShardId> wanted;
  // Under `partial`, `soft` and `prefix`, a parked request (every shard
  // affected, no clean prefix) is answered once any one shard is resolved;
  // under `wait`, once it is certified.
  const bool partial = options_.policy.answers_from_unaffected();
  for (const auto& [request, p] : parked_) {
    int want = partial ? std::min(1, p.tally.affected())
                       : p.tally.MinShardsToResolve();
    std::vector<ShardId> candidates;
    for (std::size_t k = 0; k < options_.shards; ++k) {
      if (!p.tally.is_affected(k)) continue;
      const ShardId s(static_cast<uint32_t>(k));
      const Backoff& b = backoff_[k];
      if (running_.count(s) > 0 || wanted.count(s) > 0) {
        --want;
      } else if (!shard_pending_[k].empty() &&
                 (b.failures == 0 || b.retry_at <= last_poll_)) {
        candidates.push_back(s);
      }
    }
    // Cheapest first: the retraining cost is known from the earliest slice.
    std::sort(candidates.begin(), candidates.end(), cheaper);
    for (ShardId s : candidates) {
      if (want <= 0) break;
      wanted.insert(s);
      --want;
    }
  }
  std::vector<ShardId> out(wanted.begin(), wanted.end());
  std::sort(out.begin(), out.end(), cheaper);
  return out;
}

bool Core::TimingTriggered(TimePoint now) {
  const Policy& policy = options_.policy;
  if (draining_ || policy.kind == PolicyKind::kImmediate) return true;
  if (policy.kind != PolicyKind::kEraser) return false;
  std::set<DeletionSeq> waiting;
  for (ShardId s : Waiting()) {
    waiting.insert(shard_pending_[s.value()].begin(),
                   shard_pending_[s.value()].end());
  }
  switch (policy.timing) {
    case Timing::kLazy:
    case Timing::kShards:  // Poll keeps the count of affected shards down
      return false;
    case Timing::kIdle:
      return queued_ == 0 && utilization_ <= policy.idle_utilization;
    case Timing::kBatch:
      if (waiting.size() >= policy.batch_size) armed_ = true;
      break;
    case Timing::kPeriodic:
      if (now >= next_tick_) {
        while (next_tick_ <= now) next_tick_ += policy.period;
        if (!waiting.empty()) armed_ = true;
      }
      break;
  }
  // Once triggered, every waiting shard is retrained, even if the slots
  // only free up later.
  return armed_;
}

Reason Core::TimingReason() const {
  if (draining_) return Reason::kDrain;
  if (options_.policy.kind == PolicyKind::kImmediate) return Reason::kImmediate;
  switch (options_.policy.timing) {
    case Timing::kBatch:
      return Reason::kBatch;
    case Timing::kPeriodic:
      return Reason::kPeriodic;
    case Timing::kIdle:
      return Reason::kIdle;
    case Timing::kShards:
      return Reason::kShards;
    case Timing::kLazy:
      break;
  }
  return Reason::kDeadline;
}

RetrainOrder Core::Start(ShardId shard, Reason reason, bool borrowed,
                         TimePoint now, bool yields) {
  RetrainOrder order;
  order.shard = shard;
  order.reason = reason;
  order.borrowed = borrowed;
  order.yields = yields;
  order.first_slice = FirstSlice(shard);
  std::set<SampleId> samples;
  for (DeletionSeq seq : shard_pending_[shard.value()]) {
    order.covers.push_back(seq);
    for (const auto& [sample, slice] : pending_.at(seq).samples.at(shard)) {
      samples.insert(sample);
    }
  }
  order.samples.assign(samples.begin(), samples.end());
  order.predicted_sample_epochs = Cost(shard, order.first_slice);
  order.predicted_seconds = estimator_.Plan(order.predicted_sample_epochs);
  if (options_.policy.has_deadline() &&
      !shard_pending_[shard.value()].empty()) {
    order.due = Due(shard);
    if (yields) {
      order.promote_at = order.due - FromSeconds(order.predicted_seconds) -
                         options_.estimates.margin;
    }
  }
  running_.emplace(shard, Running{order, now});
  return order;
}

bool Core::StartOnFreeSlot(ShardId shard, Reason reason, TimePoint now,
                           std::vector<RetrainOrder>* orders) {
  if (FreeSlots(false) > 0) {
    orders->push_back(Start(shard, reason, false, now));
  } else if (options_.use_idle_cores && FreeSlots(true) > 0) {
    orders->push_back(Start(shard, reason, true, now, /*yields=*/true));
  } else {
    return false;
  }
  return true;
}

std::vector<RetrainOrder> Core::Poll(TimePoint now) {
  last_poll_ = now;
  const Policy& policy = options_.policy;
  std::vector<RetrainOrder> orders;
  auto by_due = [this](ShardId a, ShardId b) {
    const TimePoint da = Due(a);
    const TimePoint db = Due(b);
    return da != db ? da < db : a < b;
  };
  // 1. Deadlines, earliest due first. A shard's latest start reserves time
  // for every shard due before it, so it assumes those run first: once any
  // shard must start, the earliest-due waiting shard starts (starting the
  // later one instead would push the earlier one past its deadline). With
  // every normal slot busy, a deadline that must start takes a slot from
  // inference.
  if (policy.kind != PolicyKind::kImmediate) {
    std::vector<ShardId> waiting = Startable(now);
    std::sort(waiting.begin(), waiting.end(), by_due);
    std::vector<TimePoint> must_start(waiting.size());
    TimePoint earliest = TimePoint::max();
    for (std::size_t i = waiting.size(); i-- > 0;) {
      earliest =
          std::min(earliest, LatestStart(waiting[i], now, options_.slots));
      must_start[i] = earliest;
    }
    // The normal slots (and idle cores) also start shards early, earliest
    // due first, while the work waiting and the reserve for what may arrive
    // would not fit in a deadline (KeepBusy); only a shard past its latest
    // start borrows a core with precedence over inference.
    const bool keep_busy = KeepBusy(now);
    for (std::size_t i = 0; i < waiting.size(); ++i) {
      const bool late = now >= must_start[i];
      if (FreeSlots(false) > 0 && (late || keep_busy)) {
        orders.push_back(Start(waiting[i],
                               late ? Reason::kDeadline : Reason::kBacklog,
                               false, now));
      } else if (late && FreeSlots(true) > 0) {
        orders.push_back(Start(waiting[i], Reason::kDeadline, true, now));
      } else if (keep_busy && options_.use_idle_cores && FreeSlots(true) > 0) {
        orders.push_back(
            Start(waiting[i], Reason::kBacklog, true, now, /*yields=*/true));
      } else {
        // A late shard no slot can take: a yielding retraining makes room
        // at its next pause (preempted, the Poll after OnRetrainPreempted
        // starts the shard on its slot; promoted, it ends sooner).
        if (late) MakeRoomFor(waiting[i], now);
        break;
      }
    }
  }
  overloaded_ = GetCapacity(now).overloaded;
  // 2. Parked requests, cheapest shard first.
  if (policy.kind == PolicyKind::kEraser) {
    for (ShardId s : WaitWanted()) {
      if (!StartOnFreeSlot(s, Reason::kWait, now, &orders)) return orders;
    }
  }
  // 3. The timing policy. shards:A keeps at most A shards holding waiting
  // deletions: the oldest-due ones beyond A are retrained, the others keep
  // batching deletions.
  if (policy.kind == PolicyKind::kEraser && policy.timing == Timing::kShards &&
      !draining_) {
    std::vector<ShardId> waiting = Startable(now);
    std::sort(waiting.begin(), waiting.end(), by_due);
    std::size_t affected = waiting.size();
    for (ShardId s : waiting) {
      if (affected <= policy.max_affected ||
          !StartOnFreeSlot(s, Reason::kShards, now, &orders)) {
        break;
      }
      --affected;
    }
    return orders;
  }
  // Otherwise: oldest deadline first, or cheapest first when idle (the most
  // unlearning per idle second).
  if (HasFreeSlot() && TimingTriggered(now)) {
    std::vector<ShardId> waiting = Startable(now);
    if (policy.kind == PolicyKind::kEraser && policy.timing == Timing::kIdle) {
      std::sort(waiting.begin(), waiting.end(), [this](ShardId a, ShardId b) {
        const double ca = PredictSeconds(a);
        const double cb = PredictSeconds(b);
        return ca != cb ? ca < cb : a < b;
      });
    } else {
      std::sort(waiting.begin(), waiting.end(), by_due);
    }
    for (ShardId s : waiting) {
      if (!StartOnFreeSlot(s, TimingReason(), now, &orders)) break;
    }
    if (Waiting().empty()) armed_ = false;  // backing-off shards keep it armed
  }
  return orders;
}

std::optional<TimePoint> Core::NextWakeup() const {
  std::optional<TimePoint> next;
  auto consider = [&next](TimePoint t) {
    if (!next || t < *next) next = t;
  };
  if (options_.policy.kind != PolicyKind::kImmediate &&
      (FreeSlots(false) > 0 || FreeSlots(true) > 0 || Yielding(last_poll_))) {
    for (ShardId s : Startable(last_poll_)) {
      consider(LatestStart(s, last_poll_, options_.slots));
    }
  }
  // A tick that passed while every slot was busy is taken by the Poll after
  // a slot frees (an event wakes the shell then); waking for it before
  // would poll every millisecond for nothing.
  if (options_.policy.kind == PolicyKind::kEraser &&
      options_.policy.timing == Timing::kPeriodic && !Waiting().empty() &&
      next_tick_ > last_poll_) {
    consider(next_tick_);
  }
  // A failed shard becomes startable again; a parked request falls back.
  for (ShardId s : Waiting()) {
    const Backoff& b = backoff_[s.value()];
    if (b.failures > 0 && b.retry_at > last_poll_) consider(b.retry_at);
  }
  for (const auto& [request, p] : parked_) consider(p.expires);
  for (const auto& [request, expires] : held_) consider(expires);
  if (erasure_.owed) consider(erasure_.backoff.retry_at);
  // A yielding retraining's promotion makes its deletions at risk.
  for (const auto& [shard, r] : running_) {
    if (r.order.yields && r.order.promote_at > last_poll_) {
      consider(r.order.promote_at);
    }
  }
  // Never ask to be woken in the past: the last Poll already handled it.
  if (next && *next <= last_poll_) {
    next = last_poll_ + std::chrono::milliseconds(1);
  }
  return next;
}

std::optional<ShardId> Core::Yielding(TimePoint now) const {
  if (!options_.use_idle_cores) return std::nullopt;
  std::optional<ShardId> yielding;
  for (const auto& [shard, r] : running_) {
    if (r.preempted) return std::nullopt;  // its slot is about to free
    if (r.order.yields && !r.promoted_early && now < r.order.promote_at &&
        (!yielding || r.order.due >= running_.at(*yielding).order.due)) {
      yielding = shard;
    }
  }
  return yielding;
}

void Core::MakeRoomFor(ShardId late, TimePoint now) {
  const std::optional<ShardId> yielding = Yielding(now);
  if (!yielding) return;
  const ShardId v = *yielding;
  Running& victim = running_.at(v);
  // Stopped, V waits as any shard does, due after `late`: `late` no longer
  // counts V's remaining work ahead of it, and V counts, as LatestStart
  // always does, everything due before it (`late` included, waiting now,
  // running then) and what is left of the other running retrainings.
  // Stopping V is worth its lost work only if `late` is still late then
  // (else the freed core would not go to it) and V would not be (else it
  // would be the next late shard).
  if (Due(v) > Due(late) && now >= LatestStart(late, now, options_.slots, v) &&
      now < LatestStart(v, now, options_.slots, v)) {
    victim.preempted = true;
    interrupts_.push_back({v, /*stop=*/true});
  } else {
    // Due first, `late` late only because of V's work, or V unable to
    // wait: it takes precedence at once, runs at full speed and frees the
    // core as soon as it can. (At risk from its own promotion time on, as
    // before.)
    victim.promoted_early = true;
    interrupts_.push_back({v, /*stop=*/false});
  }
}

std::size_t Core::DeadlinesAtRisk(TimePoint now) const {
  std::set<DeletionSeq> at_risk;
  for (const auto& [shard, r] : running_) {
    // A yielding retraining is at risk once at its last safe start: it
    // then borrows. (Promoted earlier to make room for a late shard, it is
    // on time until then; the late shard is counted.)
    if (r.order.borrowed && (!r.order.yields || now >= r.order.promote_at)) {
      at_risk.insert(r.order.covers.begin(), r.order.covers.end());
    }
  }
  if (options_.policy.kind != PolicyKind::kImmediate) {
    const bool slot_free = FreeSlots(false) > 0;
    for (ShardId s : Waiting()) {
      // It should have started and no normal slot can take it, or even
      // started now (or when its backoff ends) it would end after its
      // deadline.
      const Backoff& b = backoff_[s.value()];
      const TimePoint start = b.failures > 0 ? std::max(now, b.retry_at) : now;
      const bool late = now >= LatestStart(s, now, options_.slots);
      const TimePoint end =
          start +
          FromSeconds(BacklogAhead(s, now, options_.slots) + PredictSeconds(s));
      if ((late && !slot_free) || end > Due(s)) {
        at_risk.insert(shard_pending_[s.value()].begin(),
                       shard_pending_[s.value()].end());
      }
    }
  }
  return at_risk.size();
}

Capacity Core::GetCapacity(TimePoint now) const {
  Capacity c;
  std::size_t acknowledged = 0, applied = 0;
  double busy = 0;
  const TimePoint oldest = now - options_.rate_window;
  TimePoint first = started_;
  for (const Bucket& b : buckets_) {
    if (b.start <= oldest) continue;
    acknowledged += b.acknowledged;
    applied += b.applied;
    busy += b.busy_seconds;
    first = std::min(first, b.start);
  }
  const double window = RateWindowSeconds(now, first);
  c.offered_per_second = acknowledged / window;
  c.applied_per_second = applied / window;
  c.busy_fraction = std::min(1.0, busy / (window * options_.slots));
  if (applied > 0 && busy > 0) {
    c.sustainable_per_second = applied / busy * options_.slots;
  }
  c.deadlines_at_risk = DeadlinesAtRisk(now);
  c.overloaded = c.deadlines_at_risk > 0 ||
                 (c.sustainable_per_second > 0 &&
                  c.offered_per_second > c.sustainable_per_second);
  return c;
}

}  // namespace eraser::scheduler
