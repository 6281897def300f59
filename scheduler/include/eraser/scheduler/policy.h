// Policies (DESIGN section 3): when unlearning runs, and what happens to an
// answer that cannot be certified.
//
// Grammar (see PolicyHelp()):
//   immediate
//   inference-first[,deadline=D]
//   eraser:TIMING[,RULE][,deadline=D]
//     TIMING  lazy | batch:N | periodic:T | idle[:U] | shards:A
//     RULE    wait (default) | partial | soft | prefix | reject
//   or a preset name (Presets()).
// D and T are durations such as 500ms, 30s, 2m.
#ifndef ERASER_SCHEDULER_POLICY_H_
#define ERASER_SCHEDULER_POLICY_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eraser/common/clock.h"
#include "eraser/common/statusor.h"

namespace eraser::scheduler {

enum class PolicyKind {
  // Baseline: unlearn every deletion at once; inference waits for it.
  kImmediate,
  // Baseline: answer from the current models without a certificate and
  // unlearn in batches at the deadline. Exposes deleted data.
  kInferenceFirst,
  // Postpone unlearning by a timing policy; certify every answer.
  kEraser,
};

enum class Timing {
  kLazy,      // only when a parked request needs it, or at the deadline
  kBatch,     // when batch_size deletions await unlearning
  kPeriodic,  // every `period`
  kIdle,      // when the inference queue is empty and utilisation is low
  kShards,    // when more than max_affected shards are affected
};

enum class UncertifiedRule {
  kWait,     // retrain the shards the request needs, answer once certified
  kPartial,  // answer from the unaffected shards now (their plurality)
  // Answer now from the unaffected shards, by the sum of their
  // probabilities rather than their votes (a `partial` decision).
  kSoft,
  // Answer now as `partial`, but where the unaffected shards tie (or every
  // shard is affected) the affected shards' clean prefixes (the checkpoint
  // before the slice of their earliest pending deletion), where they have
  // one, choose among the tied labels.
  kPrefix,
  kReject,  // answer "unavailable, retry"
};

struct Policy {
  PolicyKind kind = PolicyKind::kEraser;
  Timing timing = Timing::kLazy;
  uint32_t batch_size = 8;                     // batch:N
  Duration period = std::chrono::seconds(10);  // periodic:T
  double idle_utilization = 0.25;              // idle:U, in [0, 1]
  uint32_t max_affected = 1;                   // shards:A
  UncertifiedRule rule = UncertifiedRule::kWait;
  // No deletion stays pending longer than this (ERASER and inference-first).
  Duration deadline = std::chrono::seconds(30);
  // The text it was parsed from (a preset name or a policy string). The
  // defaults above are the preset it names.
  std::string name = "eraser-lazy-wait";

  // Canonical form, e.g. "eraser:batch:8,wait,deadline=30s".
  std::string ToString() const;
  // True for ERASER policies: answers are certified.
  bool certifies() const { return kind == PolicyKind::kEraser; }
  // True if an answer that cannot be certified is given at once from the
  // unaffected shards (`partial`, `soft`, `prefix`), parked only when every
  // shard is affected.
  bool answers_from_unaffected() const {
    return rule == UncertifiedRule::kPartial ||
           rule == UncertifiedRule::kSoft || rule == UncertifiedRule::kPrefix;
  }
  // True unless deletions may wait (immediate).
  bool has_deadline() const { return kind != PolicyKind::kImmediate; }
  // kInvalidArgument for a field out of the ranges the grammar allows.
  Status Validate() const;
};

// Parses a policy string or preset name. kInvalidArgument with a message
// that says what is wrong and lists every valid form.
StatusOr<Policy> ParsePolicy(std::string_view text);

// Parses a list of policies separated by semicolons or whitespace (commas
// belong to policy strings): "immediate;eraser-lazy-wait".
// kInvalidArgument for an empty list, a bad entry or a repeated name.
StatusOr<std::vector<Policy>> ParsePolicyList(std::string_view text);

// Preset names and the policy strings they stand for, in display order.
const std::vector<std::pair<std::string, std::string>>& Presets();

// The grammar and the presets, for --help and error messages.
std::string PolicyHelp();

const char* TimingName(Timing timing);
const char* RuleName(UncertifiedRule rule);

}  // namespace eraser::scheduler

#endif  // ERASER_SCHEDULER_POLICY_H_
