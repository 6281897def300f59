// `eraser replay`: replays a trace against several policies and compares
// them.
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "command.h"
#include "dataset_flags.h"
#include "eraser/common/hash.h"
#include "eraser/common/numbers.h"
#include "eraser/scheduler/policy.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/runtime.h"
#include "eraser/workloads/data_dir.h"
#include "eraser/workloads/replay.h"
#include "eraser/workloads/sweep.h"
#include "eraser/workloads/workload.h"

namespace po = boost::program_options;

namespace eraser::cli {
namespace {

constexpr char kUsage[] =
    "Usage: eraser replay (--trace FILE | --workload FILE) [options]\n"
    "Replays a trace against each policy in turn, in real time, from the same\n"
    "trained state; checks every answer against the oracle ensemble; prints\n"
    "a comparison table and optionally writes the JSON report.\n"
    "Without --store, the ensemble the workload describes (or the default\n"
    "one, with --trace) is trained once and cached in --cache-dir. With a\n"
    "trained --store directory and a trace, or a workload that names no "
    "dataset and\n"
    "no model, that ensemble is replayed as it is. Inference targets are\n"
    "indices into the data directory's test split.\n"
    "A sweep (--deletion-rates, or 'sweep' in the workload) generates and\n"
    "replays the workload's trace once per deletion rate and checks the\n"
    "performance targets of docs/performance.md.";

std::string DefaultCacheDir() {
  if (const char* dir = std::getenv("ERASER_CACHE_DIR"); dir && *dir)
    return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/eraser";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.cache/eraser";
  }
  return ".eraser-cache";
}

// The cache entry of a model configuration: one directory per distinct
// configuration.
std::string CacheEntry(const std::string& cache_dir,
                       const unlearning::SisaOptions& options) {
  Fingerprinter f;
  for (const auto& [key, value] : options.ToConfig()) {
    f.Update(key);
    f.Update("=");
    f.Update(value);
    f.Update(";");
  }
  char name[32];
  std::snprintf(name, sizeof(name), "ensemble-%016" PRIx64, f.Finish());
  return cache_dir + "/" + name;
}

// "0.25,0.5,1" -> {0.25, 0.5, 1}.
StatusOr<std::vector<double>> ParseRateList(const std::string& text) {
  std::vector<double> rates;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    // "0.5, 1" as "0.5,1".
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    double rate = 0;
    if (!ParseDouble(item, &rate)) {
      return InvalidArgumentError("--deletion-rates: '" + item +
                                  "' is not a number");
    }
    rates.push_back(rate);
    start = end + 1;
  }
  RETURN_IF_ERROR(workloads::ValidateSweepRates(rates));
  return rates;
}

// Writes `text` to `path` and says so ("<what> written to <path>").
Status WriteOutput(const std::string& path, const std::string& text,
                   const char* what) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return InternalError("cannot write " + path);
  std::printf("%s written to %s\n", what, path.c_str());
  return OkStatus();
}

// What the run's header says beside the speed.
std::string RunFlags(const workloads::ReplayConfig& config) {
  std::string flags = config.oracle ? ", oracle on" : "";
  if (!config.unlearning.use_idle_cores) flags += ", idle cores off";
  return flags;
}

// The guarantees a replay checks, on stderr; kExitFailure if one broke, so
// that a script or CI running a replay fails with it.
int ReportViolations(const workloads::ReplayReport& report,
                     const std::string& where) {
  const std::vector<std::string> broken = report.GuaranteeViolations();
  for (const std::string& b : broken) {
    std::fprintf(stderr, "eraser replay: guarantee broken%s: %s\n",
                 where.c_str(), b.c_str());
  }
  return broken.empty() ? kExitOk : kExitFailure;
}

// 0.25 -> "0.25", 1 -> "1".
std::string FormatRate(double rate) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", rate);
  return text;
}

int RunSweepAndReport(const workloads::Workload& workload,
                      const workloads::ReplayConfig& config,
                      const std::string& data_dir, const std::string& json_file,
                      const std::string& dat_file) {
  std::printf(
      "Sweep: %zu deletion rates x %zu policies, %.0f s of trace "
      "each, speed %g%s\n",
      workload.sweep_deletion_rates.size(), config.policies.size(),
      std::chrono::duration<double>(workload.generator->duration).count(),
      config.speed, RunFlags(config).c_str());
  std::fflush(stdout);
  // Each level's table as soon as it is measured: a sweep takes long.
  StatusOr<workloads::SweepReport> sweep = workloads::RunSweep(
      *workload.generator, workload.sweep_deletion_rates, data_dir, config,
      [](const workloads::SweepLevel& level) {
        std::printf("%s", workloads::LevelTable(level).c_str());
        std::fflush(stdout);
      });
  if (!sweep.ok()) return ReportError("replay", sweep.status());
  sweep->workload_json = workload.json;
  std::printf("%s", sweep->TargetsTable().c_str());
  std::printf("%s", sweep->SustainedTable().c_str());
  if (!json_file.empty()) {
    Status s = WriteOutput(json_file, sweep->ToJson(), "Sweep report");
    if (!s.ok()) return ReportError("replay", s);
  }
  if (!dat_file.empty()) {
    Status s = WriteOutput(dat_file, sweep->ToDat(), "Plot data");
    if (!s.ok()) return ReportError("replay", s);
  }
  int rc = kExitOk;
  for (const workloads::SweepLevel& level : sweep->levels) {
    const std::string rate = FormatRate(level.deletion_rate);
    rc = std::max(rc, ReportViolations(level.report, " at " + rate + "/s"));
  }
  return rc;
}

}  // namespace

