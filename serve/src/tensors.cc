#include "tensors.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "eraser/common/numbers.h"

namespace eraser::serve::internal {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "binary tensors are little-endian; so is every host we build "
              "for");

struct DataType {
  const char* name;
  bool integer;
  double min, max;
};

// What an input tensor may be. FP32/FP64 carry features as /v1/infer's
// "features" do; the integer types carry integral feature values, and for
// image datasets UINT8 carries raw pixel bytes (0-255), scaled by 1/255 as
// the engine expects.
constexpr DataType kTypes[] = {
    {"FP32", false, -3.4028234663852886e38, 3.4028234663852886e38},
    {"FP64", false, -3.4028234663852886e38, 3.4028234663852886e38},
    {"UINT8", true, 0, 255},
    {"INT8", true, -128, 127},
    {"UINT16", true, 0, 65535},
    {"INT16", true, -32768, 32767},
    {"INT32", true, -2147483648.0, 2147483647.0},
    {"INT64", true, -9007199254740992.0, 9007199254740992.0},
};

const DataType* FindType(const std::string& name) {
  for (const DataType& t : kTypes) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

template <typename T>
void DecodeAs(const char* p, std::size_t count, std::vector<double>* out) {
  out->resize(count);
  for (std::size_t i = 0; i < count; ++i, p += sizeof(T)) {
    T v;
    std::memcpy(&v, p, sizeof v);
    (*out)[i] = static_cast<double>(v);
  }
}

}  // namespace

bool Rows(const TensorRequest& req, const unlearning::DatasetInfo& dataset,
          std::vector<std::vector<float>>* rows, std::string* error) {
  if (req.inputs != 1) {
    *error = "\"inputs\" must be an array of exactly one tensor";
    return false;
  }
  if (!req.has_name || !req.has_shape || !req.has_datatype || !req.has_data) {
    *error = "an input needs \"name\", \"shape\", \"datatype\" and \"data\"";
    return false;
  }
  const DataType* type = FindType(req.datatype);
  if (type == nullptr) {
    *error = "datatype " + req.datatype +
             " is not supported (FP32, FP64, UINT8, INT8, UINT16, INT16, "
             "INT32, INT64)";
    return false;
  }
  if (req.name != "input") {
    *error = "no input named '" + req.name +
             "' (the model's input is named \"input\")";
    return false;
  }
  const std::size_t features = dataset.test.feature_count();
  // The product of the row's dimensions, checked at each step: dimensions
  // whose product wraps 2^64 around to the feature count are refused, not
  // read as one row.
  uint64_t per_row = 1;
  bool fits = req.shape.size() >= 2;
  for (std::size_t i = 1; fits && i < req.shape.size(); ++i) {
    const uint64_t d = static_cast<uint64_t>(req.shape[i]);
    fits = d > 0 && per_row <= features / d;
    if (fits) per_row *= d;
  }
  if (!fits || per_row != features) {
    *error = "\"shape\" must be [rows, ...] with " + std::to_string(features) +
             " values per row (the model's input shape is [-1, " +
             datasets::ShapeString(dataset.test.shape) + "])";
    return false;
  }
  const uint64_t n = static_cast<uint64_t>(req.shape[0]);
  if (n < 1 || n > kMaxRows) {
    *error = "a request carries 1 to " + std::to_string(kMaxRows) + " rows";
    return false;
  }
  if (req.data.size() != n * features) {
    *error = "\"data\" holds " + std::to_string(req.data.size()) +
             " values; the shape says " + std::to_string(n * features);
    return false;
  }
  const bool pixels = dataset.test.type == datasets::FeatureType::kPixel &&
                      req.datatype == "UINT8";
  rows->assign(n, std::vector<float>(features));
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t f = 0; f < features; ++f) {
      const double v = req.data[r * features + f];
      if (!(v >= type->min && v <= type->max) ||
          (type->integer && v != std::floor(v))) {
        *error = "\"data\"[" + std::to_string(r * features + f) +
                 "] = " + FormatDouble(v, 9) + " is not a valid " + type->name;
        // Values are read through a double into a float feature.
        if (std::string_view(type->name) == "INT64" && v == std::floor(v)) {
          *error += ": eraser reads INT64 values from -2^53 to 2^53";
        } else if (!type->integer && std::isfinite(v)) {
          *error += ": a feature is a 32-bit float (at most 3.4e38)";
        }
        return false;
      }
      (*rows)[r][f] = static_cast<float>(pixels ? v / 255.0 : v);
    }
  }
  return true;
}

