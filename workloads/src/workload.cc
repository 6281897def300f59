#include "eraser/workloads/workload.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <type_traits>
#include <vector>

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
    if (Has(key)) Convert(key, object_.at(key), out);
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
  template <typename T>
  struct IsVector : std::false_type {};
  template <typename T>
  struct IsVector<std::vector<T>> : std::true_type {};

  // Stores `v` in `out`, or fails naming `key`. Integers are checked
  // against T's range whatever way the number is written: nlohmann casts
  // without checking (-1 becomes 2^32 - 1, and a float outside T's range
  // is undefined behaviour).
  template <typename T>
  void Convert(const std::string& key, const json& v, T* out) {
    if constexpr (IsVector<T>::value) {
      if (!v.is_array()) {
        Fail(key, "has the wrong type");
        return;
      }
      T items(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!status_.ok()) return;
        Convert(key + "[" + std::to_string(i) + "]", v[i], &items[i]);
      }
      if (status_.ok()) *out = std::move(items);
    } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (!v.is_number()) {
        Fail(key, "has the wrong type");
        return;
      }
      if (!IntegerFits<T>(v)) {
        Fail(key, "is not a whole number in range");
        return;
      }
      *out = v.is_number_float()      ? static_cast<T>(v.get<double>())
             : v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>())
                                      : static_cast<T>(v.get<int64_t>());
    } else {
      try {
        *out = v.get<T>();
      } catch (const json::exception&) {
        Fail(key, "has the wrong type");
      }
    }
  }

  // Whether the JSON number `v` is a whole number T holds.
  template <typename T>
  static bool IntegerFits(const json& v) {
    using Limits = std::numeric_limits<T>;
    if (v.is_number_unsigned()) {
      return v.get<uint64_t>() <= static_cast<uint64_t>(Limits::max());
    }
    if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if (i < 0) return Limits::is_signed && i >= int64_t{Limits::min()};
      return static_cast<uint64_t>(i) <= static_cast<uint64_t>(Limits::max());
    }
    // Exactly the doubles in [min, 2^digits) convert; both bounds are
    // powers of two (or zero), so representable.
    const double d = v.get<double>();
    return d == std::trunc(d) && d >= static_cast<double>(Limits::min()) &&
           d < std::ldexp(1.0, Limits::digits);
  }

  const json& object_;
  std::string where_;
  std::set<std::string> seen_;
  Status status_;
};

// A path in the workload file, relative to its folder.
std::string Resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty() || std::filesystem::path(p).is_absolute()) return p;
  return (base / p).string();
}

Status ReadModel(const json& j, const std::filesystem::path& base,
                 unlearning::SisaOptions* model) {
  Reader r(j, "model.");
  std::string arch = "mlp";
  std::vector<uint32_t> hidden = model->model.hidden;
  if (j.is_object() && j.contains("hidden") && j["hidden"].is_number()) {
    uint32_t width = 0;
    r.Get("hidden", &width);
    hidden = {width};
  } else {
    r.Get("hidden", &hidden);
  }
  r.Get("shards", &model->shards);
  r.Get("slices", &model->slices);
  r.Get("arch", &arch);
  r.Get("epochs", &model->epochs);
  r.Get("batch_size", &model->batch_size);
  r.Get("learning_rate", &model->learning_rate);
  r.Get("momentum", &model->momentum);
  r.Get("seed", &model->seed);
  r.Get("samples_per_owner", &model->samples_per_owner);
  r.Get("threads", &model->concurrency);
  RETURN_IF_ERROR(r.Finish());
  constexpr std::string_view kScript = "torchscript:";
  if (arch.rfind(kScript, 0) == 0) {
    arch = std::string(kScript) + Resolve(base, arch.substr(kScript.size()));
  }
  StatusOr<unlearning::ModelSpec> spec =
      unlearning::ModelSpecFromFlags(arch, hidden);
  if (!spec.ok()) {
    return InvalidArgumentError("workload: model.arch: " +
                                spec.status().message());
  }
  model->model = std::move(spec).value();
  return OkStatus();
}

StatusOr<datasets::DatasetSpec> ReadDatasetSpec(
    const std::string& text, const std::filesystem::path& base,
    const char* key) {
  StatusOr<datasets::DatasetSpec> spec = datasets::ParseDatasetSpec(text);
  if (!spec.ok()) {
    return InvalidArgumentError(std::string("workload: '") + key +
                                "': " + spec.status().message());
  }
  spec->path = Resolve(base, spec->path);
  spec->features_path = Resolve(base, spec->features_path);
  spec->labels_path = Resolve(base, spec->labels_path);
  spec->owners_path = Resolve(base, spec->owners_path);
  return spec;
}

