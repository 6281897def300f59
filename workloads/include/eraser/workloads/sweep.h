// A sweep: the same workload replayed at several deletion rates, every
// policy at each rate in one replay, and the comparison that follows.
#ifndef ERASER_WORKLOADS_SWEEP_H_
#define ERASER_WORKLOADS_SWEEP_H_

#include <functional>
#include <string>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/workloads/generator.h"
#include "eraser/workloads/replay.h"

namespace eraser::workloads {

struct SweepLevel {
  double deletion_rate = 0;  // per second
  ReplayReport report;
};

// The check of the performance targets at one level (docs/performance.md):
// where the immediate baseline keeps unlearning busy 20% to 90% of the
// time, the best ERASER policy that rejects at most 1% of requests without
// exposure should save at least 99% of mean and 95% of p99 latency and 31%
// of retraining compute, and serve an accuracy within 1 point of the
// baseline's, with no soundness violation and every deletion within its
// deadline.
struct TargetCheck {
  double deletion_rate = 0;
  double baseline_busy_fraction = 0;
  bool in_range = false;  // busy fraction in [0.2, 0.9]
  struct Candidate {
    std::string name;  // empty when no policy qualifies
    double mean_saving = 0, p99_saving = 0, compute_saving = 0;
    double accuracy = 0, baseline_accuracy = 0;
    double rejected_fraction = 0;  // rejected or refused
    uint64_t deadline_misses = 0, soundness_violations = 0, exposures = 0;
    bool meets_latency = false, meets_compute = false, meets_accuracy = false;
  };
  // Among ERASER policies that rejected at most 1% of requests, with no
  // exposure, no soundness violation and no missed deadline: the one that
  // meets the most targets (latency, compute, accuracy), then the largest
  // compute saving, then the largest mean latency saving, then p99.
  Candidate best;
  // The same among `wait` policies whose answers all equal the oracle's.
  Candidate best_wait;
};

// What a policy sustains (issue 25's "deletions per second sustained with
// A <= K/2"): the highest rate of the sweep at which, and at every lower
// rate swept, at least 99% of the requests the engine decided were decided
// with at most half of the shards affected, with no exposure and no missed
// deadline. 0 when the lowest rate already fails.
struct SustainedRate {
  std::string name;
  double rate = 0;
  // Per level, in ascending rate order: the fraction decided with at most
  // half of the shards affected.
  std::vector<double> fractions;
};

struct SweepReport {
  std::string workload_json = "{}";
  std::vector<SweepLevel> levels;

  std::vector<TargetCheck> CheckTargets() const;
  std::string ToJson() const;
  // LevelTable of every level.
  std::string ToTable() const;
  // The target check as a table.
  std::string TargetsTable() const;
  // One per policy of the first level, in its order.
  std::vector<SustainedRate> SustainedRates() const;
  // SustainedRates as a table.
  std::string SustainedTable() const;
  // Whitespace-separated columns for gnuplot, one block per policy:
  // rate mean_ms p50_ms p99_ms sample_epochs cpu_s accuracy exposures
  // soundness_violations delay_max_s busy_fraction rejected_fraction.
  std::string ToDat() const;
};

// One level for a terminal: the baseline's busy fraction, then one row
// per policy.
std::string LevelTable(const SweepLevel& level);

using LevelCallback = std::function<void(const SweepLevel&)>;

// Replays the trace `generator` makes at each rate (same seed) against
// `config.policies` on copies of `template_dir`, in the order given;
// `on_level`, when set, is called as each level completes.
StatusOr<SweepReport> RunSweep(const GeneratorOptions& generator,
                               const std::vector<double>& deletion_rates,
                               const std::string& template_dir,
                               const ReplayConfig& config,
                               const LevelCallback& on_level = nullptr);

}  // namespace eraser::workloads

#endif  // ERASER_WORKLOADS_SWEEP_H_
