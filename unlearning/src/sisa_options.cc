// SisaOptions: validation and the stored configuration.
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "eraser/common/numbers.h"
#include "eraser/unlearning/sisa.h"

namespace eraser::unlearning {
namespace {

std::string JoinEpochs(const std::vector<uint32_t>& epochs) {
  std::string out;
  for (uint32_t e : epochs) {
    if (!out.empty()) out += ",";
    out += std::to_string(e);
  }
  return out;
}

// Parsers for stored values; any failure marks the configuration corrupt.
class ConfigReader {
 public:
  explicit ConfigReader(const storage::StoreConfig& config) : config_(config) {}

  const std::string& Text(const char* key) {
    static const std::string kEmpty;
    auto it = config_.find(key);
    if (it == config_.end()) {
      Fail(key);
      return kEmpty;
    }
    return it->second;
  }
  uint64_t U64(const char* key, int base = 10) {
    const std::string& text = Text(key);
    char* end = nullptr;
    errno = 0;
    const uint64_t v = std::strtoull(text.c_str(), &end, base);
    if (text.empty() || *end != '\0' || errno != 0) Fail(key);
    return v;
  }
  uint32_t U32(const char* key) {
    const uint64_t v = U64(key);
    if (v > UINT32_MAX) Fail(key);
    return static_cast<uint32_t>(v);
  }
  double Double(const char* key) {
    std::string text = Text(key);
    // Written with %.17g, which a host program's German locale made
    // "0,05..." before eraser wrote numbers in the C locale: read them too.
    if (text.find(',') == text.rfind(',') && text.find('.') == text.npos) {
      std::replace(text.begin(), text.end(), ',', '.');
    }
    double v = 0;
    if (!ParseDouble(text, &v)) Fail(key);
    return v;
  }
  std::vector<uint32_t> U32List(const char* key) {
    std::vector<uint32_t> out;
    std::stringstream in(Text(key));
    std::string item;
    while (std::getline(in, item, ',')) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || v > UINT32_MAX) Fail(key);
      out.push_back(static_cast<uint32_t>(v));
    }
    return out;
  }
  void Fail(const char* key) {
    if (bad_key_.empty()) bad_key_ = key;
  }
  const std::string& bad_key() const { return bad_key_; }

 private:
  const storage::StoreConfig& config_;
  std::string bad_key_;
};

// "torchscript-<16 hex digits>-<shape>-<E>", as BackboneSpec::ToString
// writes it: the fingerprint, input shape and embedding size.
bool ParseBackbone(const std::string& text, BackboneSpec* spec) {
  constexpr char kPrefix[] = "torchscript-";
  const std::size_t prefix = sizeof(kPrefix) - 1;
  const std::size_t last = text.rfind('-');
  if (text.compare(0, prefix, kPrefix) != 0 || text.size() < prefix + 18 ||
      text[prefix + 16] != '-' || last <= prefix + 16) {
    return false;
  }
  char* end = nullptr;
  const std::string hex = text.substr(prefix, 16);
  spec->fingerprint = std::strtoull(hex.c_str(), &end, 16);
  if (*end != '\0' || spec->fingerprint == 0) return false;
  StatusOr<std::vector<uint32_t>> shape =
      datasets::ParseShape(text.substr(prefix + 17, last - prefix - 17));
  const std::string e = text.substr(last + 1);
  const unsigned long size = std::strtoul(e.c_str(), &end, 10);
  if (!shape.ok() || e.empty() || *end != '\0' || size == 0 ||
      size > UINT32_MAX) {
    return false;
  }
  spec->input_shape = *shape;
  spec->embedding_size = static_cast<uint32_t>(size);
  spec->script_name = "the data directory's backbone";
  return true;
}

}  // namespace

std::vector<uint32_t> DefaultEpochs(uint32_t slices) {
  std::vector<uint32_t> epochs(slices, 4);
  if (!epochs.empty()) epochs.back() = 8;
  return epochs;
}

std::vector<uint32_t> SisaOptions::EpochSchedule() const {
  return epochs.empty() ? DefaultEpochs(slices) : epochs;
}

Status SisaOptions::Validate() const {
  if (shards == 0 || shards > 4096) {
    return InvalidArgumentError("shards must be in 1..4096");
  }
  if (slices == 0 || slices > 256) {
    return InvalidArgumentError("slices must be in 1..256");
  }
  RETURN_IF_ERROR(model.Validate());
  if (!epochs.empty() && epochs.size() != slices) {
    return InvalidArgumentError(
        "epochs lists " + std::to_string(epochs.size()) +
        " stages but there are " + std::to_string(slices) + " slices");
  }
  for (uint32_t e : epochs) {
    if (e == 0 || e > 1000) {
      return InvalidArgumentError("each stage's epochs must be in 1..1000");
    }
  }
  if (batch_size == 0 || batch_size > 65536) {
    return InvalidArgumentError("batch_size must be in 1..65536");
  }
  if (!(learning_rate > 0 && learning_rate < 10)) {
    return InvalidArgumentError("learning_rate must be in (0, 10)");
  }
  if (!(momentum >= 0 && momentum < 1)) {
    return InvalidArgumentError("momentum must be in [0, 1)");
  }
  if (concurrency < 1 || concurrency > 256) {
    return InvalidArgumentError("concurrency must be in 1..256");
  }
  if (backbone.fingerprint != 0) {
    if (backbone.embedding_size == 0 || backbone.input_shape.empty()) {
      return InvalidArgumentError(
          "the backbone has no embedding size (check it with CheckBackbone)");
    }
    if (model.input_shape != std::vector<uint32_t>{backbone.embedding_size} ||
        feature_type != datasets::FeatureType::kFloat32) {
      return InvalidArgumentError(
          "with a backbone the model takes float32 embeddings of " +
          std::to_string(backbone.embedding_size));
    }
  }
  return OkStatus();
}