int RunReplay(int argc, char** argv) {
  std::string trace_file, workload_file, policies, data_dir, json_file;
  std::string rates_text, dat_file;
  DatasetFlags dataset_flags;
  std::string cache_dir = DefaultCacheDir();
  double speed = 0;
  bool no_oracle = false;
  bool log_retrainings = false;
  po::options_description options("Options");
  options.add_options()("trace", po::value(&trace_file),
                        "trace file (CSV) to replay")(
      "workload", po::value(&workload_file),
      "workload file (JSON): model, trace or generator, policies")(
      "policies", po::value(&policies),
      "policies to compare, separated by ';' or spaces (default: the "
      "workload's, else immediate;inference-first;eraser-lazy-wait;"
      "eraser-lazy-partial;eraser-shards-partial)")(
      "store", po::value(&data_dir),
      "trained store to start every policy from (copied, never modified; "
      "trained first if empty): a data directory, or a postgresql:// URL "
      "(each policy then runs on a database copied from it, which needs the "
      "CREATEDB privilege)")("data-dir", po::value(&data_dir),
                             "the same as --store")(
      "cache-dir", po::value(&cache_dir)->default_value(cache_dir),
      "where trained ensembles are cached when --store is not given")(
      "json", po::value(&json_file), "write the JSON report here")(
      "speed", po::value(&speed),
      "replay speed factor (2 = twice as fast; default 1 or the workload's)")(
      "no-oracle", po::bool_switch(&no_oracle),
      "skip the oracle check (faster for long traces)")(
      "log-retrainings", po::bool_switch(&log_retrainings),
      "print a line on stderr for each retraining started and applied, "
      "and where each policy's trace starts")(
      "deletion-rates", po::value(&rates_text),
      "sweep: deletion rates per second, comma-separated (needs a workload "
      "with a generator; overrides the workload's sweep)")(
      "dat", po::value(&dat_file),
      "sweep: write gnuplot columns per policy here");
  po::options_description data_options(
      "Dataset (when the ensemble must be trained; overrides the workload's)");
  AddDatasetOptions(data_options, &dataset_flags);
  options.add(data_options);
  po::variables_map vm;
  bool help = false;
  if (int rc = ParseCommandLine(argc, argv, kUsage, options, vm, &help);
      rc != kExitOk || help) {
    if (help) std::printf("%s", scheduler::PolicyHelp().c_str());
    return rc;
  }
  if (Status s = CheckStoreOptions(vm, /*required=*/false); !s.ok()) {
    return ReportError("replay", s);
  }
  for (const auto& [option, path] :
       {std::pair<const char*, const std::string*>{"json", &json_file},
        {"dat", &dat_file}}) {
    if (Status s = CheckOutputPath(option, *path); !s.ok()) {
      return ReportError("replay", s);
    }
  }
  if (trace_file.empty() == workload_file.empty()) {
    return ReportError("replay",
                       InvalidArgumentError("give exactly one of --trace and "
                                            "--workload"));
  }
  workloads::Workload workload;
  if (!workload_file.empty()) {
    StatusOr<workloads::Workload> w = workloads::LoadWorkload(workload_file);
    if (!w.ok()) return ReportError("replay", w.status());
    workload = std::move(w).value();
  } else {
    workload.trace_file = trace_file;
    for (const std::string& name : workloads::DefaultReplayPolicies()) {
      workload.replay.policies.push_back(*scheduler::ParsePolicy(name));
    }
    workload.json = nlohmann::json{{"trace", trace_file}}.dump();
  }

  if (!rates_text.empty()) {
    StatusOr<std::vector<double>> rates = ParseRateList(rates_text);
    if (!rates.ok()) return ReportError("replay", rates.status());
    workload.sweep_deletion_rates = std::move(rates).value();
  }
  const bool sweep = !workload.sweep_deletion_rates.empty();
  if (sweep && !workload.generator) {
    return ReportError("replay",
                       InvalidArgumentError("a sweep needs a workload with a "
                                            "generator, not a trace file"));
  }
  if (!sweep && !dat_file.empty()) {
    return ReportError("replay",
                       InvalidArgumentError("--dat is for sweeps only"));
  }
  if (!policies.empty()) {
    StatusOr<std::vector<scheduler::Policy>> parsed =
        scheduler::ParsePolicyList(policies);
    if (!parsed.ok()) return ReportError("replay", parsed.status());
    workload.replay.policies = std::move(parsed).value();
  }
  workloads::ReplayConfig config = workload.replay;
  if (speed != 0) config.speed = speed;
  if (no_oracle) config.oracle = false;
  if (log_retrainings) config.unlearning.log_retrainings = true;
  // The progress line would run into the retraining log's lines.
  config.progress = isatty(STDERR_FILENO) != 0 && !log_retrainings;
  if (Status s = config.Validate(); !s.ok()) return ReportError("replay", s);

  const unlearning::BlasInfo blas = unlearning::InitComputeRuntime();
  if (blas.kind == unlearning::BlasInfo::Kind::kReference) {
    std::fprintf(stderr,
                 "WARNING: LibTorch is using the slow reference BLAS; run "
                 "scripts/setup.\n");
  }
  if (AnyDatasetOption(vm)) {
    StatusOr<ParsedDataset> parsed =
        ParseDatasetFlags(dataset_flags, vm, workload.model.seed);
    if (!parsed.ok()) return ReportError("replay", parsed.status());
    workload.dataset = parsed->spec;
    workload.dataset_options = parsed->options;
  }
  // A trace file is read first: a missing or malformed one is reported
  // before minutes of training.
  std::optional<workloads::Trace> trace_read;
  if (workload.trace_file) {
    StatusOr<workloads::Trace> read =
        workloads::ReadTrace(*workload.trace_file);
    if (!read.ok()) return ReportError("replay", read.status());
    trace_read = std::move(read).value();
  }
  unlearning::SisaOptions model = workload.model;
  // A trace alone, or a workload naming no dataset or model, names no
  // ensemble: the one in --data-dir is used as it is.
  const bool names_none =
      !data_dir.empty() && !workload.names_ensemble && !AnyDatasetOption(vm);
  const Status existing = names_none
                              ? workloads::TrainedOptions(data_dir).status()
                              : NotFoundError("");
  // A directory that holds an ensemble it cannot open now (a server has
  // it) is reported as such, not trained over with the default dataset.
  if (names_none && !existing.ok() &&
      existing.code() != StatusCode::kNotFound) {
    return ReportError("replay", existing);
  }
  const bool use_existing = names_none && existing.ok();
  if (use_existing) {
    std::printf("Ensemble in %s: reused\n",
                storage::PrintableLocation(data_dir).c_str());
  } else {
    StatusOr<datasets::Dataset> data =
        datasets::LoadDataset(workload.dataset, workload.dataset_options);
    if (!data.ok()) return ReportError("replay", data.status());
    model = unlearning::ForDataset(model, *data);
    if (data_dir.empty()) data_dir = CacheEntry(cache_dir, model);
    std::printf("Ensemble %s (%u shards x %u slices) on %s in %s: ",
                model.model.ToString().c_str(), model.shards, model.slices,
                data->source.c_str(),
                storage::PrintableLocation(data_dir).c_str());
    std::fflush(stdout);
    StatusOr<workloads::DataDirResult> built =
        workloads::EnsureTrained(data_dir, model, *data);
    if (!built.ok()) return ReportError("replay", built.status());
    if (built->reused) {
      std::printf("reused\n");
    } else {
      std::printf("trained in %.1f s\n", built->report.total.wall_seconds);
    }
  }
  if (workload.generator) {
    StatusOr<unlearning::DatasetInfo> info =
        workloads::ReadDatasetInfo(data_dir);
    if (!info.ok()) return ReportError("replay", info.status());
    workloads::FitToDataset(*info, &*workload.generator);
  }

  if (sweep) {
    return RunSweepAndReport(workload, config, data_dir, json_file, dat_file);
  }
  StatusOr<workloads::Trace> trace =
      trace_read ? std::move(*trace_read)
                 : workloads::GenerateTrace(*workload.generator);
  if (!trace.ok()) return ReportError("replay", trace.status());
  std::printf(
      "Trace: %zu inference and %zu deletion requests over %.1f s; "
      "%zu policies at speed %g%s\n",
      trace->inferences(), trace->deletions(), trace->duration_ms() / 1000.0,
      config.policies.size(), config.speed, RunFlags(config).c_str());
  std::fflush(stdout);
  StatusOr<workloads::ReplayReport> report =
      workloads::RunReplay(*trace, data_dir, config);
  if (!report.ok()) return ReportError("replay", report.status());
  report->workload_json = workload.json;
  std::printf("\n%s", report->ToTable().c_str());
  if (!json_file.empty()) {
    Status s = WriteOutput(json_file, report->ToJson(), "Report");
    if (!s.ok()) return ReportError("replay", s);
  }
  return ReportViolations(*report, "");
}

}  // namespace eraser::cli
