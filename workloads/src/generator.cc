#include "eraser/workloads/generator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string_view>

#include "eraser/common/numbers.h"
#include "eraser/common/random.h"

namespace eraser::workloads {
namespace {

double Exponential(Rng& rng, double rate) {
  return -std::log(1.0 - rng.UniformDouble()) / rate;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// "YYYY-MM-DD HH:MM:SS[.fraction]" -> seconds since the epoch (UTC).
bool ParseTimestamp(const std::string& text, double* seconds) {
  int year, month, day, hour, minute;
  int seconds_at = -1;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d %2d:%2d:%n", &year, &month, &day,
                  &hour, &minute, &seconds_at) != 5 ||
      seconds_at < 0) {
    return false;
  }
  // The seconds' fraction is read whatever the C locale (sscanf's %lf
  // would take a comma under a German one).
  double second = 0;
  if (!ParseDouble(std::string_view(text).substr(seconds_at), &second)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
      minute > 59 || second < 0 || second >= 61) {
    return false;
  }
  *seconds = static_cast<double>(DaysFromCivil(year, month, day)) * 86400.0 +
             hour * 3600.0 + minute * 60.0 + second;
  return true;
}

// Distinct ids from [0, n) in the order they are deleted: ranks drawn by
// weight, mapped to ids through a random permutation (so the popular ids
// are random ones).
std::vector<uint64_t> DeletionOrder(uint64_t n, std::size_t count,
                                    const GeneratorOptions& o, Rng& rng) {
  std::vector<uint64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  rng.Shuffle(ids.begin(), ids.end());
  const double exponent =
      o.distribution == GeneratorOptions::Distribution::kZipf ? o.zipf_exponent
                                                              : 0.0;
  std::vector<uint64_t> order = DrawWithoutReplacement(n, count, exponent, rng);
  for (uint64_t& rank : order) rank = ids[rank];
  return order;
}

}  // namespace

