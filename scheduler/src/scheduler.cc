#include "eraser/scheduler/scheduler.h"

#include <algorithm>

namespace eraser::scheduler {
namespace {

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

Duration FromSeconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

}  // namespace

const char* ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kImmediate:
      return "immediate";
    case Reason::kDeadline:
      return "deadline";
    case Reason::kWait:
      return "wait";
    case Reason::kBatch:
      return "batch";
    case Reason::kPeriodic:
      return "periodic";
    case Reason::kIdle:
      return "idle";
    case Reason::kShards:
      return "shards";
    case Reason::kDrain:
      return "drain";
  }
  return "?";
}

uint32_t Scheduler::Waiting::first_slice() const {
  uint32_t first = UINT32_MAX;
  for (const auto& [seq, slice] : seqs) first = std::min(first, slice);
  return first;
}

Scheduler::Scheduler(const Policy& policy, const SchedulerOptions& options,
                     CostFunction cost, TimePoint now)
    : policy_(policy),
      options_(options),
      cost_(std::move(cost)),
      last_poll_(now),
      next_tick_(now + policy.period),
      seconds_per_sample_epoch_(options.initial_seconds_per_sample_epoch) {}

void Scheduler::OnDeletion(DeletionSeq seq, TimePoint arrival,
                           const std::vector<ShardHit>& hits) {
  if (hits.empty() || deletions_.count(seq) > 0) return;
  Deletion& d = deletions_[seq];
  d.arrival = arrival;
  for (const ShardHit& hit : hits) {
    d.shards_left.insert(hit.shard);
    auto [it, inserted] = waiting_[hit.shard].seqs.emplace(seq, hit.slice);
    if (!inserted) it->second = std::min(it->second, hit.slice);
  }
}

void Scheduler::OnParked(uint64_t request, const std::vector<ShardId>& affected,
                         int min_to_resolve) {
  parked_[request] = {affected, min_to_resolve};
}

void Scheduler::OnUnparked(uint64_t request) { parked_.erase(request); }

void Scheduler::OnRetrainFinished(ShardId shard, bool succeeded,
                                  Duration elapsed, uint64_t sample_epochs) {
  auto it = running_.find(shard);
  if (it == running_.end()) return;
  if (succeeded) {
    for (DeletionSeq seq : it->second.order.covers) {
      auto d = deletions_.find(seq);
      if (d == deletions_.end()) continue;
      d->second.shards_left.erase(shard);
      if (d->second.shards_left.empty()) deletions_.erase(d);
    }
    if (sample_epochs > 0) {
      const double observed =
          Seconds(elapsed) / static_cast<double>(sample_epochs);
      // The first measurement replaces the assumed rate: blending a guess
      // in would keep deadline retrainings planned too short for several
      // more retrainings, which lazy policies, retraining only at deadlines,
      // cannot afford.
      seconds_per_sample_epoch_ =
          measured_
              ? (1 - options_.estimate_weight) * seconds_per_sample_epoch_ +
                    options_.estimate_weight * observed
              : observed;
      measured_ = true;
    }
  } else {
    // The deletions wait again, at the slices they hit.
    Waiting& w = waiting_[shard];
    for (const auto& [seq, slice] : it->second.covered) {
      auto [slot, inserted] = w.seqs.emplace(seq, slice);
      if (!inserted) slot->second = std::min(slot->second, slice);
    }
  }
  running_.erase(it);
}

void Scheduler::OnLoad(std::size_t queued, double utilization) {
  queued_ = queued;
  utilization_ = utilization;
}

std::vector<ShardId> Scheduler::AffectedShards() const {
  std::set<ShardId> shards;
  for (const auto& [shard, w] : waiting_) shards.insert(shard);
  for (const auto& [shard, r] : running_) shards.insert(shard);
  return {shards.begin(), shards.end()};
}

TimePoint Scheduler::Due(ShardId shard) const {
  TimePoint oldest = TimePoint::max();
  for (const auto& [seq, slice] : waiting_.at(shard).seqs) {
    oldest = std::min(oldest, deletions_.at(seq).arrival);
  }
  return oldest + policy_.deadline;
}

double Scheduler::PredictSeconds(ShardId shard) const {
  return static_cast<double>(cost_(shard, waiting_.at(shard).first_slice())) *
         seconds_per_sample_epoch_;
}

