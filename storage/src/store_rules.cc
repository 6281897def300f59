#include "store_rules.h"

#include <string>
#include <unordered_map>

namespace eraser::storage::internal {

std::string SampleName(SampleId id) {
  return "sample " + std::to_string(id.value());
}

DeletionRecord NewDeletion(const DeletionTarget& target,
                           const std::vector<SampleLocation>& samples,
                           TimePoint arrival) {
  DeletionRecord record;
  record.target = target;
  record.samples = samples;
  record.arrival = arrival;
  record.state = DeletionState::kPending;
  return record;
}

Status CompareConfig(const StoreConfig& stored, const StoreConfig& requested) {
  std::string diff;
  auto note = [&diff](const std::string& key, const std::string& was,
                      const std::string& now) {
    if (!diff.empty()) diff += "; ";
    diff += key + ": stored '" + was + "', requested '" + now + "'";
  };
  for (const auto& [key, value] : stored) {
    auto it = requested.find(key);
    if (it == requested.end()) {
      note(key, value, "(absent)");
    } else if (it->second != value) {
      note(key, value, it->second);
    }
  }
  for (const auto& [key, value] : requested) {
    if (stored.count(key) == 0) note(key, "(absent)", value);
  }
  if (!diff.empty()) {
    return FailedPreconditionError(
        "data directory was built with another configuration (" + diff + ")");
  }
  return OkStatus();
}

StatusOr<std::vector<bool>> PlanIngest(const std::vector<SampleView>& samples,
                                       const StoredLocation& stored) {
  std::vector<bool> skip(samples.size(), false);
  std::unordered_map<SampleId, std::size_t> seen;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const SampleView& s = samples[i];
    if (s.features == nullptr && s.feature_size > 0) {
      return InvalidArgumentError(SampleName(s.id) + " has no feature data");
    }
    const SampleLocation want{s.id, s.shard, s.slice, s.owner, false};
    auto [it, inserted] = seen.emplace(s.id, i);
    if (!inserted) {
      const SampleView& first = samples[it->second];
      if (first.shard != s.shard || first.slice != s.slice ||
          first.owner != s.owner) {
        return InvalidArgumentError(SampleName(s.id) +
                                    " appears twice with different placement");
      }
    }
    ASSIGN_OR_RETURN(std::optional<SampleLocation> location, stored(s.id));
    if (!location.has_value()) continue;
    if (location->erased) {
      skip[i] = true;
    } else if (!(*location == want)) {
      return FailedPreconditionError(
          SampleName(s.id) + " is already stored in shard " +
          std::to_string(location->shard.value()) + " slice " +
          std::to_string(location->slice) + "; the partition cannot change");
    }
  }
  return skip;
}

StatusOr<std::map<DeletionSeq, DeletionRecord>> UpdateDeletions(
    const std::vector<DeletionSeq>& applied, TimePoint applied_at,
    const std::vector<ApplyBatch::Exclusion>& excluded,
    const ReadDeletion& read) {
  std::map<DeletionSeq, DeletionRecord> records;
  auto record = [&](DeletionSeq seq) -> StatusOr<DeletionRecord*> {
    auto it = records.find(seq);
    if (it == records.end()) {
      ASSIGN_OR_RETURN(DeletionRecord r, read(seq));
      it = records.emplace(seq, std::move(r)).first;
    }
    return &it->second;
  };
  auto left = [](const DeletionRecord& r, ShardId shard) {
    for (const auto& [s, version] : r.excluded_from) {
      if (s == shard) return true;
    }
    return false;
  };
  auto mark_applied = [applied_at](DeletionRecord* r) {
    if (r->state == DeletionState::kApplied) return;
    r->state = DeletionState::kApplied;
    r->applied = applied_at;
  };
  for (const ApplyBatch::Exclusion& e : excluded) {
    ASSIGN_OR_RETURN(DeletionRecord * r, record(e.seq));
    if (!left(*r, e.shard)) r->excluded_from.emplace_back(e.shard, e.version);
  }
  // A request is applied once every shard that held one of its samples
  // has committed a model without them, whichever engines committed them:
  // engines sharing a store each retrain some of its shards, and the one
  // that commits the last may not yet know of the others' commits.
  for (auto& [seq, r] : records) {
    bool all = true;
    for (const SampleLocation& s : r.samples) {
      all = all && (s.erased || left(r, s.shard));
    }
    if (all) mark_applied(&r);
  }
  for (DeletionSeq seq : applied) {
    ASSIGN_OR_RETURN(DeletionRecord * r, record(seq));
    mark_applied(r);
  }
  return records;
}

Status CheckNewer(const Checkpoint& checkpoint,
                  const StoredCheckpoint& stored) {
  StatusOr<Checkpoint> now = stored(checkpoint.shard, checkpoint.slice);
  if (now.status().code() == StatusCode::kNotFound) return OkStatus();
  RETURN_IF_ERROR(now.status());
  if (now->version < checkpoint.version) return OkStatus();
  return AlreadyExistsError(
      "shard " + std::to_string(checkpoint.shard.value()) + " slice " +
      std::to_string(checkpoint.slice) + " already holds model version " +
      std::to_string(now->version) + ", not older than " +
      std::to_string(checkpoint.version) +
      ": another engine retrained the shard first");
}

}  // namespace eraser::storage::internal
