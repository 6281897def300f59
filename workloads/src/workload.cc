#include "eraser/workloads/workload.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "eraser/common/duration.h"

namespace eraser::workloads {
namespace {

using nlohmann::json;

// Reads typed values from one JSON object, remembering the first error and
// refusing keys it was not asked about.
class Reader {
 public:
  Reader(const json& object, std::string where)
      : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) Fail("", "must be an object");
  }

  bool Has(const char* key) const {
    return object_.is_object() && object_.contains(key);
  }
  template <typename T>
  void Get(const char* key, T* out) {
    seen_.insert(key);
    if (!Has(key)) return;
    try {
      *out = object_.at(key).get<T>();
    } catch (const json::exception&) {
      Fail(key, "has the wrong type");
    }
  }
  void Duration(const char* key, eraser::Duration* out) {
    std::string text;
    Get(key, &text);
    if (text.empty()) return;
    StatusOr<eraser::Duration> d = ParseDuration(text);
    if (!d.ok()) {
      Fail(key, d.status().message());
    } else {
      *out = *d;
    }
  }
  const json* Object(const char* key) {
    seen_.insert(key);
    return Has(key) ? &object_.at(key) : nullptr;
  }
  void Fail(const std::string& key, const std::string& why) {
    if (!status_.ok()) return;
    const std::string name = key.empty() ? where_ : where_ + key;
    status_ = InvalidArgumentError("workload: '" + name + "' " + why);
  }
  Status Finish() {
    if (status_.ok() && object_.is_object()) {
      for (const auto& item : object_.items()) {
        if (seen_.count(item.key()) == 0)
          Fail(item.key(), "is not a known key");
      }
    }
    return status_;
  }

 private:
  const json& object_;
  std::string where_;
  std::set<std::string> seen_;
  Status status_;
};

Status ReadModel(const json& j, unlearning::SisaOptions* model) {
  Reader r(j, "model.");
  std::string arch = "mlp";
  r.Get("shards", &model->shards);
  r.Get("slices", &model->slices);
  r.Get("arch", &arch);
  r.Get("hidden", &model->model.hidden);
  r.Get("epochs", &model->epochs);
  r.Get("batch_size", &model->batch_size);
  r.Get("learning_rate", &model->learning_rate);
  r.Get("momentum", &model->momentum);
  r.Get("seed", &model->seed);
  r.Get("samples_per_owner", &model->samples_per_owner);
  r.Get("threads", &model->concurrency);
  RETURN_IF_ERROR(r.Finish());
  StatusOr<unlearning::Architecture> a = unlearning::ParseArchitecture(arch);
  if (!a.ok())
    return InvalidArgumentError("workload: model.arch: " +
                                a.status().message());
  model->model.arch = *a;
  return OkStatus();
}

Status ReadGenerator(const json& j, const std::filesystem::path& base,
                     GeneratorOptions* g) {
  Reader r(j, "generator.");
  std::string target = "sample";
  std::string distribution = "uniform";
  std::string arrivals;
  r.Duration("duration", &g->duration);
  r.Get("inference_rate", &g->inference_rate);
  r.Get("deletion_rate", &g->deletion_rate);
  r.Get("target", &target);
  r.Get("distribution", &distribution);
  r.Get("zipf_exponent", &g->zipf_exponent);
  r.Get("arrivals", &arrivals);
  RETURN_IF_ERROR(r.Finish());
  ASSIGN_OR_RETURN(g->deletion_target, ParseTarget(target));
  ASSIGN_OR_RETURN(g->distribution, ParseDistribution(distribution));
  if (!arrivals.empty()) g->arrivals_file = (base / arrivals).string();
  return OkStatus();
}

