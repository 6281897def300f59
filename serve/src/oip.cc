// The Open Inference Protocol (KServe v2 REST, as Triton and MLServer speak
// it) on the engine: health, server and model metadata, and batched
// inference. docs/serve.md has the mapping.
#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>

#include "eraser/serve/api.h"
#include "eraser/serve/tensor_request.h"
#include "responses.h"

namespace eraser::serve {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;

// Rows one request may carry.
constexpr std::size_t kMaxRows = 1024;

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

Response Empty(const Request& request, http::status status) {
  Response res{status, request.version()};
  res.set(http::field::server, "eraser");
  res.keep_alive(request.keep_alive());
  res.prepare_payload();
  return res;
}

Response Error(const Request& request, http::status status,
               const std::string& message) {
  return JsonError(request.version(), request.keep_alive(), status, message);
}

// The rows of the request's one input tensor, or false with a message.
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
        *error = "value " + std::to_string(r * features + f) +
                 " is not a valid " + type->name;
        return false;
      }
      (*rows)[r][f] = static_cast<float>(pixels ? v / 255.0 : v);
    }
  }
  return true;
}

// The outputs the request asks for (all when it names none); false with a
// message for an unknown name.
bool WantedOutputs(const TensorRequest& req,
                   const std::vector<std::string>& known,
                   std::vector<std::string>* wanted, std::string* error) {
  if (!req.has_outputs) {
    *wanted = known;
    return true;
  }
  for (const std::string& name : req.outputs) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      *error = "no output named '" + name + "'" +
               (name == "margin" ? " for this token (admin only)" : "");
      return false;
    }
    wanted->push_back(name);
  }
  return true;
}

// One request's rows, answered as they arrive from the engine.
struct Batch {
  std::mutex mu;
  std::vector<std::optional<StatusOr<engine::Prediction>>> results;
  std::size_t remaining = 0;
};

}  // namespace

