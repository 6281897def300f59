// Deletion requests: resolution, durable acknowledgement, the pending index.
#include <algorithm>

#include "engine_impl.h"

namespace eraser::engine::internal {

StatusOr<std::vector<storage::SampleLocation>> EngineImpl::LiveSamples(
    const std::vector<storage::SampleLocation>& samples) {
  std::vector<storage::SampleLocation> live;
  for (const storage::SampleLocation& s : samples) {
    ASSIGN_OR_RETURN(storage::SampleLocation now, store_->LookupSample(s.id));
    if (!now.erased) live.push_back(now);
  }
  return live;
}

StatusOr<DeletionSeq> EngineImpl::RequestDeletion(
    const storage::DeletionTarget& target) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return UnavailableError("the engine is shutting down");
  }
  std::vector<storage::SampleLocation> samples;
  if (target.kind == storage::DeletionTarget::Kind::kSample) {
    StatusOr<storage::SampleLocation> location =
        store_->LookupSample(SampleId(target.id));
    if (location.status().code() == StatusCode::kNotFound) {
      return NotFoundError("unknown sample " + std::to_string(target.id));
    }
    RETURN_IF_ERROR(location.status());
    samples.push_back(*location);
  } else {
    StatusOr<std::vector<storage::SampleLocation>> owned =
        store_->OwnerSamples(OwnerId(target.id));
    if (owned.status().code() == StatusCode::kNotFound) {
      return NotFoundError("unknown owner " + std::to_string(target.id));
    }
    RETURN_IF_ERROR(owned.status());
    samples = std::move(owned).value();
  }
  std::vector<storage::SampleLocation> live;
  for (const storage::SampleLocation& s : samples) {
    if (!s.erased) live.push_back(s);
  }
  const TimePoint arrival = clock_->Now();
  // Durable first: the sequence number is returned only after the synced
  // write, so an acknowledged deletion survives any crash.
  ASSIGN_OR_RETURN(DeletionSeq seq,
                   store_->AppendDeletion(target, samples, arrival));
  metrics_->DeletionReceived();
  {
    std::lock_guard<std::mutex> lock(mu_);
    watermark_ = std::max(watermark_, seq.value());
  }
  if (live.empty()) {
    // Everything it names is already gone from every model: applied now.
    RETURN_IF_ERROR(store_->MarkApplied({seq}, arrival));
    metrics_->DeletionApplied(0);
    return seq;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    RegisterDeletion(seq, arrival, live);
    UpdateGauges();
    event_ = true;
  }
  control_cv_.notify_all();
  return seq;
}

void EngineImpl::RegisterDeletion(
    DeletionSeq seq, TimePoint arrival,
    const std::vector<storage::SampleLocation>& live) {
  PendingDeletion& pending = pending_[seq];
  pending.arrival = arrival;
  std::map<ShardId, uint32_t> first_slice;
  for (const storage::SampleLocation& s : live) {
    pending.samples[s.shard].push_back(s.id);
    auto [it, inserted] = first_slice.emplace(s.shard, s.slice);
    if (!inserted) it->second = std::min(it->second, s.slice);
  }
  std::vector<scheduler::ShardHit> hits;
  for (const auto& [shard, slice] : first_slice) {
    hits.push_back({shard, slice});
    shard_pending_[shard.value()].insert(seq);
  }
  scheduler_->OnDeletion(seq, arrival, hits);
  // Parked requests voted with models that hold these samples.
  for (auto& [id, request] : parked_) {
    bool changed = false;
    for (const scheduler::ShardHit& hit : hits) {
      if (!request->tally->is_affected(hit.shard.value())) {
        request->tally->MarkAffected(hit.shard.value());
        changed = true;
      }
    }
    if (changed) {
      std::vector<ShardId> affected;
      for (std::size_t k = 0; k < num_shards_; ++k) {
        if (request->tally->is_affected(k)) {
          affected.emplace_back(static_cast<uint32_t>(k));
        }
      }
      scheduler_->OnParked(id, affected, request->tally->MinShardsToResolve());
    }
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
  info.shards = record.Shards();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = excluded_.find(seq);
  if (it != excluded_.end()) info.excluded_from = it->second;
  return info;
}

}  // namespace eraser::engine::internal