Status ReadReplay(const json& j, ReplayConfig* replay) {
  Reader r(j, "replay.");
  std::string context = "concurrent";
  r.Get("speed", &replay->speed);
  r.Get("oracle", &replay->oracle);
  r.Get("inference_threads", &replay->inference_threads);
  r.Get("unlearning_concurrency", &replay->unlearning_concurrency);
  r.Get("max_batch_size", &replay->max_batch_size);
  r.Duration("max_queue_delay", &replay->max_queue_delay);
  r.Get("queue_capacity", &replay->queue_capacity);
  r.Get("context", &context);
  RETURN_IF_ERROR(r.Finish());
  if (context == "concurrent") {
    replay->context = engine::ExecutionContext::kConcurrent;
  } else if (context == "exclusive") {
    replay->context = engine::ExecutionContext::kExclusive;
  } else {
    return InvalidArgumentError(
        "workload: 'replay.context' must be concurrent or exclusive");
  }
  return OkStatus();
}

Status ReadSweep(const json& j, std::vector<double>* rates) {
  Reader r(j, "sweep.");
  r.Get("deletion_rates", rates);
  RETURN_IF_ERROR(r.Finish());
  return ValidateSweepRates(*rates);
}

}  // namespace

Status ValidateSweepRates(const std::vector<double>& rates) {
  if (rates.empty()) {
    return InvalidArgumentError("a sweep needs at least one deletion rate");
  }
  for (double rate : rates) {
    if (!(rate > 0) || !std::isfinite(rate)) {
      return InvalidArgumentError(
          "sweep deletion rates must be positive numbers (per second)");
    }
  }
  return OkStatus();
}

const std::vector<std::string>& DefaultReplayPolicies() {
  static const auto* policies = new std::vector<std::string>{
      "immediate", "inference-first", "eraser-lazy-wait", "eraser-lazy-partial",
      "eraser-shards-partial"};
  return *policies;
}

StatusOr<Workload> LoadWorkload(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read workload " + path);
  std::stringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgumentError("workload " + path + " is not valid JSON");
  }
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  Workload w;
  w.json = j.dump();
  Reader r(j, "");
  r.Get("name", &w.name);
  r.Get("description", &w.description);
  r.Get("dataset", &w.dataset);
  r.Get("policies", &w.policies);
  r.Get("seed", &w.seed);
  std::string trace;
  r.Get("trace", &trace);
  const json* model = r.Object("model");
  const json* generator = r.Object("generator");
  const json* replay = r.Object("replay");
  const json* sweep = r.Object("sweep");
  RETURN_IF_ERROR(r.Finish());
  if (w.dataset != "fashion-mnist") {
    return InvalidArgumentError("workload: 'dataset' must be fashion-mnist");
  }
  if (model != nullptr) RETURN_IF_ERROR(ReadModel(*model, &w.model));
  if (trace.empty() == (generator == nullptr)) {
    return InvalidArgumentError(
        "workload: give exactly one of 'trace' (a file) and 'generator'");
  }
  if (!trace.empty()) w.trace_file = (base / trace).string();
  if (generator != nullptr) {
    GeneratorOptions g;
    g.seed = w.seed;
    RETURN_IF_ERROR(ReadGenerator(*generator, base, &g));
    g.owners =
        g.train_size / std::max<uint64_t>(1, w.model.samples_per_owner) +
        (g.train_size % std::max<uint64_t>(1, w.model.samples_per_owner) ? 1
                                                                         : 0);
    RETURN_IF_ERROR(g.Validate());
    w.generator = g;
  }
  if (replay != nullptr) RETURN_IF_ERROR(ReadReplay(*replay, &w.replay));
  if (sweep != nullptr) {
    if (generator == nullptr) {
      return InvalidArgumentError(
          "workload: 'sweep' needs a 'generator' (a trace file has one "
          "deletion rate)");
    }
    RETURN_IF_ERROR(ReadSweep(*sweep, &w.sweep_deletion_rates));
  }
  if (w.policies.empty()) w.policies = DefaultReplayPolicies();
  w.replay.policies = w.policies;
  RETURN_IF_ERROR(w.replay.Validate());
  return w;
}

}  // namespace eraser::workloads