std::vector<uint64_t> DrawWithoutReplacement(uint64_t n, std::size_t count,
                                             double exponent, Rng& rng) {
  // Efraimidis-Spirakis: the largest keys u^(1/w) form a weighted random
  // order; log(u)/w orders the same way without underflow.
  std::vector<std::pair<double, uint64_t>> keyed(n);
  for (uint64_t r = 0; r < n; ++r) {
    const double weight = std::pow(static_cast<double>(r + 1), -exponent);
    keyed[r] = {std::log(1.0 - rng.UniformDouble()) / weight, r};
  }
  const std::size_t k = std::min<std::size_t>(count, n);
  std::partial_sort(
      keyed.begin(), keyed.begin() + static_cast<std::ptrdiff_t>(k),
      keyed.end(),
      [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<uint64_t> out(k);
  for (std::size_t i = 0; i < k; ++i) out[i] = keyed[i].second;
  return out;
}

Status GeneratorOptions::Validate() const {
  if (duration <= Duration(0) || duration > std::chrono::hours(24)) {
    return InvalidArgumentError("duration must be in (0, 24h]");
  }
  if (!(inference_rate > 0 && inference_rate <= 1e6)) {
    return InvalidArgumentError("inference_rate must be in (0, 1e6]");
  }
  if (!(deletion_rate >= 0 && deletion_rate <= 1e4)) {
    return InvalidArgumentError("deletion_rate must be in [0, 1e4]");
  }
  if (!(zipf_exponent > 0 && zipf_exponent <= 10)) {
    return InvalidArgumentError("zipf_exponent must be in (0, 10]");
  }
  if (train_size == 0 || (owners == 0 && owner_ids.empty()) || test_size == 0) {
    return InvalidArgumentError("train_size, owners and test_size must be > 0");
  }
  return OkStatus();
}

void FitToDataset(const unlearning::DatasetInfo& dataset,
                  GeneratorOptions* options) {
  options->train_size = dataset.train_size;
  options->test_size = dataset.test.size();
  options->test_rows.clear();
  const datasets::Split& test = dataset.test;
  if (std::any_of(test.labels.begin(), test.labels.end(), [](uint32_t l) {
        return l == datasets::Split::kErasedLabel;
      })) {
    for (uint64_t i = 0; i < test.size(); ++i) {
      if (!test.erased(i)) options->test_rows.push_back(i);
    }
    options->test_size = options->test_rows.size();
  }
  options->owner_ids = dataset.owners;
  options->owners = dataset.owners.size();
}

StatusOr<Trace> GenerateTrace(const GeneratorOptions& o) {
  RETURN_IF_ERROR(o.Validate());
  const double end_s = std::chrono::duration<double>(o.duration).count();
  Rng infer_rng(DeriveSeed(o.seed, {1}));
  Rng delete_rng(DeriveSeed(o.seed, {2}));
  Rng target_rng(DeriveSeed(o.seed, {3}));

  std::vector<double> infer_times;
  if (o.arrivals_file.empty()) {
    for (double t = Exponential(infer_rng, o.inference_rate); t < end_s;
         t += Exponential(infer_rng, o.inference_rate)) {
      infer_times.push_back(t);
    }
  } else {
    ASSIGN_OR_RETURN(std::vector<double> arrivals,
                     ReadArrivalTimes(o.arrivals_file));
    if (arrivals.size() < 2 || arrivals.back() <= 0) {
      return InvalidArgumentError(o.arrivals_file +
                                  ": needs at least two distinct times");
    }
    // Scale so the mean rate is inference_rate; repeat to fill the run.
    const double scale = static_cast<double>(arrivals.size()) /
                         (arrivals.back() * o.inference_rate);
    const double period = arrivals.back() * scale + 1.0 / o.inference_rate;
    for (double offset = 0; offset < end_s; offset += period) {
      for (double a : arrivals) {
        const double t = offset + a * scale;
        if (t >= end_s) break;
        infer_times.push_back(t);
      }
    }
  }
  std::vector<double> delete_times;
  if (o.deletion_rate > 0) {
    for (double t = Exponential(delete_rng, o.deletion_rate); t < end_s;
         t += Exponential(delete_rng, o.deletion_rate)) {
      delete_times.push_back(t);
    }
  }
  const bool by_owner = o.deletion_target == GeneratorOptions::Target::kOwner;
  const uint64_t owners = o.owner_ids.empty() ? o.owners : o.owner_ids.size();
  std::vector<uint64_t> targets = DeletionOrder(
      by_owner ? owners : o.train_size, delete_times.size(), o, target_rng);
  if (by_owner && !o.owner_ids.empty()) {
    for (uint64_t& t : targets) t = o.owner_ids[t];
  }
  delete_times.resize(targets.size());

  Trace trace;
  for (double t : infer_times) {
    TraceEvent e;
    e.time_ms = std::round(t * 1e6) / 1e3;  // microsecond resolution
    e.op = TraceEvent::Op::kInfer;
    e.test_index = o.test_rows.empty()
                       ? infer_rng.Uniform(o.test_size)
                       : o.test_rows[infer_rng.Uniform(o.test_rows.size())];
    trace.events.push_back(e);
  }
  for (std::size_t i = 0; i < delete_times.size(); ++i) {
    TraceEvent e;
    e.time_ms = std::round(delete_times[i] * 1e6) / 1e3;
    e.op = TraceEvent::Op::kDelete;
    e.deletion = by_owner
                     ? storage::DeletionTarget::Owner(OwnerId(targets[i]))
                     : storage::DeletionTarget::Sample(SampleId(targets[i]));
    trace.events.push_back(e);
  }
  std::stable_sort(trace.events.begin(), trace.events.end(),
                   [](const TraceEvent& a, const TraceEvent& b) {
                     return a.time_ms < b.time_ms;
                   });
  return trace;
}

StatusOr<std::vector<double>> ReadArrivalTimes(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read arrival trace " + path);
  std::string row;
  std::vector<double> times;
  int line = 0;
  double first = 0;
  while (std::getline(in, row)) {
    ++line;
    if (!row.empty() && row.back() == '\r') row.pop_back();
    if (line == 1) {
      if (row.rfind("TIMESTAMP", 0) != 0) {
        return InvalidArgumentError(path +
                                    ": line 1: expected a header "
                                    "starting with TIMESTAMP");
      }
      continue;
    }
    double t = 0;
    if (!ParseTimestamp(row.substr(0, row.find(',')), &t)) {
      return InvalidArgumentError(path + ": line " + std::to_string(line) +
                                  ": malformed timestamp");
    }
    if (times.empty()) first = t;
    t -= first;
    if (!times.empty() && t < times.back()) {
      return InvalidArgumentError(path + ": line " + std::to_string(line) +
                                  ": timestamps go backwards");
    }
    times.push_back(t);
  }
  if (times.empty()) return InvalidArgumentError(path + ": no arrivals");
  return times;
}

StatusOr<GeneratorOptions::Distribution> ParseDistribution(
    const std::string& name) {
  if (name == "uniform") return GeneratorOptions::Distribution::kUniform;
  if (name == "zipf") return GeneratorOptions::Distribution::kZipf;
  return InvalidArgumentError("unknown distribution '" + name +
                              "': expected uniform or zipf");
}

StatusOr<GeneratorOptions::Target> ParseTarget(const std::string& name) {
  if (name == "sample") return GeneratorOptions::Target::kSample;
  if (name == "owner") return GeneratorOptions::Target::kOwner;
  return InvalidArgumentError("unknown deletion target '" + name +
                              "': expected sample or owner");
}

}  // namespace eraser::workloads
