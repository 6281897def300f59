// The replay report: JSON (DESIGN section 7) and a table for terminals.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "eraser/certify/record.h"
#include "replay_internal.h"

namespace eraser::workloads {
namespace {

using nlohmann::json;

json SummaryJson(const Summary& s, bool with_mean_p95) {
  json j = {{"p50", s.p50}, {"p99", s.p99}, {"max", s.max}};
  if (with_mean_p95) {
    j["mean"] = s.mean;
    j["p95"] = s.p95;
  }
  return j;
}

// 1 - policy/baseline, kept in [0, 1] as the report contract asks; the raw
// ratio is reported beside it.
double Saving(double policy, double baseline) {
  if (baseline <= 0) return 0;
  return std::clamp(1.0 - policy / baseline, 0.0, 1.0);
}

double Ratio(double policy, double baseline) {
  return baseline > 0 ? policy / baseline : 0;
}

const PolicyReport* Find(const std::vector<PolicyReport>& policies,
                         const std::string& name) {
  for (const PolicyReport& p : policies) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace

std::string ReplayReport::ToJson() const {
  json out;
  out["workload"] = json::parse(workload_json, nullptr, false);
  if (out["workload"].is_discarded()) out["workload"] = json::object();
  out["model"] = {{"dataset", model.dataset},
                  {"shards", model.shards},
                  {"slices", model.slices},
                  {"arch", model.arch},
                  {"test_accuracy", model.test_accuracy}};
  // false with --no-oracle: the soundness counts were not checked.
  out["oracle"] = oracle;
  json policies_json = json::array();
  for (const PolicyReport& p : policies) {
    json decisions;
    for (int d = 0; d < certify::kNumDecisions; ++d) {
      decisions[certify::DecisionName(static_cast<certify::Decision>(d + 1))] =
          p.decisions[d];
    }
    json privacy = {
        {"exposures", p.exposures},
        {"exposure_checked", p.exposure_checked},
        {"exposures_flagged", p.exposures_flagged},
        {"oracle_checked", p.oracle_checked},
        {"soundness_violations", p.soundness_violations},
        {"oracle_from_scratch_checked", p.oracle_from_scratch_checked},
        {"oracle_from_scratch_violations", p.oracle_from_scratch_violations},
        {"final_state_checked", p.final_state_checked},
        {"final_state_violations", p.final_state_violations}};
    privacy["oracle_agreement"] =
        p.oracle_agreement ? json(*p.oracle_agreement) : json(nullptr);
    policies_json.push_back(
        {{"name", p.name},
         {"policy", p.policy},
         {"inference",
          {{"requests", p.requests},
           {"throughput_rps", p.throughput_rps},
           {"accuracy", p.accuracy},
           {"latency_ms", SummaryJson(p.latency_ms, true)},
           {"engine_latency_ms", SummaryJson(p.engine_latency_ms, true)},
           {"issue_lag_ms", SummaryJson(p.issue_lag_ms, true)},
           {"decisions", decisions},
           {"refused", p.refused},
           {"decided_by_affected_shards", p.decided_by_affected},
           {"decided_with_at_most_half_affected",
            p.DecidedWithAtMostAffected(model.shards / 2)}}},
         {"unlearning",
          {{"deletions", p.deletions},
           {"failed_deletions", p.failed_deletions},
           {"repeated_deletions", p.repeated_deletions},
           {"shard_retrains", p.shard_retrains},
           {"sample_epochs", p.sample_epochs},
           {"sample_epochs_during_trace", p.sample_epochs_during_trace},
           {"cpu_seconds", p.cpu_seconds},
           {"delay_ms", SummaryJson(p.delay_ms, false)},
           {"pending_at_end", p.pending_at_end},
           {"deadline_ms", p.deadline_ms},
           {"deadline_misses", p.deadline_misses},
           {"retrain_seconds_during_trace", p.retrain_seconds_during_trace},
           {"retrain_busy_fraction", p.retrain_busy_fraction}}},
         {"privacy", privacy},
         {"wall_seconds", p.wall_seconds}});
  }
  out["policies"] = policies_json;
  json per_policy = json::object();
  if (const PolicyReport* base = Find(policies, baseline)) {
    for (const PolicyReport& p : policies) {
      per_policy[p.name] = {
          {"latency_p50_saving",
           Saving(p.latency_ms.p50, base->latency_ms.p50)},
          {"latency_p99_saving",
           Saving(p.latency_ms.p99, base->latency_ms.p99)},
          {"latency_mean_saving",
           Saving(p.latency_ms.mean, base->latency_ms.mean)},
          {"compute_saving", Saving(static_cast<double>(p.sample_epochs),
                                    static_cast<double>(base->sample_epochs))},
          {"latency_p50_ratio", Ratio(p.latency_ms.p50, base->latency_ms.p50)},
          {"latency_p99_ratio", Ratio(p.latency_ms.p99, base->latency_ms.p99)},
          {"compute_ratio", Ratio(static_cast<double>(p.sample_epochs),
                                  static_cast<double>(base->sample_epochs))}};
    }
  }
  out["comparison"] = {{"baseline", baseline}, {"per_policy", per_policy}};
  return out.dump(2) + "\n";
}

double PolicyReport::DecidedWithAtMostAffected(std::size_t shards) const {
  uint64_t total = 0;
  uint64_t within = 0;
  for (std::size_t a = 0; a < decided_by_affected.size(); ++a) {
    total += decided_by_affected[a];
    if (a <= shards) within += decided_by_affected[a];
  }
  return total > 0 ? static_cast<double>(within) / static_cast<double>(total)
                   : 1.0;
}

std::string PolicyReport::DecisionCounts() const {
  std::string out;
  for (uint64_t count : decisions) {
    if (!out.empty()) out += '/';
    out += std::to_string(count);
  }
  return out;
}

std::vector<std::string> ReplayReport::GuaranteeViolations() const {
  std::vector<std::string> out;
  for (const PolicyReport& p : policies) {
    std::string broken;
    auto add = [&broken](uint64_t n, const char* what) {
      if (n == 0) return;
      broken += (broken.empty() ? "" : ", ") + std::to_string(n) + " " + what;
    };
    if (p.spec.kind != scheduler::PolicyKind::kInferenceFirst) {
      add(p.exposures, "exposures");
    }
    add(p.soundness_violations, "unsound answers");
    add(p.oracle_from_scratch_violations,
        "answers unlike the from-scratch ensemble's");
    add(p.final_state_violations, "wrong answers after the final drain");
    if (!broken.empty()) out.push_back(p.name + ": " + broken);
  }
  return out;
}

std::string ReplayReport::ToTable() const {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line),
                "model: %s, %u shards x %u slices, test accuracy %.4f\n\n",
                model.arch.c_str(), model.shards, model.slices,
                model.test_accuracy);
  out += line;
  std::snprintf(line, sizeof(line),
                "%-22s %8s %8s %6s %7s  %-33s %8s %10s %8s %5s %6s %5s  %5s "
                "%5s %5s\n",
                "policy", "p50 ms", "p99 ms", "acc", "A<=K/2",
                "cln/cert/wait/part/rej/unc/pfx", "retrains", "sample-ep",
                "delay s", "pend", "expose", "unsnd", "p50", "p99", "comp");
  out += line;
  const PolicyReport* base = nullptr;
  for (const PolicyReport& p : policies) {
    if (p.name == baseline) base = &p;
  }
  for (const PolicyReport& p : policies) {
    const std::string decisions = p.DecisionCounts();
    char savings[64] = "    -     -     -";
    if (base != nullptr && &p != base) {
      std::snprintf(savings, sizeof(savings), "%4.0f%% %4.0f%% %4.0f%%",
                    100 * Saving(p.latency_ms.p50, base->latency_ms.p50),
                    100 * Saving(p.latency_ms.p99, base->latency_ms.p99),
                    100 * Saving(static_cast<double>(p.sample_epochs),
                                 static_cast<double>(base->sample_epochs)));
    }
    char unsound[16] = "-";
    if (oracle) {
      std::snprintf(
          unsound, sizeof(unsound), "%llu",
          static_cast<unsigned long long>(p.soundness_violations +
                                          p.oracle_from_scratch_violations +
                                          p.final_state_violations));
    }
    std::snprintf(
        line, sizeof(line),
        "%-22s %8.1f %8.1f %6.4f %6.1f%%  %-33s %8llu %10llu %8.1f %5llu "
        "%6llu %5s  %s\n",
        p.name.c_str(), p.latency_ms.p50, p.latency_ms.p99, p.accuracy,
        100 * p.DecidedWithAtMostAffected(model.shards / 2), decisions.c_str(),
        static_cast<unsigned long long>(p.shard_retrains),
        static_cast<unsigned long long>(p.sample_epochs),
        p.delay_ms.max / 1000.0,
        static_cast<unsigned long long>(p.pending_at_end),
        static_cast<unsigned long long>(p.exposures), unsound, savings);
    out += line;
  }
  out +=
      "\nA<=K/2: requests decided with at most half of the shards "
      "affected. Savings (p50, p99, comp) are against " +
      baseline +
      " in this run. expose: answers that used a shard still holding a "
      "deletion acknowledged before them, uncovered by their certificate "
      "(counted by the replay). unsnd: certified answers that disagree "
      "with the retrained oracle, the from-scratch oracle, or the final "
      "state.\n";
  // A deletion the engine refused (a sample the trace names again after
  // its erasure) counts in no column above.
  for (const PolicyReport& p : policies) {
    if (p.failed_deletions == 0) continue;
    out += p.name + ": " + std::to_string(p.failed_deletions) +
           " deletion request" + (p.failed_deletions == 1 ? "" : "s") +
           " refused by the engine (counted in no column; the JSON report's "
           "failed_deletions)\n";
  }
  return out;
}

}  // namespace eraser::workloads
