// The workload replay simulator: one trace against several policies, each
// from the same trained state, in real time, with an oracle check of every
// answer (DESIGN guarantee 3) and a side-by-side report (DESIGN section 7).
#ifndef ERASER_WORKLOADS_REPLAY_H_
#define ERASER_WORKLOADS_REPLAY_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eraser/certify/record.h"
#include "eraser/common/clock.h"
#include "eraser/common/statusor.h"
#include "eraser/datasets/dataset.h"
#include "eraser/engine/options.h"
#include "eraser/scheduler/policy.h"
#include "eraser/workloads/trace.h"

namespace eraser::workloads {

struct ReplayConfig {
  // The policies, run in this order.
  std::vector<scheduler::Policy> policies;
  // Trace time is divided by this (2 replays twice as fast).
  double speed = 1.0;
  // Compute the oracle for every answer (retrains the ensemble once per
  // deletion, shared by all policies).
  bool oracle = true;
  // The independent oracle: for a seeded sample of this many answers per
  // policy (all of them when there are fewer), the ensemble trained from
  // scratch (Sisa::TrainFromScratch, no checkpoint reused) without the
  // deletions acknowledged before the answer; and, after the drain, this
  // many test answers against the ensemble trained from scratch without
  // every deletion. 0 turns either off. Each distinct shard version costs
  // one training of the shard.
  std::size_t oracle_from_scratch_sample = 100;
  std::size_t final_state_checks = 200;
  uint64_t oracle_seed = 1;
  // Engine settings shared by every policy: the engine's own defaults,
  // except a queue large enough that an open-loop trace is never refused
  // (ReplayInferenceOptions).
  engine::InferenceOptions inference = ReplayInferenceOptions();
  engine::UnlearningOptions unlearning;
  // Planted faults and bugs, for the tests of the checks themselves.
  engine::TestingHooks testing;
  // Tests: the issuer sends each request this long after its scheduled
  // time, as a load generator that wakes late would; zero otherwise.
  Duration testing_send_delay = Duration::zero();
  // Where per-policy copies of the data directory go ($TMPDIR if empty).
  std::string work_dir;
  // Progress (elapsed and remaining per policy) on stderr.
  bool progress = false;