json Api::ModelMetadata(bool admin) const {
  const unlearning::DatasetInfo& dataset = engine_->dataset();
  json input_shape = json::array({-1});
  for (uint32_t d : dataset.test.shape) input_shape.push_back(d);
  json outputs = json::array(
      {{{"name", "label"}, {"datatype", "INT64"}, {"shape", {-1}}},
       {{"name", "decision"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
  if (!dataset.class_names.empty()) {
    outputs.push_back(
        {{"name", "class"}, {"datatype", "BYTES"}, {"shape", {-1}}});
  }
  outputs.push_back(
      {{"name", "margin"}, {"datatype", "INT32"}, {"shape", {-1}}});
  json parameters = {
      {"shards", engine_->num_shards()},
      {"policy", engine_->policy()},
      {"accepted_datatypes",
       {"FP32", "FP64", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64"}}};
  // Where the data came from (a path on the server) only to admins.
  if (admin) parameters["dataset"] = dataset.source;
  return {{"name", options_.model_name},
          {"versions", {"1"}},
          {"platform", "eraser_sisa"},
          {"inputs",
           {{{"name", "input"},
             {"datatype", dataset.test.type == datasets::FeatureType::kPixel
                              ? "UINT8"
                              : "FP32"},
             {"shape", input_shape}}}},
          {"outputs", outputs},
          {"parameters", parameters}};
}

bool Api::HandleV2(const Request& request, const std::string& path,
                   const Principal* who, Respond& respond) {
  if (path != "/v2" && path.rfind("/v2/", 0) != 0) return false;
  const http::verb method = request.method();
  auto only = [&](http::verb allowed) {
    if (method == allowed) return true;
    Response res = Error(
        request, http::status::method_not_allowed,
        std::string(http::to_string(method)) + " is not allowed on " + path);
    res.set(http::field::allow, allowed == http::verb::get
                                    ? "GET, HEAD"
                                    : http::to_string(allowed));
    respond(std::move(res));
    return false;
  };
  // Health: an empty body, the status code is the answer.
  if (path == "/v2/health/live") {
    if (only(http::verb::get)) respond(Empty(request, http::status::ok));
    return true;
  }
  if (path == "/v2/health/ready") {
    if (only(http::verb::get)) {
      respond(Empty(request, draining_ ? http::status::service_unavailable
                                       : http::status::ok));
    }
    return true;
  }
  if (who == nullptr) return false;  // the rest needs authentication
  if (path == "/v2") {
    if (only(http::verb::get)) {
      respond(internal::JsonResponse(request, http::status::ok,
                                     {{"name", "eraser"},
                                      {"version", "0.1.0"},
                                      {"extensions", json::array()}}));
    }
    return true;
  }
  const std::string prefix = "/v2/models/" + options_.model_name;
  if (path.rfind("/v2/models/", 0) != 0 ||
      (path != prefix && path.rfind(prefix + "/", 0) != 0)) {
    respond(Error(request, http::status::not_found,
                  "no model at " + path + " (this server serves '" +
                      options_.model_name + "')"));
    return true;
  }
  const std::string rest = path.substr(prefix.size());
  if (!who->MayInfer()) {
    Forbid(request, *who, "use the model", respond);
    return true;
  }
  if (rest.empty() || rest == "/versions/1") {
    if (only(http::verb::get)) {
      respond(internal::JsonResponse(request, http::status::ok,
                                     ModelMetadata(who->admin)));
    }
  } else if (rest == "/ready" || rest == "/versions/1/ready") {
    if (only(http::verb::get)) {
      respond(Empty(request, draining_ ? http::status::service_unavailable
                                       : http::status::ok));
    }
  } else if (rest == "/infer" || rest == "/versions/1/infer") {
    if (only(http::verb::post)) V2Infer(request, *who, std::move(respond));
  } else {
    respond(Error(request, http::status::not_found, "no route " + path));
  }
  return true;
}

void Api::V2Infer(const Request& request, const Principal& who,
                  Respond respond) {
  // Open Inference Protocol clients may send no Content-Type.
  if (!JsonBody(request, respond, /*undeclared_ok=*/true)) return;
  TensorRequest req;
  std::string error;
  if (!ParseTensorRequest(request.body(), &req, &error)) {
    return respond(internal::BadRequest(request, error));
  }
  const unlearning::DatasetInfo& dataset = engine_->dataset();
  std::vector<std::vector<float>> rows;
  if (!Rows(req, dataset, &rows, &error)) {
    return respond(internal::BadRequest(request, error));
  }
  const bool details = Details(who);
  std::vector<std::string> known = {"label", "decision"};
  if (!dataset.class_names.empty()) known.push_back("class");
  if (details) known.push_back("margin");
  std::vector<std::string> wanted;
  if (!WantedOutputs(req, known, &wanted, &error)) {
    return respond(internal::BadRequest(request, error));
  }
  const json id = req.id ? json(*req.id) : json(nullptr);
  auto batch = std::make_shared<Batch>();
  batch->results.resize(rows.size());
  batch->remaining = rows.size();
  auto shared_respond = std::make_shared<Respond>(std::move(respond));
  const unsigned version = request.version();
  const bool keep_alive = request.keep_alive();
  const std::string model = options_.model_name;
  const std::vector<std::string>* names = &dataset.class_names;
  // Called once per row; the last one answers.
  std::shared_ptr<metrics::EngineMetrics> metrics = engine_->metrics();
  auto finish = [batch, shared_respond, version, keep_alive, model, names,
                 wanted, details, id,
                 metrics](std::size_t row, StatusOr<engine::Prediction> p) {
    {
      std::lock_guard<std::mutex> lock(batch->mu);
      batch->results[row] = std::move(p);
      if (--batch->remaining > 0) return;
    }
    Request stub{http::verb::post, "/v2/infer", version};
    stub.keep_alive(keep_alive);
    const std::size_t n = batch->results.size();
    json labels = json::array(), decisions = json::array(),
         classes = json::array(), margins = json::array(),
         certificates = json::array();
    for (const auto& r : batch->results) {
      if (!r->ok()) {
        return (*shared_respond)(
            internal::ErrorResponse(stub, r->status(), *metrics));
      }
      const engine::Prediction& pr = r->value();
      labels.push_back(pr.label);
      decisions.push_back(certify::DecisionName(pr.decision));
      classes.push_back(pr.label >= 0 && static_cast<std::size_t>(pr.label) <
                                             names->size()
                            ? (*names)[pr.label]
                            : std::string());
      margins.push_back(pr.margin);
      if (details) {
        json affected = json::array();
        for (ShardId s : pr.affected) affected.push_back(s.value());
        certificates.push_back({{"affected_shards", affected},
                                {"deletion_watermark", pr.deletion_watermark},
                                {"model_versions", pr.model_versions}});
      }
    }
    json outputs = json::array();
    for (const std::string& name : wanted) {
      json o = {{"name", name}, {"shape", {n}}};
      if (name == "label") {
        o["datatype"] = "INT64";
        o["data"] = labels;
      } else if (name == "decision") {
        o["datatype"] = "BYTES";
        o["data"] = decisions;
      } else if (name == "class") {
        o["datatype"] = "BYTES";
        o["data"] = classes;
      } else {
        o["datatype"] = "INT32";
        o["data"] = margins;
      }
      outputs.push_back(std::move(o));
    }
    json out = {{"model_name", model},
                {"model_version", "1"},
                {"outputs", std::move(outputs)}};
    if (!id.is_null()) out["id"] = id;
    if (details) out["parameters"] = {{"certificates", certificates}};
    (*shared_respond)(
        internal::JsonResponse(stub, http::status::ok, std::move(out)));
  };
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const Status admitted = engine_->InferAsync(
        std::move(rows[r]), [finish, r](StatusOr<engine::Prediction> p) {
          finish(r, std::move(p));
        });
    if (!admitted.ok()) finish(r, admitted);
  }
}

}  // namespace eraser::serve