double Scheduler::BacklogAhead(ShardId shard, TimePoint now) const {
  double work = 0;
  for (const auto& [s, r] : running_) {
    work += std::max(0.0, r.order.predicted_seconds * options_.deadline_safety -
                              Seconds(now - r.started));
  }
  const TimePoint due = Due(shard);
  for (const auto& [s, w] : waiting_) {
    if (s == shard || running_.count(s) > 0) continue;
    const TimePoint other = Due(s);
    if (other < due || (other == due && s < shard)) {
      work += PredictSeconds(s) * options_.deadline_safety;
    }
  }
  return work / std::max(1, options_.concurrency);
}

TimePoint Scheduler::LatestStart(ShardId shard, TimePoint now) const {
  const double reserve = BacklogAhead(shard, now) +
                         PredictSeconds(shard) * options_.deadline_safety;
  return Due(shard) - options_.deadline_margin - FromSeconds(reserve);
}

std::vector<ShardId> Scheduler::WaitWanted() const {
  std::set<ShardId> wanted;
  for (const auto& [request, p] : parked_) {
    int want = p.min_to_resolve;
    std::vector<ShardId> candidates;
    for (ShardId s : p.affected) {
      if (running_.count(s) > 0 || wanted.count(s) > 0) {
        --want;
      } else if (waiting_.count(s) > 0) {
        candidates.push_back(s);
      }
    }
    // Cheapest first: the retraining cost is known from the earliest slice.
    std::sort(candidates.begin(), candidates.end(), [&](ShardId a, ShardId b) {
      const uint64_t ca = cost_(a, waiting_.at(a).first_slice());
      const uint64_t cb = cost_(b, waiting_.at(b).first_slice());
      return ca != cb ? ca < cb : a < b;
    });
    for (ShardId s : candidates) {
      if (want <= 0) break;
      wanted.insert(s);
      --want;
    }
  }
  std::vector<ShardId> out(wanted.begin(), wanted.end());
  std::sort(out.begin(), out.end(), [&](ShardId a, ShardId b) {
    const uint64_t ca = cost_(a, waiting_.at(a).first_slice());
    const uint64_t cb = cost_(b, waiting_.at(b).first_slice());
    return ca != cb ? ca < cb : a < b;
  });
  return out;
}

bool Scheduler::TimingTriggered(TimePoint now) {
  if (draining_ || policy_.kind == PolicyKind::kImmediate) return true;
  if (policy_.kind != PolicyKind::kEraser) return false;
  std::set<DeletionSeq> waiting_seqs;
  for (const auto& [s, w] : waiting_) {
    for (const auto& [seq, slice] : w.seqs) waiting_seqs.insert(seq);
  }
  switch (policy_.timing) {
    case Timing::kLazy:
      return false;
    case Timing::kIdle:
      return queued_ == 0 && utilization_ <= policy_.idle_utilization;
    case Timing::kBatch:
      if (waiting_seqs.size() >= policy_.batch_size) armed_ = true;
      break;
    case Timing::kPeriodic:
      if (now >= next_tick_) {
        while (next_tick_ <= now) next_tick_ += policy_.period;
        if (!waiting_.empty()) armed_ = true;
      }
      break;
    case Timing::kShards:
      return false;  // Poll keeps the count of affected shards down
  }
  // Once triggered, every waiting shard is retrained, even if the slots
  // only free up later.
  return armed_;
}