// The configuration format: 2 since datasets other than Fashion-MNIST and
// models other than the built-in ones (input shape, feature type, hidden
// list, TorchScript fingerprint).
constexpr char kConfigFormat[] = "2";

storage::StoreConfig SisaOptions::ToConfig() const {
  char fingerprint[17];
  std::snprintf(fingerprint, sizeof(fingerprint), "%016" PRIx64,
                dataset_fingerprint);
  char script[17] = "";
  if (model.arch == Architecture::kTorchScript) {
    std::snprintf(script, sizeof(script), "%016" PRIx64,
                  model.script_fingerprint);
  }
  storage::StoreConfig config = {
      {"format", kConfigFormat},
      {"shards", std::to_string(shards)},
      {"slices", std::to_string(slices)},
      {"samples_per_owner", std::to_string(samples_per_owner)},
      {"model", ArchitectureName(model.arch)},
      {"model_input_shape", datasets::ShapeString(model.input_shape)},
      {"model_classes", std::to_string(model.classes)},
      {"model_hidden", JoinEpochs(model.hidden)},
      {"model_script", script},
      {"feature_type", datasets::FeatureTypeName(feature_type)},
      {"epochs", JoinEpochs(EpochSchedule())},
      {"batch_size", std::to_string(batch_size)},
      {"learning_rate", FormatDouble(learning_rate, 17)},
      {"momentum", FormatDouble(momentum, 17)},
      {"seed", std::to_string(seed)},
      {"dataset_fingerprint", fingerprint},
  };
  // Only with a backbone: directories built without one keep their
  // configuration.
  if (backbone.fingerprint != 0) config["backbone"] = backbone.ToString();
  if (description_fingerprint != 0) {
    char description[17];
    std::snprintf(description, sizeof(description), "%016" PRIx64,
                  description_fingerprint);
    config["dataset_description"] = description;
  }
  return config;
}

StatusOr<SisaOptions> SisaOptions::FromConfig(
    const storage::StoreConfig& config) {
  auto format = config.find("format");
  if (format == config.end() || format->second != kConfigFormat) {
    return FailedPreconditionError(
        "the data directory was built by an older eraser (configuration "
        "format " +
        (format == config.end() ? std::string("1") : format->second) +
        ", this one reads " + kConfigFormat +
        "); rebuild it with 'eraser train --rebuild'");
  }
  ConfigReader r(config);
  SisaOptions o;
  o.shards = r.U32("shards");
  o.slices = r.U32("slices");
  o.samples_per_owner = r.U32("samples_per_owner");
  StatusOr<Architecture> arch = ParseArchitecture(r.Text("model"));
  if (!arch.ok()) r.Fail("model");
  o.model.arch = arch.ok() ? *arch : Architecture::kMlp;
  StatusOr<std::vector<uint32_t>> shape =
      datasets::ParseShape(r.Text("model_input_shape"));
  if (!shape.ok()) r.Fail("model_input_shape");
  if (shape.ok()) o.model.input_shape = *shape;
  o.model.classes = r.U32("model_classes");
  o.model.hidden = r.Text("model_hidden").empty() ? std::vector<uint32_t>{}
                                                  : r.U32List("model_hidden");
  if (o.model.arch == Architecture::kTorchScript) {
    o.model.script_fingerprint = r.U64("model_script", 16);
    o.model.script_name = "the data directory's TorchScript module";
  }
  StatusOr<datasets::FeatureType> type =
      datasets::ParseFeatureType(r.Text("feature_type"));
  if (!type.ok()) r.Fail("feature_type");
  if (type.ok()) o.feature_type = *type;
  o.epochs = r.U32List("epochs");
  o.batch_size = r.U32("batch_size");
  o.learning_rate = r.Double("learning_rate");
  o.momentum = r.Double("momentum");
  o.seed = r.U64("seed");
  o.dataset_fingerprint = r.U64("dataset_fingerprint", 16);
  if (config.count("dataset_description") > 0) {
    o.description_fingerprint = r.U64("dataset_description", 16);
  }
  if (config.count("backbone") > 0 &&
      !ParseBackbone(r.Text("backbone"), &o.backbone)) {
    r.Fail("backbone");
  }
  if (!r.bad_key().empty()) {
    return DataLossError("stored configuration has a bad '" + r.bad_key() +
                         "'");
  }
  // The module's bytes are stored apart (Sisa::Open reads them); validate
  // everything else.
  SisaOptions check = o;
  if (check.model.arch == Architecture::kTorchScript) {
    check.model.script = std::make_shared<const std::string>("-");
  }
  if (Status s = check.Validate(); !s.ok()) {
    return DataLossError("stored configuration is invalid: " + s.message());
  }
  return o;
}

}  // namespace eraser::unlearning
