#include "eraser/unlearning/model.h"

#include "network.h"

namespace eraser::unlearning {

const char* ArchitectureName(Architecture arch) {
  return arch == Architecture::kCnn ? "cnn" : "mlp";
}

StatusOr<Architecture> ParseArchitecture(const std::string& name) {
  if (name == "mlp") return Architecture::kMlp;
  if (name == "cnn") return Architecture::kCnn;
  return InvalidArgumentError("unknown model '" + name +
                              "': expected mlp or cnn");
}

Status ModelSpec::Validate() const {
  if (rows == 0 || cols == 0 || rows > 1024 || cols > 1024) {
    return InvalidArgumentError(
        "model: input rows and cols must be in 1..1024");
  }
  if (classes < 2 || classes > 1000) {
    return InvalidArgumentError("model: classes must be in 2..1000");
  }
  if (arch == Architecture::kMlp && (hidden == 0 || hidden > 65536)) {
    return InvalidArgumentError("model: hidden must be in 1..65536");
  }
  if (arch == Architecture::kCnn && (rows < 12 || cols < 12)) {
    return InvalidArgumentError(
        "model: the CNN needs inputs of at least 12x12");
  }
  return OkStatus();
}

std::string ModelSpec::ToString() const {
  if (arch == Architecture::kCnn) {
    return "cnn-" + std::to_string(rows) + "x" + std::to_string(cols) + "-" +
           std::to_string(classes);
  }
  return "mlp-" + std::to_string(input_size()) + "-" + std::to_string(hidden) +
         "-" + std::to_string(classes);
}

StatusOr<std::shared_ptr<const Model>> LoadModel(const ModelSpec& spec,
                                                 const std::string& blob) {
  ASSIGN_OR_RETURN(std::unique_ptr<internal::TrainableModel> model,
                   internal::TrainableModel::Deserialize(spec, blob));
  return std::shared_ptr<const Model>(std::move(model));
}

}  // namespace eraser::unlearning