Reason Scheduler::TimingReason() const {
  if (draining_) return Reason::kDrain;
  if (policy_.kind == PolicyKind::kImmediate) return Reason::kImmediate;
  switch (policy_.timing) {
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

RetrainOrder Scheduler::Start(ShardId shard, Reason reason, TimePoint now) {
  Running r;
  r.started = now;
  r.covered = waiting_.at(shard).seqs;
  r.order.shard = shard;
  r.order.first_slice = waiting_.at(shard).first_slice();
  r.order.reason = reason;
  r.order.predicted_sample_epochs = cost_(shard, r.order.first_slice);
  r.order.predicted_seconds =
      static_cast<double>(r.order.predicted_sample_epochs) *
      seconds_per_sample_epoch_;
  for (const auto& [seq, slice] : r.covered) r.order.covers.push_back(seq);
  waiting_.erase(shard);
  RetrainOrder order = r.order;
  running_.emplace(shard, std::move(r));
  return order;
}

std::vector<RetrainOrder> Scheduler::Poll(TimePoint now) {
  last_poll_ = now;
  std::vector<RetrainOrder> orders;
  auto free_slots = [&] {
    return options_.concurrency - static_cast<int>(running_.size());
  };
  // Shards with deletions to cover and no retraining in flight: a running
  // shard's newer deletions wait for the next order.
  auto waiting_by = [&](auto less) {
    std::vector<ShardId> shards;
    for (const auto& [s, w] : waiting_) {
      if (running_.count(s) == 0) shards.push_back(s);
    }
    std::sort(shards.begin(), shards.end(), less);
    return shards;
  };
  auto by_due = [&](ShardId a, ShardId b) {
    const TimePoint da = Due(a);
    const TimePoint db = Due(b);
    return da != db ? da < db : a < b;
  };
  // 1. Deadlines, earliest due first. A shard's latest start reserves time
  // for every shard due before it, so it assumes those run first: once any
  // shard must start, the earliest-due waiting shard starts (starting the
  // later one instead would push the earlier one past its deadline).
  if (policy_.kind != PolicyKind::kImmediate) {
    const std::vector<ShardId> by_deadline = waiting_by(by_due);
    std::vector<TimePoint> must_start(by_deadline.size());
    TimePoint earliest = TimePoint::max();
    for (std::size_t i = by_deadline.size(); i-- > 0;) {
      earliest = std::min(earliest, LatestStart(by_deadline[i], now));
      must_start[i] = earliest;
    }
    for (std::size_t i = 0; i < by_deadline.size() && now >= must_start[i];
         ++i) {
      if (free_slots() <= 0) return orders;
      orders.push_back(Start(by_deadline[i], Reason::kDeadline, now));
    }
  }
  // 2. Parked requests, cheapest shard first.
  if (policy_.kind == PolicyKind::kEraser &&
      policy_.rule == UncertifiedRule::kWait) {
    for (ShardId s : WaitWanted()) {
      if (free_slots() <= 0) return orders;
      orders.push_back(Start(s, Reason::kWait, now));
    }
  }
  // 3. The timing policy. shards:A keeps at most A shards holding waiting
  // deletions: the oldest-due ones beyond A are retrained, the others keep
  // batching deletions.
  if (policy_.kind == PolicyKind::kEraser &&
      policy_.timing == Timing::kShards && !draining_) {
    for (ShardId s : waiting_by(by_due)) {
      if (waiting_.size() <= policy_.max_affected || free_slots() <= 0) break;
      orders.push_back(Start(s, Reason::kShards, now));
    }
    return orders;
  }
  // Otherwise: oldest deadline first, or cheapest first when idle (the most
  // unlearning per idle second).
  if (free_slots() > 0 && TimingTriggered(now)) {
    const bool cheapest =
        policy_.kind == PolicyKind::kEraser && policy_.timing == Timing::kIdle;
    auto by_cost = [&](ShardId a, ShardId b) {
      const double ca = PredictSeconds(a);
      const double cb = PredictSeconds(b);
      return ca != cb ? ca < cb : a < b;
    };
    const std::vector<ShardId> shards =
        cheapest ? waiting_by(by_cost) : waiting_by(by_due);
    for (ShardId s : shards) {
      if (free_slots() <= 0) break;
      orders.push_back(Start(s, TimingReason(), now));
    }
    if (waiting_by(by_due).empty()) armed_ = false;
  }
  return orders;
}

std::optional<TimePoint> Scheduler::NextWakeup() const {
  std::optional<TimePoint> next;
  auto consider = [&next](TimePoint t) {
    if (!next || t < *next) next = t;
  };
  if (options_.concurrency - static_cast<int>(running_.size()) > 0) {
    if (policy_.kind != PolicyKind::kImmediate) {
      for (const auto& [s, w] : waiting_) {
        if (running_.count(s) == 0) consider(LatestStart(s, last_poll_));
      }
    }
  }
  if (policy_.kind == PolicyKind::kEraser &&
      policy_.timing == Timing::kPeriodic && !waiting_.empty()) {
    consider(next_tick_);
  }
  // Never ask to be woken in the past: the last Poll already handled it.
  if (next && *next <= last_poll_)
    next = last_poll_ + std::chrono::milliseconds(1);
  return next;
}

}  // namespace eraser::scheduler
