// libFuzzer target: the Open Inference Protocol body reader
// (serve/src/tensor_request.cc), differentially against nlohmann::json.
// The reader must accept only documents nlohmann accepts (apart from its
// nesting limit; what it refuses as valid JSON of the wrong shape, the
// route has the general parser judge), and what it reads must equal what
// nlohmann's tree holds: every number of the first input's "data", its
// name, datatype and shape, and the request's id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "eraser/serve/tensor_request.h"

namespace {

using nlohmann::json;

void Check(bool condition) {
  if (!condition) std::abort();
}

void Flatten(const json& v, std::vector<double>* out) {
  if (v.is_array()) {
    for (const json& e : v) Flatten(e, out);
  } else {
    out->push_back(v.get<double>());
  }
}

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  eraser::serve::TensorRequest req;
  std::string error;
  const bool ok = eraser::serve::ParseTensorRequest(body, &req, &error);
  if (!ok && StartsWith(error, "the body is nested deeper")) return 0;
  // nlohmann takes a NUL byte for the end of the input; here it is an error
  // (it can be neither whitespace nor, unescaped, part of a string).
  if (body.find('\0') != std::string_view::npos) {
    Check(!ok);
    return 0;
  }
  const json tree = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const bool valid = !tree.is_discarded();
  if (ok) Check(valid);
  if (StartsWith(error, "the body is not valid JSON")) Check(!valid);
  if (!ok) return 0;
  Check(tree.is_object());
  if (tree.contains("id") && tree["id"].is_string()) {
    Check(req.id && *req.id == tree["id"].get<std::string>());
  }
  if (!tree.contains("inputs") || !tree["inputs"].is_array() ||
      tree["inputs"].size() != 1 || req.inputs != 1) {
    return 0;
  }
  const json& input = tree["inputs"][0];
  if (!input.is_object()) return 0;
  if (input.contains("name") && input["name"].is_string()) {
    Check(req.has_name && req.name == input["name"].get<std::string>());
  }
  if (input.contains("datatype") && input["datatype"].is_string()) {
    Check(req.has_datatype &&
          req.datatype == input["datatype"].get<std::string>());
  }
  if (input.contains("shape") && input["shape"].is_array()) {
    Check(req.has_shape && req.shape.size() == input["shape"].size());
    for (std::size_t i = 0; i < req.shape.size(); ++i) {
      Check(static_cast<double>(req.shape[i]) ==
            input["shape"][i].get<double>());
    }
  }
  if (input.contains("data") && input["data"].is_array()) {
    std::vector<double> expected;
    Flatten(input["data"], &expected);
    Check(req.has_data && req.data.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      Check(req.data[i] == expected[i]);
    }
  }
  return 0;
}