Status ReadDatasetOptions(const json& j, const std::filesystem::path& base,
                          datasets::LoadOptions* options) {
  Reader r(j, "dataset_options.");
  std::string delimiter, test_dataset;
  double fraction = 0;
  r.Get("label_column", &options->csv.label_column);
  r.Get("owner_column", &options->csv.owner_column);
  r.Get("ignore_columns", &options->csv.ignore_columns);
  r.Get("categorical_columns", &options->csv.categorical_columns);
  r.Get("delimiter", &delimiter);
  r.Get("test_dataset", &test_dataset);
  r.Get("test_fraction", &fraction);
  RETURN_IF_ERROR(r.Finish());
  if (!delimiter.empty()) {
    StatusOr<char> d = datasets::ParseDelimiter(delimiter);
    if (!d.ok()) {
      return InvalidArgumentError("workload: 'dataset_options.delimiter': " +
                                  d.status().message());
    }
    options->csv.delimiter = *d;
  }
  if (!test_dataset.empty()) {
    ASSIGN_OR_RETURN(
        options->test,
        ReadDatasetSpec(test_dataset, base, "dataset_options.test_dataset"));
  }
  if (j.contains("test_fraction")) options->test_fraction = fraction;
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
  std::string context =
      engine::ExecutionContextName(replay->unlearning.context);
  r.Get("speed", &replay->speed);
  r.Get("oracle", &replay->oracle);
  r.Get("inference_threads", &replay->inference.threads);
  r.Get("unlearning_concurrency", &replay->unlearning.concurrency);
  r.Get("max_batch_size", &replay->inference.max_batch_size);
  r.Duration("max_queue_delay", &replay->inference.max_queue_delay);
  r.Get("queue_capacity", &replay->inference.queue_capacity);
  r.Get("borrow_inference_core", &replay->unlearning.borrow_inference_core);
  r.Get("use_idle_cores", &replay->unlearning.use_idle_cores);
  r.Get("borrowed_inference_share",
        &replay->unlearning.borrowed_inference_share);
  r.Get("context", &context);
  RETURN_IF_ERROR(r.Finish());
  StatusOr<engine::ExecutionContext> parsed =
      engine::ParseExecutionContext(context);
  if (!parsed.ok()) {
    return InvalidArgumentError("workload: 'replay.context': " +
                                parsed.status().message());
  }
  replay->unlearning.context = *parsed;
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
  return ParseWorkload(text.str(), path);
}

StatusOr<Workload> ParseWorkload(std::string_view text,
                                 const std::string& path) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgumentError("workload " + path + " is not valid JSON");
  }
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  Workload w;
  w.json = j.dump();
  Reader r(j, "");
  std::string dataset = "fashion-mnist";
  r.Get("name", &w.name);
  r.Get("description", &w.description);
  r.Get("dataset", &dataset);
  const json* dataset_options = r.Object("dataset_options");
  std::vector<std::string> policies;
  r.Get("policies", &policies);
  r.Get("seed", &w.seed);
  std::string trace;
  r.Get("trace", &trace);
  const json* model = r.Object("model");
  const json* generator = r.Object("generator");
  const json* replay = r.Object("replay");
  const json* sweep = r.Object("sweep");
  RETURN_IF_ERROR(r.Finish());
  w.names_ensemble =
      r.Has("dataset") || r.Has("dataset_options") || r.Has("model");
  ASSIGN_OR_RETURN(w.dataset, ReadDatasetSpec(dataset, base, "dataset"));
  if (dataset_options != nullptr) {
    RETURN_IF_ERROR(
        ReadDatasetOptions(*dataset_options, base, &w.dataset_options));
  }
  if (model != nullptr) RETURN_IF_ERROR(ReadModel(*model, base, &w.model));
  w.dataset_options.seed = w.model.seed;
  if (trace.empty() == (generator == nullptr)) {
    return InvalidArgumentError(
        "workload: give exactly one of 'trace' (a file) and 'generator'");
  }
  if (!trace.empty()) w.trace_file = (base / trace).string();
  if (generator != nullptr) {
    GeneratorOptions g;
    g.seed = w.seed;
    RETURN_IF_ERROR(ReadGenerator(*generator, base, &g));
    // Sizes and owner ids come from the data directory (FitToDataset).
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
  if (policies.empty()) policies = DefaultReplayPolicies();
  for (const std::string& text : policies) {
    StatusOr<scheduler::Policy> policy = scheduler::ParsePolicy(text);
    if (!policy.ok()) {
      return InvalidArgumentError("workload: 'policies': " +
                                  policy.status().message());
    }
    w.replay.policies.push_back(*policy);
  }
  RETURN_IF_ERROR(w.replay.Validate());
  return w;
}

}  // namespace eraser::workloads
