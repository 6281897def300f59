#include "dataset_info.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace eraser::unlearning {

std::string EncodeDatasetInfo(const std::string& source, uint32_t classes,
                              const std::vector<std::string>& class_names,
                              const datasets::TabularEncoding* encoding,
                              uint64_t train_size) {
  nlohmann::json j = {{"source", source},
                      {"classes", classes},
                      {"class_names", class_names},
                      {"train_size", train_size}};
  if (encoding != nullptr) {
    j["encoding"] = nlohmann::json::parse(encoding->ToJson());
  }
  return j.dump();
}

Status DecodeDatasetInfo(const std::string& text, DatasetInfo* info) {
  const nlohmann::json j =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return DataLossError("corrupt dataset record");
  try {
    info->source = j.at("source").get<std::string>();
    info->classes = j.at("classes").get<uint32_t>();
    info->class_names = j.at("class_names").get<std::vector<std::string>>();
    info->train_size = j.at("train_size").get<uint64_t>();
    if (j.contains("encoding")) {
      ASSIGN_OR_RETURN(
          datasets::TabularEncoding encoding,
          datasets::TabularEncoding::FromJson(j.at("encoding").dump()));
      info->encoding = std::make_shared<const datasets::TabularEncoding>(
          std::move(encoding));
    }
  } catch (const nlohmann::json::exception&) {
    return DataLossError("corrupt dataset record");
  }
  if (!info->class_names.empty() && info->class_names.size() != info->classes) {
    return DataLossError("corrupt dataset record (class names)");
  }
  return OkStatus();
}

std::string EncodeModelCost(const ModelCost& cost) {
  return nlohmann::json{
      {"train_seconds_per_sample_epoch", cost.train_seconds_per_sample_epoch},
      {"infer_seconds_per_row", cost.infer_seconds_per_row},
      {"ensemble_infer_seconds_per_row", cost.ensemble_infer_seconds_per_row}}
      .dump();
}

StatusOr<ModelCost> DecodeModelCost(const std::string& text) {
  const nlohmann::json j =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return DataLossError("corrupt model cost record");
  ModelCost cost;
  try {
    cost.train_seconds_per_sample_epoch =
        j.at("train_seconds_per_sample_epoch").get<double>();
    cost.infer_seconds_per_row = j.at("infer_seconds_per_row").get<double>();
    cost.ensemble_infer_seconds_per_row =
        j.value("ensemble_infer_seconds_per_row", 0.0);
  } catch (const nlohmann::json::exception&) {
    return DataLossError("corrupt model cost record");
  }
  for (double v :
       {cost.train_seconds_per_sample_epoch, cost.infer_seconds_per_row,
        cost.ensemble_infer_seconds_per_row}) {
    if (!std::isfinite(v) || v < 0) {
      return DataLossError("corrupt model cost record (a negative figure)");
    }
  }
  return cost;
}

}  // namespace eraser::unlearning
