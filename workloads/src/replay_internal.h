// Internal pieces of the replay, shared by replay.cc, oracle.cc and
// report.cc.
#ifndef ERASER_WORKLOADS_SRC_REPLAY_INTERNAL_H_
#define ERASER_WORKLOADS_SRC_REPLAY_INTERNAL_H_

#include <optional>
#include <string>
#include <vector>

#include "eraser/engine/engine.h"
#include "eraser/workloads/replay.h"

namespace eraser::workloads::internal {

// One inference request of a run and what became of it.
struct Outcome {
  uint64_t test_index = 0;
  double scheduled_s = 0;  // from the run's start, after speed scaling
  double done_s = 0;
  bool refused = false;  // not admitted
  std::optional<engine::Prediction> prediction;
};

struct PolicyRun {
  PolicyReport report;
  std::vector<Outcome> outcomes;
  // The deletions this run's engine accepted, in order, with their
  // sequence numbers (ascending).
  std::vector<DeletionSeq> seqs;
  std::vector<storage::DeletionTarget> targets;
};

// Fills the oracle fields of every run's report. `test_inputs` are the test
// images scaled to [0, 1].
Status CheckAgainstOracle(const std::string& template_dir,
                          const std::string& work_dir,
                          const std::vector<float>& test_inputs,
                          const datasets::Split& test,
                          std::vector<PolicyRun>& runs);

Summary Summarize(std::vector<double> values);

}  // namespace eraser::workloads::internal

#endif  // ERASER_WORKLOADS_SRC_REPLAY_INTERNAL_H_
