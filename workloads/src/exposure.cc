// The replay's own exposure count (DESIGN guarantee 2), independent of the
// engine's bookkeeping of pending deletions: the deletion issuer's record
// of when each acknowledgement arrived, and each answer's per-shard model
// versions, against the first model version of each shard that excludes
// each deletion (recorded with the deletion in the store).
#include <algorithm>
#include <map>

#include "replay_internal.h"

namespace eraser::workloads::internal {
namespace {

// Whether shard `k`'s vote is covered by the answer's certificate: it was
// counted as affected and the answer is certified or waited for, or it was
// left out of a partial vote. Clean and uncertified answers cover nothing.
bool Covered(const engine::Prediction& p, ShardId k) {
  const bool affected =
      std::find(p.affected.begin(), p.affected.end(), k) != p.affected.end();
  switch (p.decision) {
    case certify::Decision::kCertified:
    case certify::Decision::kWaited:
    case certify::Decision::kPartial:
      return affected;
    default:
      return false;
  }
}

}  // namespace

void CountExposures(PolicyRun* run) {
  PolicyReport& r = run->report;
  r.exposures = 0;
  r.exposure_checked = 0;
  // Per deletion: shard -> the first version without it. A shard the
  // deletion hit that no version excludes (never retrained without it)
  // holds it in every version.
  std::vector<std::map<ShardId, uint64_t>> first_without(run->infos.size());
  for (std::size_t i = 0; i < run->infos.size(); ++i) {
    const engine::DeletionInfo& info = run->infos[i];
    for (ShardId k : info.shards) first_without[i][k] = UINT64_MAX;
    for (const auto& [k, version] : info.excluded_from) {
      first_without[i][k] = version;
    }
  }
  for (const Outcome& o : run->outcomes) {
    if (!o.prediction) continue;
    const engine::Prediction& p = *o.prediction;
    if (p.decision == certify::Decision::kRejected) continue;
    ++r.exposure_checked;
    bool exposed = false;
    for (std::size_t i = 0; i < run->infos.size() && !exposed; ++i) {
      // Acknowledged after the computation started: not owed yet.
      if (run->acked[i] >= p.computed_at) continue;
      for (const auto& [k, version] : first_without[i]) {
        if (k.value() >= p.model_versions.size()) continue;
        if (p.model_versions[k.value()] < version && !Covered(p, k)) {
          exposed = true;
          break;
        }
      }
    }
    r.exposures += exposed ? 1 : 0;
  }
}

}  // namespace eraser::workloads::internal
