// Running a trace against each policy, in real time, from the same state.
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "eraser/scheduler/policy.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/evaluate.h"
#include "eraser/workloads/data_dir.h"
#include "replay_internal.h"

namespace eraser::workloads {
namespace internal {
namespace {

using Steady = std::chrono::steady_clock;

double Since(Steady::time_point t0) {
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

// A scratch directory removed with its contents on destruction.
class ScratchDir {
 public:
  static StatusOr<ScratchDir> Create(const std::string& parent) {
    std::string base = parent;
    if (base.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    }
    std::error_code ec;
    std::filesystem::create_directories(base, ec);
    std::string pattern = base + "/eraser-replay-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return InternalError("cannot create a scratch directory in " + base);
    }
    return ScratchDir(pattern);
  }
  ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) {
    other.path_.clear();
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Prints "[2/5 eraser-lazy-wait] 12.3 s of 40.0 s" over itself.
class Progress {
 public:
  Progress(bool enabled, std::string label, double total_s)
      : enabled_(enabled), label_(std::move(label)), total_s_(total_s) {
    if (enabled_) thread_ = std::thread([this] { Run(); });
  }
  ~Progress() {
    if (!enabled_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    std::fprintf(stderr, "\r%*s\r", 79, "");
  }

 private:
  void Run() {
    const Steady::time_point start = Steady::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(500),
                         [this] { return stop_; })) {
      const double elapsed = Since(start);
      std::fprintf(stderr, "\r%s %6.1f s elapsed, %6.1f s of trace left ",
                   label_.c_str(), elapsed, std::max(0.0, total_s_ - elapsed));
      std::fflush(stderr);
    }
  }
  const bool enabled_;
  const std::string label_;
  const double total_s_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// One run's inputs, shared by its phases.
struct RunContext {
  const scheduler::Policy& policy;
  std::string label;  // "[2/5 eraser-lazy-wait]"
  const Trace& trace;
  const std::vector<float>& test_inputs;
  const datasets::Split& test;
  const ReplayConfig& config;
  const Locations& locations;
};

struct Deletion {
  double scheduled_s;
  storage::DeletionTarget target;
};

// The trace as this run's requests and deletions, at replay times.
std::vector<Deletion> Schedule(const RunContext& c, PolicyRun* run) {
  std::vector<Deletion> deletions;
  for (const TraceEvent& e : c.trace.events) {
    const double t = e.time_ms / 1000.0 / c.config.speed;
    if (e.op == TraceEvent::Op::kInfer) {
      Outcome o;
      o.test_index = e.test_index;
      o.scheduled_s = t;
      run->outcomes.push_back(o);
    } else {
      deletions.push_back({t, e.deletion});
    }
  }
  return deletions;
}

// Open loop: each request goes out at its scheduled time whatever the
// engine is doing; deletions have their own issuer because acknowledging
// one takes a synced write. Returns once every request is answered.
Status Issue(const RunContext& c, engine::Engine& engine,
             const std::vector<Deletion>& deletions, PolicyRun* run) {
  const std::size_t dim = c.test.feature_count();
  std::mutex mu;
  std::condition_variable answered_cv;
  std::size_t remaining = run->outcomes.size();
  // A short head start so the first requests are not already late.
  const Steady::time_point t0 = Steady::now() + std::chrono::milliseconds(100);
  auto at = [t0](double s) {
    return t0 + std::chrono::duration_cast<Steady::duration>(
                    std::chrono::duration<double>(s));
  };
  auto finish = [&](Outcome& o) {
    o.done_s = Since(t0);
    std::lock_guard<std::mutex> lock(mu);
    if (--remaining == 0) answered_cv.notify_all();
  };
  if (c.config.unlearning.log_retrainings) {
    std::fprintf(stderr,
                 "%s the trace starts at %.3f s of the engine's log "
                 "(which counts from its start)\n",
                 c.label.c_str(),
                 std::chrono::duration<double>(t0 - run->opened).count());
  }
  Progress progress(c.config.progress, c.label,
                    c.trace.duration_ms() / 1000.0 / c.config.speed);
  // The issuers wake at each scheduled time as closely as the kernel
  // allows: the default timer slack (50 us) adds to every late wake-up.
  std::thread inference_issuer([&] {
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    const Duration send_delay = c.config.testing_send_delay;
    for (Outcome& o : run->outcomes) {
      std::this_thread::sleep_until(at(o.scheduled_s) + send_delay);
      o.sent_s = Since(t0);
      const auto first = c.test_inputs.begin() +
                         static_cast<std::ptrdiff_t>(o.test_index * dim);
      Outcome* slot = &o;
      const Status admitted = engine.InferAsync(
          std::vector<float>(first, first + static_cast<std::ptrdiff_t>(dim)),
          [slot, &finish](StatusOr<engine::Prediction> p) {
            if (p.ok()) slot->prediction = std::move(p).value();
            finish(*slot);
          });
      if (!admitted.ok()) {
        o.refused = true;
        finish(o);
      }
    }
  });
  std::thread deletion_issuer([&] {
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    for (const Deletion& d : deletions) {
      std::this_thread::sleep_until(at(d.scheduled_s));
      StatusOr<DeletionSeq> seq = engine.RequestDeletion(d.target);
      if (seq.ok()) {
        // Our own record of the acknowledgement, on the engine's clock.
        run->acked.push_back(SystemClock::Default()->Now());
        run->seqs.push_back(*seq);
        run->targets.push_back(d.target);
      } else {
        ++run->report.failed_deletions;
      }
    }
  });
  inference_issuer.join();
  deletion_issuer.join();
  std::unique_lock<std::mutex> lock(mu);
  const double limit_s = c.trace.duration_ms() / 1000.0 + 1800;
  if (!answered_cv.wait_until(lock, at(limit_s),
                              [&] { return remaining == 0; })) {
    return InternalError("policy " + c.policy.name +
                         ": requests still unanswered 30 minutes after the "
                         "trace ended");
  }
  return OkStatus();
}

// After the drain: the engine's answers on `count` test images spread over
// the test split, for the final-state check.
Status ProbeFinalState(const RunContext& c, engine::Engine& engine,
                       std::size_t count, PolicyRun* run) {
  // Not the rows erased by deletions of their owners.
  std::vector<uint64_t> live;
  for (uint64_t i = 0; i < c.test.size(); ++i) {
    if (!c.test.erased(i)) live.push_back(i);
  }
  const std::size_t n = std::min(count, live.size());
  const std::size_t dim = c.test.feature_count();
  std::vector<std::pair<uint64_t, std::future<StatusOr<engine::Prediction>>>>
      pending;
  for (std::size_t i = 0; i < n; ++i) {
    const uint64_t index = live[i * live.size() / n];
    const auto first =
        c.test_inputs.begin() + static_cast<std::ptrdiff_t>(index * dim);
    pending.emplace_back(index,
                         engine.Infer(std::vector<float>(
                             first, first + static_cast<std::ptrdiff_t>(dim))));
  }
  for (auto& [index, future] : pending) {
    StatusOr<engine::Prediction> p = future.get();
    if (!p.ok()) return p.status();
    run->final_answers.emplace_back(index, std::move(p).value());
  }
  return OkStatus();
}

// What unlearning cost and how long deletions took: the state when the
// last answer arrived, then a drain so that every policy ends alike.
Status CollectUnlearning(const RunContext& c, engine::Engine& engine,
                         PolicyRun* run) {
  PolicyReport& r = run->report;
  engine::EngineStats stats = engine.Stats();
  r.pending_at_end = stats.pending_deletions;
  r.sample_epochs_during_trace = stats.unlearning_cost.sample_epochs;
  r.retrain_seconds_during_trace = stats.unlearning_cost.wall_seconds;
  const double trace_seconds = c.trace.duration_ms() / 1000.0 / c.config.speed;
  r.retrain_busy_fraction =
      trace_seconds > 0 ? stats.unlearning_cost.wall_seconds /
                              (trace_seconds * c.config.unlearning.concurrency)
                        : 0;
  RETURN_IF_ERROR(engine.Drain());
  stats = engine.Stats();
  r.deletions = run->seqs.size();
  r.shard_retrains = stats.retrains;
  r.sample_epochs = stats.unlearning_cost.sample_epochs;
  r.cpu_seconds = stats.unlearning_cost.cpu_seconds;
  std::vector<double> delays;
  std::set<DeletionSeq> seen;
  for (std::size_t i = 0; i < run->seqs.size(); ++i) {
    ASSIGN_OR_RETURN(engine::DeletionInfo info,
                     engine.GetDeletion(run->seqs[i]));
    run->infos.push_back(info);
    // A repeat waited from its own acknowledgement, not the first's.
    const bool repeat = !seen.insert(run->seqs[i]).second;
    r.repeated_deletions += repeat;
    const TimePoint from =
        repeat ? std::max(info.arrival, run->acked[i]) : info.arrival;
    if (info.applied) {
      delays.push_back(std::max(
          0.0, std::chrono::duration<double, std::milli>(*info.applied - from)
                   .count()));
    }
  }
  r.delay_ms = Summarize(delays);
  if (c.policy.has_deadline()) {
    r.deadline_ms =
        std::chrono::duration<double, std::milli>(c.policy.deadline).count();
    r.deadline_misses = static_cast<uint64_t>(
        std::count_if(delays.begin(), delays.end(),
                      [&](double d) { return d > r.deadline_ms; }));
  }
  r.exposures_flagged = std::count_if(
      run->outcomes.begin(), run->outcomes.end(),
      [](const Outcome& o) { return o.prediction && o.prediction->exposed; });
  CountExposures(c.locations, run);
  if (c.config.oracle && c.config.final_state_checks > 0) {
    RETURN_IF_ERROR(
        ProbeFinalState(c, engine, c.config.final_state_checks, run));
  }
  return OkStatus();
}

// Latency percentiles, accuracy and decisions of the answers.
void SummarizeInference(const RunContext& c, PolicyRun* run) {
  PolicyReport& r = run->report;
  std::vector<double> latencies;
  std::vector<double> engine_latencies;
  std::vector<double> lags;
  uint64_t correct = 0;
  uint64_t answered = 0;
  double last_done = 0;
  for (const Outcome& o : run->outcomes) {
    last_done = std::max(last_done, o.done_s);
    lags.push_back((o.sent_s - o.scheduled_s) * 1000.0);
    if (o.refused) {
      // Not admitted: no answer, so no latency.
      ++r.refused;
      continue;
    }
    latencies.push_back((o.done_s - o.scheduled_s) * 1000.0);
    engine_latencies.push_back((o.done_s - o.sent_s) * 1000.0);
    if (!o.prediction) {
      // Admitted, then failed (the engine closing): counted as rejected.
      ++r.decisions[static_cast<int>(certify::Decision::kRejected) - 1];
      continue;
    }
    const certify::Decision d = o.prediction->decision;
    ++r.decisions[static_cast<int>(d) - 1];
    const std::size_t a = o.prediction->affected.size();
    if (r.decided_by_affected.size() <= a) {
      r.decided_by_affected.resize(a + 1, 0);
    }
    ++r.decided_by_affected[a];
    if (d == certify::Decision::kRejected) continue;
    ++answered;
    correct += static_cast<uint32_t>(o.prediction->label) ==
               c.test.labels[o.test_index];
  }
  r.requests = run->outcomes.size();
  r.latency_ms = Summarize(latencies);
  r.engine_latency_ms = Summarize(engine_latencies);
  r.issue_lag_ms = Summarize(lags);
  r.accuracy = answered > 0 ? static_cast<double>(correct) / answered : 0;
  r.throughput_rps =
      last_done > 0 ? static_cast<double>(r.requests) / last_done : 0;
}

StatusOr<PolicyRun> RunPolicy(const RunContext& c,
                              const std::string& data_dir) {
  engine::EngineOptions options;
  options.data_dir = data_dir;
  options.policy = c.policy;
  options.inference = c.config.inference;
  options.unlearning = c.config.unlearning;
  options.testing = c.config.testing;
  ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> engine,
                   engine::Engine::Open(options));
  PolicyRun run;
  run.opened = Steady::now();
  run.report.name = c.policy.name;
  run.report.policy = engine->policy();
  run.report.spec = c.policy;
  const std::vector<Deletion> deletions = Schedule(c, &run);
  RETURN_IF_ERROR(Issue(c, *engine, deletions, &run));
  RETURN_IF_ERROR(CollectUnlearning(c, *engine, &run));
  engine->Close();
  engine.reset();
  SummarizeInference(c, &run);
  return run;
}

StatusOr<ModelInfo> DescribeModel(const std::string& template_dir,
                                  const datasets::Split& test) {
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store,
                   storage::Store::Open({template_dir, false}));
  ASSIGN_OR_RETURN(std::unique_ptr<unlearning::Sisa> sisa,
                   unlearning::Sisa::Open(store.get(), 1));
  ASSIGN_OR_RETURN(std::vector<unlearning::ShardModel> models,
                   sisa->LoadModels());
  // Not on the rows erased by deletions of their owners.
  ASSIGN_OR_RETURN(unlearning::EnsembleEvaluation eval,
                   unlearning::EvaluateOnSplit(models, test.WithoutErased()));
  ModelInfo info;
  info.shards = sisa->options().shards;
  info.slices = sisa->options().slices;
  info.arch = sisa->options().model.ToString();
  info.test_accuracy = eval.hard_vote_accuracy;
  return info;
}

}  // namespace

Summary Summarize(std::vector<double> values) {
  Summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  // Nearest-rank percentiles.
  auto rank = [&values](double p) {
    const auto i = static_cast<std::size_t>(
        std::ceil(p * static_cast<double>(values.size())));
    return values[std::min(values.size(), std::max<std::size_t>(i, 1)) - 1];
  };
  s.mean = sum / static_cast<double>(values.size());
  s.p50 = rank(0.50);
  s.p95 = rank(0.95);
  s.p99 = rank(0.99);
  s.max = values.back();
  return s;
}

}  // namespace internal

