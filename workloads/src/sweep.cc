#include "eraser/workloads/sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>

#include "eraser/certify/record.h"
#include "eraser/common/numbers.h"
#include "eraser/scheduler/policy.h"
#include "eraser/workloads/workload.h"

namespace eraser::workloads {
namespace {

using nlohmann::json;

constexpr double kMinBusy = 0.2;
constexpr double kMaxBusy = 0.9;
constexpr double kMeanSavingTarget = 0.99;
constexpr double kP99SavingTarget = 0.95;
constexpr double kComputeSavingTarget = 0.31;
// Accuracy at most this far below the baseline's.
constexpr double kAccuracyGapTarget = 0.01;
// Requests a qualifying policy may leave without an answer.
constexpr double kMaxRejectedFraction = 0.01;
// Requests a policy must decide with at most half of the shards affected
// to sustain a rate.
constexpr double kSustainedFraction = 0.99;

double Saving(double policy, double baseline) {
  return baseline > 0 ? 1.0 - policy / baseline : 0.0;
}

// Requests without an answer: rejected, or refused at admission.
uint64_t Rejected(const PolicyReport& p) {
  return p.decisions[static_cast<int>(certify::Decision::kRejected) - 1] +
         p.refused;
}

// Every oracle's violations.
uint64_t Unsound(const PolicyReport& p) {
  return p.soundness_violations + p.oracle_from_scratch_violations +
         p.final_state_violations;
}

double RejectedFraction(const PolicyReport& p) {
  return p.requests > 0 ? static_cast<double>(Rejected(p)) /
                              static_cast<double>(p.requests)
                        : 0.0;
}

const PolicyReport* Baseline(const ReplayReport& r) {
  for (const PolicyReport& p : r.policies) {
    if (p.name == r.baseline) return &p;
  }
  return nullptr;
}

TargetCheck::Candidate Describe(const PolicyReport& p,
                                const PolicyReport& base) {
  TargetCheck::Candidate c;
  c.name = p.name;
  c.mean_saving = Saving(p.latency_ms.mean, base.latency_ms.mean);
  c.p99_saving = Saving(p.latency_ms.p99, base.latency_ms.p99);
  c.compute_saving = Saving(static_cast<double>(p.sample_epochs),
                            static_cast<double>(base.sample_epochs));
  c.accuracy = p.accuracy;
  c.baseline_accuracy = base.accuracy;
  c.rejected_fraction = RejectedFraction(p);
  c.deadline_misses = p.deadline_misses;
  c.soundness_violations = Unsound(p);
  c.exposures = p.exposures;
  c.meets_latency =
      c.mean_saving >= kMeanSavingTarget && c.p99_saving >= kP99SavingTarget;
  c.meets_compute = c.compute_saving >= kComputeSavingTarget;
  // Accuracies are ratios of counts: compared with a rounding margin.
  c.meets_accuracy =
      c.accuracy >= c.baseline_accuracy - kAccuracyGapTarget - 1e-9;
  return c;
}

// More targets met first, then more compute saved, then more mean and p99
// latency saved (wait policies often retrain exactly as much as each
// other, and the first in preset order must not win such a tie).
bool Better(const TargetCheck::Candidate& a, const TargetCheck::Candidate& b) {
  const int ma = a.meets_latency + a.meets_compute + a.meets_accuracy;
  const int mb = b.meets_latency + b.meets_compute + b.meets_accuracy;
  if (ma != mb) return ma > mb;
  if (a.compute_saving != b.compute_saving) {
    return a.compute_saving > b.compute_saving;
  }
  if (a.mean_saving != b.mean_saving) return a.mean_saving > b.mean_saving;
  return a.p99_saving > b.p99_saving;
}

json CandidateJson(const TargetCheck::Candidate& c) {
  if (c.name.empty()) return nullptr;
  return {{"name", c.name},
          {"latency_mean_saving", c.mean_saving},
          {"latency_p99_saving", c.p99_saving},
          {"compute_saving", c.compute_saving},
          {"accuracy", c.accuracy},
          {"baseline_accuracy", c.baseline_accuracy},
          {"exposures", c.exposures},
          {"soundness_violations", c.soundness_violations},
          {"deadline_misses", c.deadline_misses},
          {"rejected_fraction", c.rejected_fraction},
          {"meets_latency_targets", c.meets_latency},
          {"meets_compute_target", c.meets_compute},
          {"meets_accuracy_target", c.meets_accuracy}};
}

}  // namespace

std::vector<TargetCheck> SweepReport::CheckTargets() const {
  std::vector<TargetCheck> checks;
  for (const SweepLevel& level : levels) {
    TargetCheck check;
    check.deletion_rate = level.deletion_rate;
    const PolicyReport* base = Baseline(level.report);
    if (base == nullptr) continue;
    check.baseline_busy_fraction = base->retrain_busy_fraction;
    check.in_range = base->retrain_busy_fraction >= kMinBusy &&
                     base->retrain_busy_fraction <= kMaxBusy;
    for (const PolicyReport& p : level.report.policies) {
      const scheduler::Policy* policy = &p.spec;
      // A rejected request gets no answer: its low latency saves nothing,
      // so at most 1% may be.
      if (policy->kind != scheduler::PolicyKind::kEraser || p.exposures > 0 ||
          Unsound(p) > 0 || p.deadline_misses > 0 ||
          RejectedFraction(p) > kMaxRejectedFraction) {
        continue;
      }
      const TargetCheck::Candidate c = Describe(p, *base);
      if (check.best.name.empty() || Better(c, check.best)) check.best = c;
      const bool oracle_exact =
          p.oracle_agreement.has_value() && *p.oracle_agreement == 1.0;
      if (policy->rule == scheduler::UncertifiedRule::kWait && oracle_exact &&
          (check.best_wait.name.empty() || Better(c, check.best_wait))) {
        check.best_wait = c;
      }
    }
    checks.push_back(check);
  }
  return checks;
}

std::string SweepReport::ToJson() const {
  json out;
  out["workload"] = json::parse(workload_json, nullptr, false);
  if (out["workload"].is_discarded()) out["workload"] = json::object();
  json levels_json = json::array();
  for (const SweepLevel& level : levels) {
    levels_json.push_back({{"deletion_rate", level.deletion_rate},
                           {"report", json::parse(level.report.ToJson())}});
  }
  if (!levels.empty()) out["model"] = levels_json[0]["report"]["model"];
  out["levels"] = levels_json;
  json targets = json::array();
  for (const TargetCheck& t : CheckTargets()) {
    targets.push_back(
        {{"deletion_rate", t.deletion_rate},
         {"baseline_retrain_busy_fraction", t.baseline_busy_fraction},
         {"in_range", t.in_range},
         {"best_zero_exposure", CandidateJson(t.best)},
         {"best_wait_oracle_exact", CandidateJson(t.best_wait)}});
  }
  json sustained = json::array();
  for (const SustainedRate& r : SustainedRates()) {
    sustained.push_back({{"name", r.name},
                         {"rate", r.rate},
                         {"decided_with_at_most_half_affected", r.fractions}});
  }
  out["sustained_with_at_most_half_affected"] = {
      {"fraction", kSustainedFraction}, {"policies", sustained}};
  out["targets"] = {{"busy_fraction_range", {kMinBusy, kMaxBusy}},
                    {"latency_mean_saving", kMeanSavingTarget},
                    {"latency_p99_saving", kP99SavingTarget},
                    {"compute_saving", kComputeSavingTarget},
                    {"accuracy_gap", kAccuracyGapTarget},
                    {"rejected_fraction", kMaxRejectedFraction},
                    {"levels", targets}};
  return out.dump(2) + "\n";
}

std::string SweepReport::ToTable() const {
  std::string out;
  for (const SweepLevel& level : levels) out += LevelTable(level);
  return out;
}

std::string LevelTable(const SweepLevel& level) {
  std::string out;
  char line[512];
  const PolicyReport* base = Baseline(level.report);
  std::snprintf(line, sizeof(line),
                "\n== %.2f deletions/s: %s keeps unlearning busy %.0f%% of "
                "the time ==\n",
                level.deletion_rate, level.report.baseline.c_str(),
                base ? 100 * base->retrain_busy_fraction : 0.0);
  out += line;
  std::snprintf(line, sizeof(line),
                "%-22s %9s %8s %9s %6s %7s %-31s %10s %6s %7s %5s %5s %5s\n",
                "policy", "mean ms", "p50 ms", "p99 ms", "acc", "A<=K/2",
                "cln/cert/wait/part/rej/unc/pfx", "sample-ep", "cpu s",
                "delay s", "expo", "unsnd", "miss");
  out += line;
  for (const PolicyReport& p : level.report.policies) {
    const std::string decisions = p.DecisionCounts();
    // Without the oracle (--no-oracle) soundness is not checked: "-".
    const std::string unsound =
        level.report.oracle ? std::to_string(Unsound(p)) : "-";
    std::snprintf(
        line, sizeof(line),
        "%-22s %9.1f %8.1f %9.1f %6.4f %6.1f%% %-31s %10llu %6.1f %7.1f "
        "%5llu %5s %5llu\n",
        p.name.c_str(), p.latency_ms.mean, p.latency_ms.p50, p.latency_ms.p99,
        p.accuracy,
        100 * p.DecidedWithAtMostAffected(level.report.model.shards / 2),
        decisions.c_str(), (unsigned long long)p.sample_epochs, p.cpu_seconds,
        p.delay_ms.max / 1000.0, (unsigned long long)p.exposures,
        unsound.c_str(), (unsigned long long)p.deadline_misses);
    out += line;
  }
  return out;
}

std::string SweepReport::TargetsTable() const {
  std::string out =
      "\nTargets where the baseline is busy 20% to 90%: mean latency saving "
      ">= 99%, p99 >= 95%, compute >= 31%,\naccuracy within 1 point of the "
      "baseline's; no exposure, no soundness violation, no missed deadline,\n"
      "at most 1% of requests rejected.\n";
  const bool unchecked =
      std::any_of(levels.begin(), levels.end(),
                  [](const SweepLevel& level) { return !level.report.oracle; });
  if (unchecked) {
    out +=
        "Soundness was not checked (--no-oracle): 'met' says nothing about "
        "it, and no 'best wait' row is chosen (a wait policy qualifies by "
        "agreeing with the oracle).\n";
  }
  char line[512];
  std::snprintf(line, sizeof(line),
                "%-6s %-5s %-9s %-22s %7s %7s %7s %7s %7s %s\n", "del/s",
                "busy", "", "policy", "mean", "p99", "compute", "acc", "base",
                "met");
  out += line;
  for (const TargetCheck& t : CheckTargets()) {
    for (int which = 0; which < 2; ++which) {
      const TargetCheck::Candidate& c = which == 0 ? t.best : t.best_wait;
      if (c.name.empty()) continue;
      const bool all = c.meets_latency && c.meets_compute && c.meets_accuracy;
      std::snprintf(line, sizeof(line),
                    "%-6.2f %4.0f%% %-9s %-22s %6.2f%% %6.2f%% %6.1f%% %7.4f "
                    "%7.4f %s\n",
                    t.deletion_rate, 100 * t.baseline_busy_fraction,
                    which == 0 ? "best" : "best wait", c.name.c_str(),
                    100 * c.mean_saving, 100 * c.p99_saving,
                    100 * c.compute_saving, c.accuracy, c.baseline_accuracy,
                    !t.in_range ? "(outside 20-90%)" : (all ? "yes" : "NO"));
      out += line;
    }
  }
  return out;
}

std::vector<SustainedRate> SweepReport::SustainedRates() const {
  std::vector<const SweepLevel*> by_rate;
  for (const SweepLevel& level : levels) by_rate.push_back(&level);
  std::stable_sort(by_rate.begin(), by_rate.end(),
                   [](const SweepLevel* a, const SweepLevel* b) {
                     return a->deletion_rate < b->deletion_rate;
                   });
  std::vector<SustainedRate> out;
  if (levels.empty()) return out;
  for (const PolicyReport& first : levels.front().report.policies) {
    SustainedRate s;
    s.name = first.name;
    bool holding = true;
    for (const SweepLevel* level : by_rate) {
      const PolicyReport* p = nullptr;
      for (const PolicyReport& candidate : level->report.policies) {
        if (candidate.name == first.name) p = &candidate;
      }
      if (p == nullptr) {
        holding = false;
        s.fractions.push_back(0);
        continue;
      }
      const double fraction =
          p->DecidedWithAtMostAffected(level->report.model.shards / 2);
      s.fractions.push_back(fraction);
      holding = holding && fraction >= kSustainedFraction &&
                p->exposures == 0 && p->deadline_misses == 0;
      if (holding) s.rate = level->deletion_rate;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string SweepReport::SustainedTable() const {
  if (levels.empty()) return "";
  std::vector<double> rates;
  for (const SweepLevel& level : levels) rates.push_back(level.deletion_rate);
  std::sort(rates.begin(), rates.end());
  char line[128];
  std::snprintf(line, sizeof(line), "%u of %u",
                levels.front().report.model.shards / 2,
                levels.front().report.model.shards);
  std::string out = "\nRequests decided with at most half of the shards (" +
                    std::string(line) +
                    ") affected, by deletion rate; sustained: the highest "
                    "rate up to which\nat least 99% were, with no exposure "
                    "and no missed deadline (0: not even the lowest).\n";
  std::snprintf(line, sizeof(line), "%-22s", "policy");
  out += line;
  for (double rate : rates) {
    std::snprintf(line, sizeof(line), " %7.2f", rate);
    out += line;
  }
  out += "  sustained\n";
  for (const SustainedRate& s : SustainedRates()) {
    std::snprintf(line, sizeof(line), "%-22s", s.name.c_str());
    out += line;
    for (double f : s.fractions) {
      std::snprintf(line, sizeof(line), " %6.1f%%", 100 * f);
      out += line;
    }
    std::snprintf(line, sizeof(line), "  %9.2f\n", s.rate);
    out += line;
  }
  return out;
}

std::string SweepReport::ToDat() const {
  std::string out =
      "# rate mean_ms p50_ms p99_ms sample_epochs cpu_s accuracy exposures "
      "soundness_violations delay_max_s busy_fraction rejected_fraction\n";
  if (levels.empty()) return out;
  for (const PolicyReport& first : levels.front().report.policies) {
    out += "\n\n# policy " + first.name + "\n";
    for (const SweepLevel& level : levels) {
      for (const PolicyReport& p : level.report.policies) {
        if (p.name != first.name) continue;
        // Numbers as %g and %llu write them, in the C locale (gnuplot
        // reads a point).
        const auto g = [](double v) { return FormatDouble(v, 6); };
        const std::string fields[] = {
            g(level.deletion_rate), g(p.latency_ms.mean), g(p.latency_ms.p50),
            g(p.latency_ms.p99), std::to_string(p.sample_epochs),
            g(p.cpu_seconds), g(p.accuracy), std::to_string(p.exposures),
            // NaN: not checked (--no-oracle).
            g(level.report.oracle ? static_cast<double>(Unsound(p))
                                  : std::nan("")),
            g(p.delay_ms.max / 1000.0), g(p.retrain_busy_fraction),
            g(RejectedFraction(p))};
        for (std::size_t i = 0; i < std::size(fields); ++i) {
          out += (i == 0 ? "" : " ") + fields[i];
        }
        out += "\n";
      }
    }
  }
  return out;
}

StatusOr<SweepReport> RunSweep(const GeneratorOptions& generator,
                               const std::vector<double>& deletion_rates,
                               const std::string& template_dir,
                               const ReplayConfig& config,
                               const LevelCallback& on_level) {
  RETURN_IF_ERROR(ValidateSweepRates(deletion_rates));
  SweepReport sweep;
  for (double rate : deletion_rates) {
    GeneratorOptions g = generator;
    g.deletion_rate = rate;
    ASSIGN_OR_RETURN(Trace trace, GenerateTrace(g));
    ASSIGN_OR_RETURN(ReplayReport report,
                     RunReplay(trace, template_dir, config));
    sweep.levels.push_back({rate, std::move(report)});
    if (on_level) on_level(sweep.levels.back());
  }
  return sweep;
}

}  // namespace eraser::workloads