  Status Validate() const;
  // The engine's inference defaults with a queue of 100,000 requests.
  static engine::InferenceOptions ReplayInferenceOptions();
};

struct Summary {
  double mean = 0, p50 = 0, p95 = 0, p99 = 0, max = 0;
};

struct PolicyReport {
  std::string name;    // as given
  std::string policy;  // canonical form
  scheduler::Policy spec;
  // Inference. Latency runs from each request's scheduled time (so queueing
  // behind a stalled engine counts, and so does the issuer's own lateness:
  // it shares the cores with the engine, so the two cannot be told apart)
  // to its answer. Beside it, over the same requests: the time from the
  // hand-off (Engine::InferAsync, which only queues) to the answer, and how
  // late the issuer sent each request after its scheduled time.
  uint64_t requests = 0;
  double throughput_rps = 0;
  double accuracy = 0;  // over answered (not rejected) requests
  // Over the answered requests (refused ones are not in it).
  Summary latency_ms;
  Summary engine_latency_ms;  // from the hand-off
  Summary issue_lag_ms;       // over every request, refused ones included
  // Indexed like certify::Decision - 1: clean, certified, waited, partial,
  // rejected, uncertified, prefix. Refused requests are not in it.
  std::array<uint64_t, certify::kNumDecisions> decisions{};
  // Not admitted (queue full): no answer, so neither a decision nor a
  // latency; requests = refused + the decisions.
  uint64_t refused = 0;
  // The requests the engine decided (answered or rejected) by the number
  // of shards it counted affected when it decided each: index A holds those
  // decided with A shards affected. Under `partial` and `prefix` this is
  // what decides the accuracy (issue 25: few affected shards cost little).
  std::vector<uint64_t> decided_by_affected;
  // Unlearning, up to every deletion applied (the trace, then a drain).
  uint64_t deletions = 0;
  uint64_t failed_deletions = 0;  // refused by the engine (unknown target)
  // Requests the engine answered with an earlier request's deletion, still
  // pending (a repeat: the same target, the same samples); each counts in
  // `deletions`, and its delay runs from its own acknowledgement.
  uint64_t repeated_deletions = 0;
  uint64_t shard_retrains = 0;
  uint64_t sample_epochs = 0;
  double cpu_seconds = 0;
  uint64_t sample_epochs_during_trace = 0;
  Summary delay_ms;             // acknowledgement to application
  uint64_t pending_at_end = 0;  // pending when the last answer arrived
  // The policy's deadline (0 for immediate, which has none) and the
  // deletions applied later than it after their acknowledgement.
  double deadline_ms = 0;
  uint64_t deadline_misses = 0;
  // Wall time spent retraining while the trace ran, and that time as a
  // fraction of the trace's length (with one retraining slot: how much of
  // the time the unlearning core was busy).
  double retrain_seconds_during_trace = 0;
  double retrain_busy_fraction = 0;
  // Privacy. `exposures` is counted by the replay itself, from the times
  // its deletion issuer saw each acknowledgement and the model versions
  // behind each answer (CountExposures); exposures_flagged is what the
  // engine itself flagged (Prediction::exposed), for comparison.
  uint64_t exposures = 0;
  uint64_t exposure_checked = 0;  // answers checked for exposure
  uint64_t exposures_flagged = 0;
  uint64_t oracle_checked = 0;  // answers compared with the oracle
  std::optional<double> oracle_agreement;
  uint64_t soundness_violations = 0;  // clean/certified/waited != oracle
  // The same against the ensemble trained from scratch (a sample), and the
  // final state after the drain (every answer must be clean and agree).
  uint64_t oracle_from_scratch_checked = 0;
  uint64_t oracle_from_scratch_violations = 0;
  uint64_t final_state_checked = 0;
  uint64_t final_state_violations = 0;
  double wall_seconds = 0;

  // The decisions' counts in their order, joined by '/' (the tables'
  // cln/cert/wait/part/rej/unc/pfx column).
  std::string DecisionCounts() const;
  // The fraction of decided requests decided with at most `shards` shards
  // affected (1 when none was decided).
  double DecidedWithAtMostAffected(std::size_t shards) const;
};

struct ModelInfo {
  std::string dataset = "fashion-mnist";
  uint32_t shards = 0;
  uint32_t slices = 0;
  std::string arch;
  double test_accuracy = 0;  // hard vote, initial ensemble
};

struct ReplayReport {
  std::string workload_json = "{}";  // the workload description, JSON object
  ModelInfo model;
  std::vector<PolicyReport> policies;
  std::string baseline;  // "immediate" when it ran, else the first policy
  // Whether the oracle ran (ReplayConfig::oracle): without it, soundness is
  // not checked and the tables say "-".
  bool oracle = true;

  // The report schema of DESIGN section 7 (plus extra fields).
  std::string ToJson() const;
  // One row per policy, for a terminal.
  std::string ToTable() const;
  // One sentence per policy that broke a guarantee the replay checks: an
  // answer exposed (by any policy but inference-first, which exposes by
  // design), an answer unsound against the retrained or the from-scratch
  // oracle, or a wrong answer after the final drain. Empty when all held.
  // Missed deadlines are not here: they follow the machine's speed and are
  // reported in the table.
  std::vector<std::string> GuaranteeViolations() const;
};

// Replays `trace` once per policy, each on a fresh copy of the trained data
// directory `template_dir` (not modified), then computes the oracle. The
// trace's test indices name samples of the directory's test split;
// kInvalidArgument for an index outside it.
StatusOr<ReplayReport> RunReplay(const Trace& trace,
                                 const std::string& template_dir,
                                 const ReplayConfig& config);

}  // namespace eraser::workloads

#endif  // ERASER_WORKLOADS_REPLAY_H_
