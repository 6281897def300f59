// Internal pieces of the replay, shared by replay.cc, oracle.cc and
// report.cc.
#ifndef ERASER_WORKLOADS_SRC_REPLAY_INTERNAL_H_
#define ERASER_WORKLOADS_SRC_REPLAY_INTERNAL_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eraser/engine/engine.h"
#include "eraser/workloads/replay.h"

namespace eraser::workloads::internal {

// One inference request of a run and what became of it.
struct Outcome {
  uint64_t test_index = 0;
  double scheduled_s = 0;  // from the run's start, after speed scaling
  double sent_s = 0;       // when the issuer handed it to the engine
  double done_s = 0;
  bool refused = false;  // not admitted
  std::optional<engine::Prediction> prediction;
};

struct PolicyRun {
  PolicyReport report;
  // When Engine::Open returned (the engine's retraining log counts from
  // just before).
  std::chrono::steady_clock::time_point opened;
  std::vector<Outcome> outcomes;
  // The deletions this run's engine accepted, in order, with their
  // sequence numbers (ascending, but for a repeat of a pending deletion,
  // answered with that one's number).
  std::vector<DeletionSeq> seqs;
  std::vector<storage::DeletionTarget> targets;
  // When the deletion issuer saw each acknowledgement, on the engine's
  // clock (parallel to seqs): the exposure check trusts these, not the
  // engine's bookkeeping of pending deletions.
  std::vector<TimePoint> acked;
  // After the drain: each accepted deletion's shards and the model version
  // of each that first excludes it (parallel to seqs).
  std::vector<engine::DeletionInfo> infos;
  // After the drain: the engine's answers on the final-state probe, by
  // test index.
  std::vector<std::pair<uint64_t, engine::Prediction>> final_answers;
};

// For each deletion target of a trace (by kind and id), its samples with
// their shards and slices: read from the partition of the template, not
// from anything the engine reports.
using Locations =
    std::map<std::pair<int, uint64_t>, std::vector<storage::SampleLocation>>;
StatusOr<Locations> LocateDeletions(const std::string& template_dir,
                                    const datasets::Split& test,
                                    const Trace& trace);

// Answers that used a shard model still holding a deletion acknowledged
// before the answer was computed, the shard not covered by the answer's
// certificate (affected and certified, waited, or left out of a partial or
// prefix vote). A clean prefix that voted (shard, checkpoint version,
// stage) holds a deletion if its version predates the first that excludes
// it and its stages reach the deletion's earliest slice in the shard (over
// the samples no earlier deletion of the run named: those are checked with
// that one). Fills report.exposures and report.exposure_checked.
void CountExposures(const Locations& locations, PolicyRun* run);

// Fills the oracle fields of every run's report. `test_inputs` are the test
// images scaled to [0, 1].
Status CheckAgainstOracle(const std::string& template_dir,
                          const std::string& work_dir,
                          const std::vector<float>& test_inputs,
                          const datasets::Split& test,
                          const ReplayConfig& config,
                          std::vector<PolicyRun>& runs);

Summary Summarize(std::vector<double> values);

}  // namespace eraser::workloads::internal

#endif  // ERASER_WORKLOADS_SRC_REPLAY_INTERNAL_H_