bool ReservedParameterServed(const std::string& name, std::string* error) {
  for (const char* unserved :
       {"sequence_id", "sequence_start", "sequence_end", "priority"}) {
    if (name == unserved) {
      *error = "parameter \"" + name +
               "\" is not supported: eraser serves no sequences and no "
               "priorities";
      return false;
    }
  }
  return true;
}

std::size_t ElementSize(const std::string& datatype) {
  if (datatype == "UINT8" || datatype == "INT8") return 1;
  if (datatype == "UINT16" || datatype == "INT16") return 2;
  if (datatype == "FP32" || datatype == "INT32") return 4;
  if (datatype == "FP64" || datatype == "INT64") return 8;
  return 0;
}

// `count` elements of `datatype` (ElementSize() > 0) from `p`.
void Decode(const std::string& datatype, const char* p, std::size_t count,
            std::vector<double>* out) {
  if (datatype == "UINT8") return DecodeAs<uint8_t>(p, count, out);
  if (datatype == "INT8") return DecodeAs<int8_t>(p, count, out);
  if (datatype == "UINT16") return DecodeAs<uint16_t>(p, count, out);
  if (datatype == "INT16") return DecodeAs<int16_t>(p, count, out);
  if (datatype == "INT32") return DecodeAs<int32_t>(p, count, out);
  if (datatype == "INT64") return DecodeAs<int64_t>(p, count, out);
  if (datatype == "FP32") return DecodeAs<float>(p, count, out);
  DecodeAs<double>(p, count, out);  // FP64
}

void AppendBytes(std::string* out, const std::string& s) {
  Append<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

bool RowAnswers::Put(std::size_t row, StatusOr<engine::Prediction> p) {
  std::lock_guard<std::mutex> lock(mu);
  results[row] = std::move(p);
  return --remaining == 0;
}

std::string ClassName(const engine::Prediction& p,
                      const std::vector<std::string>& names) {
  return p.label >= 0 && static_cast<std::size_t>(p.label) < names.size()
             ? names[static_cast<std::size_t>(p.label)]
             : std::string();
}

nlohmann::json CertificateJson(const engine::Prediction& p) {
  nlohmann::json affected = nlohmann::json::array();
  for (ShardId s : p.affected) affected.push_back(s.value());
  nlohmann::json out = {{"affected_shards", affected},
                        {"deletion_watermark", p.deletion_watermark},
                        {"model_versions", p.model_versions}};
  if (!p.prefix_stages.empty()) out["prefix_stages"] = p.prefix_stages;
  return out;
}

std::vector<std::string> KnownOutputs(const unlearning::DatasetInfo& dataset,
                                      bool details) {
  std::vector<std::string> known = {"label", "decision"};
  if (!dataset.class_names.empty()) known.push_back("class");
  if (details) known.push_back("margin");
  return known;
}

std::string OutputDatatype(const std::string& name) {
  if (name == "label") return "INT64";
  if (name == "margin") return "INT32";
  return "BYTES";
}

bool WantedOutputs(bool named, const std::vector<std::string>& requested,
                   const std::vector<std::string>& known,
                   std::vector<std::string>* wanted, std::string* error) {
  if (!named) {
    *wanted = known;
    return true;
  }
  for (const std::string& name : requested) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      *error = "no output named '" + name.substr(0, 64) + "'" +
               (name == "margin" ? " for this token (admin only)" : "");
      return false;
    }
    if (std::find(wanted->begin(), wanted->end(), name) != wanted->end()) {
      *error = "output '" + name + "' is requested twice";
      return false;
    }
    wanted->push_back(name);
  }
  return true;
}

}  // namespace eraser::serve::internal
