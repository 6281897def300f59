#include "eraser/unlearning/model.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eraser/common/hash.h"
#include "network.h"

namespace eraser::unlearning {
namespace {

std::string JoinWidths(const std::vector<uint32_t>& widths, char sep) {
  std::string out;
  for (uint32_t w : widths) {
    if (!out.empty()) out += sep;
    out += std::to_string(w);
  }
  return out;
}

}  // namespace

const char* ArchitectureName(Architecture arch) {
  switch (arch) {
    case Architecture::kLinear:
      return "linear";
    case Architecture::kMlp:
      return "mlp";
    case Architecture::kCnn:
      return "cnn";
    case Architecture::kTorchScript:
      return "torchscript";
  }
  return "?";
}

bool TrainsInParallel(const ModelSpec& spec) {
  return spec.arch != Architecture::kTorchScript ||
         internal::ScriptTrainsInParallel(spec);
}

StatusOr<Architecture> ParseArchitecture(const std::string& name) {
  for (Architecture a : {Architecture::kLinear, Architecture::kMlp,
                         Architecture::kCnn, Architecture::kTorchScript}) {
    if (name == ArchitectureName(a)) return a;
  }
  return InvalidArgumentError("unknown model '" + name +
                              "': expected linear, mlp, cnn or "
                              "torchscript:PATH");
}

std::size_t ModelSpec::input_size() const {
  std::size_t n = input_shape.empty() ? 0 : 1;
  for (uint32_t d : input_shape) n *= d;
  return n;
}

Status ModelSpec::Validate() const {
  if (input_shape.empty() || input_shape.size() > 8) {
    return InvalidArgumentError(
        "model: the input shape needs 1 to 8 "
        "dimensions");
  }
  for (uint32_t d : input_shape) {
    if (d == 0 || d > (1u << 24)) {
      return InvalidArgumentError(
          "model: input dimensions must be in "
          "1..16777216");
    }
  }
  if (input_size() > (1u << 24)) {
    return InvalidArgumentError("model: more than 2^24 inputs");
  }
  if (classes < 2 || classes > 1000) {
    return InvalidArgumentError("model: classes must be in 2..1000");
  }
  if (arch == Architecture::kMlp && hidden.empty()) {
    return InvalidArgumentError(
        "model: an MLP needs at least one hidden "
        "layer (or use linear)");
  }
  if (arch != Architecture::kMlp && !hidden.empty()) {
    return InvalidArgumentError(std::string("model: ") +
                                ArchitectureName(arch) +
                                " takes no hidden layers");
  }
  for (uint32_t h : hidden) {
    if (h == 0 || h > 65536) {
      return InvalidArgumentError("model: hidden widths must be in 1..65536");
    }
  }
  // Two 5x5 convolutions, each followed by a 2x2 pooling, leave
  // ((n - 4) / 2 - 4) / 2 values of a side of n: at least one from 16 on.
  if (arch == Architecture::kCnn &&
      (input_shape.size() != 2 || input_shape[0] < 16 || input_shape[1] < 16)) {
    std::string shape;
    for (uint32_t d : input_shape) {
      shape += (shape.empty() ? "" : "x") + std::to_string(d);
    }
    return InvalidArgumentError(
        "model: the CNN needs single-channel images, inputs of shape rows x "
        "cols (no channel axis) of at least 16x16; these are " +
        (shape.empty() ? std::string("scalars") : shape));
  }
  if (arch == Architecture::kTorchScript &&
      (script == nullptr || script->empty())) {
    return InvalidArgumentError("model: torchscript needs a module file");
  }
  return OkStatus();
}

std::string ModelSpec::ToString() const {
  const std::string in = std::to_string(input_size());
  const std::string out = std::to_string(classes);
  switch (arch) {
    case Architecture::kLinear:
      return "linear-" + in + "-" + out;
    case Architecture::kMlp:
      return "mlp-" + in + "-" + JoinWidths(hidden, 'x') + "-" + out;
    case Architecture::kCnn:
      return "cnn-" + JoinWidths(input_shape, 'x') + "-" + out;
    case Architecture::kTorchScript: {
      char fp[17];
      std::snprintf(fp, sizeof(fp), "%016" PRIx64, script_fingerprint);
      return std::string("torchscript-") + fp + "-" +
             JoinWidths(input_shape, 'x') + "-" + out;
    }
  }
  return "?";
}

StatusOr<std::vector<uint32_t>> ParseHidden(std::string_view text) {
  std::vector<uint32_t> out;
  if (text.empty()) return out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string item(text.substr(start, end - start));
    char* rest = nullptr;
    const unsigned long v = std::strtoul(item.c_str(), &rest, 10);
    if (item.empty() || *rest != '\0' || v == 0 || v > 65536 ||
        item.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgumentError("--hidden: '" + std::string(text) +
                                  "' is not a comma-separated list of layer "
                                  "widths in 1..65536");
    }
    out.push_back(static_cast<uint32_t>(v));
    start = end + 1;
  }
  return out;
}

Status LoadScriptFile(const std::string& path, ModelSpec* spec) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError("model file " + path +
                                " is a directory, not a TorchScript module");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read model file " + path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return NotFoundError("cannot read model file " + path);
  if (bytes.str().empty()) {
    return InvalidArgumentError("model file " + path +
                                " is empty, not a TorchScript module");
  }
  auto script = std::make_shared<const std::string>(bytes.str());
  spec->arch = Architecture::kTorchScript;
  spec->hidden.clear();
  spec->script_fingerprint = Fingerprint(*script);
  spec->script = std::move(script);
  spec->script_name = path;
  return OkStatus();
}

StatusOr<ModelSpec> ModelSpecFromFlags(std::string_view model,
                                       const std::vector<uint32_t>& hidden) {
  ModelSpec spec;
  constexpr std::string_view kScript = "torchscript:";
  if (model.substr(0, kScript.size()) == kScript) {
    const std::string path(model.substr(kScript.size()));
    if (path.empty()) {
      return InvalidArgumentError("--model torchscript:PATH needs a path");
    }
    RETURN_IF_ERROR(LoadScriptFile(path, &spec));
    return spec;
  }
  ASSIGN_OR_RETURN(spec.arch, ParseArchitecture(std::string(model)));
  if (spec.arch == Architecture::kTorchScript) {
    return InvalidArgumentError("--model torchscript:PATH needs a path");
  }
  spec.hidden =
      spec.arch == Architecture::kMlp ? hidden : std::vector<uint32_t>{};
  return spec;
}

Status CheckModelSpec(const ModelSpec& spec) {
  RETURN_IF_ERROR(spec.Validate());
  if (spec.arch == Architecture::kTorchScript) {
    return internal::CheckScriptModule(spec);
  }
  return internal::TrainableModel::Create(spec, 1).status();
}

std::vector<std::string> ModelSpecWarnings(const ModelSpec& spec) {
  if (spec.arch != Architecture::kTorchScript) return {};
  return internal::ScriptModuleWarnings(spec);
}

StatusOr<std::shared_ptr<const Model>> LoadModel(const ModelSpec& spec,
                                                 const std::string& blob) {
  ASSIGN_OR_RETURN(std::unique_ptr<internal::TrainableModel> model,
                   internal::TrainableModel::Deserialize(spec, blob));
  return std::shared_ptr<const Model>(std::move(model));
}

}  // namespace eraser::unlearning
