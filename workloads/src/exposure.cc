// The replay's own exposure count (DESIGN guarantee 2), independent of the
// engine's bookkeeping of pending deletions: the deletion issuer's record
// of when each acknowledgement arrived, and each answer's per-shard model
// versions (and, for a clean prefix, its stage), against the first model
// version of each shard that excludes each deletion (recorded with the
// deletion in the store) and the partition's slices. The versions and the
// exclusion records are the engine's: a model served under a version it is
// not, or an affected shard voting in a partial answer, is for the label
// checks of the oracle (oracle.cc) to catch, when it changes a label.
#include <algorithm>
#include <map>
#include <set>

#include "eraser/storage/store.h"
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
    case certify::Decision::kPrefix:  // left out (a prefix is checked apart)
      return affected;
    default:
      return false;
  }
}

std::pair<int, uint64_t> Key(const storage::DeletionTarget& t) {
  return {static_cast<int>(t.kind), t.id};
}

}  // namespace

StatusOr<Locations> LocateDeletions(const std::string& template_dir,
                                    const datasets::Split& test,
                                    const Trace& trace) {
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store,
                   storage::Store::Open({template_dir, false}));
  Locations out;
  for (const TraceEvent& e : trace.events) {
    if (e.op != TraceEvent::Op::kDelete || out.count(Key(e.deletion)) > 0) {
      continue;
    }
    std::vector<storage::SampleLocation> samples;
    Status found;
    if (e.deletion.kind == storage::DeletionTarget::Kind::kSample) {
      StatusOr<storage::SampleLocation> s =
          store->LookupSample(SampleId(e.deletion.id));
      if (s.ok()) samples.push_back(*s);
      found = s.status();
    } else {
      StatusOr<std::vector<storage::SampleLocation>> s =
          store->OwnerSamples(OwnerId(e.deletion.id));
      if (s.ok()) samples = std::move(s).value();
      found = s.status();
    }
    // A target the data directory does not hold would be refused by every
    // policy's engine: the run would compare policies on no deletion (a
    // trace written for another dataset, say). Refused like a test index
    // outside the test split.
    // An owner whose rows are all in the test split is deleted as `serve`
    // deletes it: its test rows are erased, no model is retrained.
    const bool test_rows =
        e.deletion.kind == storage::DeletionTarget::Kind::kOwner &&
        std::find(test.owners.begin(), test.owners.end(), e.deletion.id) !=
            test.owners.end();
    if (found.code() == StatusCode::kNotFound && test_rows) found = OkStatus();
    if (found.ok() && samples.empty() && !test_rows) {
      found = NotFoundError("no samples");
    }
    if (found.code() == StatusCode::kNotFound) {
      return InvalidArgumentError(
          "line " + std::to_string(e.line) + ": " + e.deletion.ToString() +
          " is not in " + storage::PrintableLocation(template_dir) +
          " (a trace written for another data directory? eraser trace "
          "--data-dir picks targets from it)");
    }
    RETURN_IF_ERROR(found);
    out[Key(e.deletion)] = std::move(samples);
  }
  return out;
}

void CountExposures(const Locations& locations, PolicyRun* run) {
  PolicyReport& r = run->report;
  r.exposures = 0;
  r.exposure_checked = 0;
  // Per deletion: shard -> the first version without it. A shard the
  // deletion hit that no version excludes (never retrained without it)
  // holds it in every version.
  std::vector<std::map<ShardId, uint64_t>> first_without(run->infos.size());
  // Per deletion: shard -> the earliest slice of its samples there that no
  // earlier deletion named (a sample deleted twice is held until the first
  // deletion's exclusion, and checked with that one).
  std::vector<std::map<ShardId, uint32_t>> first_slice(run->infos.size());
  std::set<SampleId> named;
  for (std::size_t i = 0; i < run->infos.size(); ++i) {
    const auto it = locations.find(Key(run->targets[i]));
    if (it == locations.end()) continue;
    for (const storage::SampleLocation& s : it->second) {
      if (!named.insert(s.id).second) continue;
      auto [at, inserted] = first_slice[i].emplace(s.shard, s.slice);
      if (!inserted) at->second = std::min(at->second, s.slice);
    }
  }
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
        const int32_t stage = p.decision == certify::Decision::kPrefix &&
                                      k.value() < p.prefix_stages.size()
                                  ? p.prefix_stages[k.value()]
                                  : -1;
        if (stage >= 0) {
          // A clean prefix of shard k voted: trained on slices 0..stage of
          // the chain of its checkpoint's version.
          const auto slice = first_slice[i].find(k);
          if (slice != first_slice[i].end() &&
              p.model_versions[k.value()] < version &&
              static_cast<int64_t>(slice->second) <= stage) {
            exposed = true;
            break;
          }
          continue;
        }
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