engine::InferenceOptions ReplayConfig::ReplayInferenceOptions() {
  engine::InferenceOptions o;
  o.queue_capacity = 100'000;
  return o;
}

Status ReplayConfig::Validate() const {
  if (policies.empty()) return InvalidArgumentError("no policy to replay");
  if (!(speed > 0 && speed <= 1000)) {
    return InvalidArgumentError("speed must be in (0, 1000]");
  }
  if (testing_send_delay < Duration::zero()) {
    return InvalidArgumentError("testing_send_delay must not be negative");
  }
  engine::EngineOptions probe;
  probe.data_dir = "-";
  probe.inference = inference;
  probe.unlearning = unlearning;
  for (const scheduler::Policy& policy : policies) {
    probe.policy = policy;
    RETURN_IF_ERROR(probe.Validate());
  }
  return OkStatus();
}

StatusOr<ReplayReport> RunReplay(const Trace& trace,
                                 const std::string& template_dir,
                                 const ReplayConfig& config) {
  RETURN_IF_ERROR(config.Validate());
  ASSIGN_OR_RETURN(unlearning::DatasetInfo dataset,
                   ReadDatasetInfo(template_dir));
  const datasets::Split& test = dataset.test;
  RETURN_IF_ERROR(test.CheckRowsLeft());
  RETURN_IF_ERROR(ValidateTrace(trace, test));
  const std::vector<float> test_inputs = test.DecodeRows(0, test.size());
  ReplayReport report;
  report.oracle = config.oracle;
  ASSIGN_OR_RETURN(report.model, internal::DescribeModel(template_dir, test));
  report.model.dataset = dataset.source;
  ASSIGN_OR_RETURN(internal::Locations locations,
                   internal::LocateDeletions(template_dir, test, trace));
  ASSIGN_OR_RETURN(internal::ScratchDir scratch,
                   internal::ScratchDir::Create(config.work_dir));
  std::vector<internal::PolicyRun> runs;
  for (std::size_t i = 0; i < config.policies.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    const internal::RunContext context{
        config.policies[i],
        "[" + std::to_string(i + 1) + "/" +
            std::to_string(config.policies.size()) + " " +
            config.policies[i].name + "]",
        trace,
        test_inputs,
        test,
        config,
        locations};
    StatusOr<internal::PolicyRun> run = [&]() -> StatusOr<internal::PolicyRun> {
      ASSIGN_OR_RETURN(ScratchStore copy,
                       ScratchStore::Copy(template_dir, scratch.path(),
                                          "policy-" + std::to_string(i)));
      return internal::RunPolicy(context, copy.location());
    }();
    if (!run.ok()) return run.status();
    run->report.wall_seconds = internal::Since(start);
    runs.push_back(std::move(run).value());
  }
  if (config.oracle) {
    RETURN_IF_ERROR(internal::CheckAgainstOracle(
        template_dir, scratch.path(), test_inputs, test, config, runs));
  }
  for (internal::PolicyRun& run : runs) {
    if (run.report.name == "immediate") report.baseline = "immediate";
    report.policies.push_back(std::move(run.report));
  }
  if (report.baseline.empty()) report.baseline = report.policies.front().name;
  return report;
}

}  // namespace eraser::workloads
