// The Open Inference Protocol (KServe v2 REST, as Triton and MLServer speak
// it) on the engine: health, server and model metadata, and batched
// inference. docs/serve.md has the mapping.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>

#include "eraser/serve/api.h"
#include "eraser/serve/tensor_request.h"
#include "model_statistics.h"
#include "responses.h"
#include "tensors.h"

namespace eraser::serve {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;

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

// The binary tensor data extension (Triton's binary_tensor_data): the body
// is a JSON header of Inference-Header-Content-Length bytes, then the raw
// bytes of each input that declares parameters.binary_data_size, in input
// order, little-endian, row-major. Outputs come back the same way when the
// request asks (parameters.binary_data_output, or an output's
// parameters.binary_data).
constexpr std::size_t kHeaderLengthDigits = 12;

using internal::Append;
using internal::AppendBytes;
using internal::Decode;
using internal::ElementSize;
using internal::kMaxRows;
using internal::Rows;

// Which outputs are answered in binary, and the request's timeout.
struct BinaryOutputs {
  bool all = false;                     // parameters.binary_data_output
  std::map<std::string, bool> by_name;  // an output's parameters.binary_data
  bool Wants(const std::string& name) const {
    const auto it = by_name.find(name);
    return it != by_name.end() ? it->second : all;
  }
  // parameters.timeout, in microseconds.
  std::optional<uint64_t> timeout_us;
};

// obj[key] as a bool when present; false with a message when not a bool.
bool OptionalBool(const json& obj, const char* key, const std::string& where,
                  bool* out, std::string* error) {
  const auto it = obj.find(key);
  if (it == obj.end()) return true;
  if (!it->is_boolean()) {
    *error = where + "\"" + key + "\" must be true or false";
    return false;
  }
  *out = it->get<bool>();
  return true;
}

// A "parameters" member: absent, or an object.
const json* Parameters(const json& obj, const std::string& where,
                       std::string* error) {
  static const json kNone = json::object();
  const auto it = obj.find("parameters");
  if (it == obj.end()) return &kNone;
  if (!it->is_object()) {
    *error = where + "\"parameters\" must be an object";
    return nullptr;
  }
  return &*it;
}

// JSON "data" (numbers, possibly in nested arrays) flattened into `out`.
bool FlattenData(const json& data, int depth, std::vector<double>* out) {
  if (data.is_number() && !data.is_boolean()) {
    out->push_back(data.get<double>());
    return true;
  }
  if (!data.is_array() || depth > TensorRequest::kMaxDataNesting) return false;
  for (const json& v : data) {
    if (!FlattenData(v, depth + 1, out)) return false;
  }
  return true;
}

// A request in the binary form: the first `header_size` bytes of `body` are
// the JSON header, the rest the inputs' bytes. Also reads a JSON request
// that asks for binary outputs (header_size = the body's size). Sizes are
// checked against each input's shape and datatype before a byte is read.
// The header is small (no tensor data), so nlohmann::json reads it.
// A SAX handler that keeps nothing: the nesting depth, and why a parse
// failed.
struct DepthScreen {
  int depth = 0;
  bool too_deep = false;
  bool overflow = false;     // a number beyond the double range
  std::size_t error_at = 0;  // where a parse failed
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool key(std::string&) { return true; }
  bool start_object(std::size_t) { return Deeper(); }
  bool start_array(std::size_t) { return Deeper(); }
  bool end_object() { return --depth, true; }
  bool end_array() { return --depth, true; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) {
    overflow = e.id == 406;  // out_of_range.406: number overflow
    error_at = position;
    return false;
  }
  bool Deeper() {
    too_deep = ++depth > TensorRequest::kMaxNesting;
    return !too_deep;
  }
};

bool ParseBinaryForm(std::string_view body, std::size_t header_size,
                     TensorRequest* req, BinaryOutputs* binary,
                     std::string* error) {
  const std::string_view header = body.substr(0, header_size);
  // A first pass keeps no value: nesting past the one-pass reader's limit
  // is refused, as there, and a syntax error or a number beyond the double
  // range is named. (A parse callback would do it in the same pass, but
  // makes nlohmann's parser scan each parent at every object's end:
  // quadratic in a body of many small objects.)
  DepthScreen screen;
  // nlohmann::json would stop at a NUL byte and ignore what follows it.
  const bool nul = header.find('\0') != std::string_view::npos;
  const bool screened = !nul && json::sax_parse(header, &screen);
  if (screen.too_deep) {
    *error = "the body is nested deeper than " +
             std::to_string(TensorRequest::kMaxNesting) + " levels";
    return false;
  }
  if (screen.overflow) {
    *error = "the body holds a number beyond the double range";
    return false;
  }
  if (!nul && !screened && header_size == body.size()) {
    *error = "the body is not valid JSON (at byte " +
             std::to_string(screen.error_at) + ")";
    return false;
  }
  const json j = screened
                     ? json::parse(header, nullptr, /*allow_exceptions=*/false)
                     : json(json::value_t::discarded);
  if (j.is_discarded() || !j.is_object()) {
    *error = header_size == body.size()
                 ? "the body is not a JSON object"
                 : "the inference header (the body's first " +
                       std::to_string(header_size) +
                       " bytes, Inference-Header-Content-Length) is not a "
                       "JSON object";
    return false;
  }
  if (const auto id = j.find("id"); id != j.end() && !id->is_null()) {
    if (!id->is_string()) {
      *error = "\"id\" must be a string";
      return false;
    }
    req->id = id->get<std::string>();
  }
  const json* params = Parameters(j, "", error);
  if (params == nullptr || !OptionalBool(*params, "binary_data_output",
                                         "parameters: ", &binary->all, error)) {
    return false;
  }
  for (const auto& [name, value] : params->items()) {
    if (!internal::ReservedParameterServed(name, error)) return false;
    if (name != "timeout") continue;
    if (!value.is_number_unsigned() ||
        value.get<uint64_t>() > internal::kMaxTimeoutMicros) {
      *error =
          "parameters: \"timeout\" must be a whole number of microseconds "
          "from 0 to 2^40";
      return false;
    }
    binary->timeout_us = value.get<uint64_t>();
  }
  const auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_array()) {
    *error = "\"inputs\" must be an array of exactly one tensor";
    return false;
  }
  req->inputs = static_cast<int>(inputs->size());
  std::size_t offset = header_size;  // where the next input's bytes start
  for (std::size_t i = 0; i < inputs->size(); ++i) {
    const json& input = (*inputs)[i];
    const bool first = i == 0;
    const std::string where = "input " + std::to_string(i) + ": ";
    if (!input.is_object()) {
      *error = where + "must be an object";
      return false;
    }
    std::string datatype;
    if (const auto it = input.find("datatype"); it != input.end()) {
      if (!it->is_string()) {
        *error = where + "\"datatype\" must be a string";
        return false;
      }
      datatype = it->get<std::string>();
      if (first) req->has_datatype = true;
    }
    std::vector<int64_t> shape;
    if (const auto it = input.find("shape"); it != input.end()) {
      if (!it->is_array()) {
        *error = where + "\"shape\" must be an array of integers";
        return false;
      }
      for (const json& d : *it) {
        if (!d.is_number_unsigned() || d.get<uint64_t>() > (1u << 24)) {
          *error = where + "\"shape\" must hold integers from 0 to 2^24";
          return false;
        }
        shape.push_back(d.get<int64_t>());
      }
      if (first) req->has_shape = true;
    }
    if (first) {
      if (const auto it = input.find("name"); it != input.end()) {
        if (!it->is_string()) {
          *error = where + "\"name\" must be a string";
          return false;
        }
        req->name = it->get<std::string>();
        req->has_name = true;
      }
      req->datatype = datatype;
      req->shape = shape;
    }
    const json* input_params = Parameters(input, where, error);
    if (input_params == nullptr) return false;
    const auto size_it = input_params->find("binary_data_size");
    const auto data = input.find("data");
    if (size_it == input_params->end()) {
      if (first && data != input.end()) {
        if (!FlattenData(*data, 0, &req->data)) {
          *error = where +
                   "\"data\" must hold only numbers: the input is a numeric "
                   "tensor (FP32, FP64, UINT8, INT8, UINT16, INT16, INT32 or "
                   "INT64); null, strings, booleans and BYTES or BOOL tensors "
                   "are refused";
          return false;
        }
        req->has_data = true;
      }
      continue;
    }
    if (data != input.end()) {
      *error = where + "has both \"data\" and binary_data_size";
      return false;
    }
    if (!size_it->is_number_unsigned()) {
      *error = where + "binary_data_size must be a number of bytes";
      return false;
    }
    if (datatype.empty() || input.find("shape") == input.end()) {
      *error = where +
               "binary data needs the input's \"shape\" and "
               "\"datatype\"";
      return false;
    }
    const uint64_t size = size_it->get<uint64_t>();
    const std::size_t element = ElementSize(datatype);
    if (element == 0) {
      *error = where + "datatype '" + datatype +
               "' has no binary form here (FP32, FP64, UINT8, INT8, UINT16, "
               "INT16, INT32, INT64)";
      return false;
    }
    // Elements the shape holds, saturating at 2^40 (past any body).
    constexpr uint64_t kMany = uint64_t{1} << 40;
    uint64_t count = shape.empty() ? 0 : 1;
    for (int64_t d : shape) {
      const uint64_t u = static_cast<uint64_t>(d);
      count = u != 0 && count > kMany / u ? kMany : count * u;
    }
    if (count >= kMany || count * element != size) {
      *error = where + "binary_data_size is " + std::to_string(size) +
               " bytes; its shape and datatype (" + datatype + ", " +
               std::to_string(element) + " bytes each) make " +
               (count >= kMany ? std::string("at least 2^40 elements")
                               : std::to_string(count * element) + " bytes");
      return false;
    }
    if (size > body.size() - offset) {
      *error = where + "declares " + std::to_string(size) +
               " bytes of binary data; the body has " +
               std::to_string(body.size() - offset) +
               " left after the header and earlier inputs" +
               (header_size == body.size()
                    ? " (binary data needs the Inference-Header-Content-"
                      "Length header)"
                    : "");
      return false;
    }
    if (first) {
      Decode(datatype, body.data() + offset, count, &req->data);
      req->has_data = true;
    }
    offset += size;
  }
  if (offset != body.size()) {
    *error = "the body has " + std::to_string(body.size() - offset) +
             " bytes after the header and the binary data its inputs declare";
    return false;
  }
  if (const auto outputs = j.find("outputs"); outputs != j.end()) {
    if (!outputs->is_array()) {
      *error = "\"outputs\" must be an array";
      return false;
    }
    req->has_outputs = true;
    for (std::size_t i = 0; i < outputs->size(); ++i) {
      const json& o = (*outputs)[i];
      const std::string where = "output " + std::to_string(i) + ": ";
      const auto name = o.is_object() ? o.find("name") : o.end();
      if (!o.is_object() || name == o.end() || !name->is_string()) {
        *error = where + "must be an object with a \"name\"";
        return false;
      }
      const json* output_params = Parameters(o, where, error);
      bool wants = binary->all;
      if (output_params == nullptr ||
          !OptionalBool(*output_params, "binary_data", where, &wants, error)) {
        return false;
      }
      req->outputs.push_back(name->get<std::string>());
      binary->by_name[req->outputs.back()] = wants;
    }
  }
  return true;
}

// Inference-Header-Content-Length: a decimal byte count, at most `limit`.
bool HeaderLength(std::string_view value, std::size_t limit, std::size_t* out) {
  if (value.empty() || value.size() > kHeaderLengthDigits) return false;
  std::size_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (n > limit) return false;
  *out = n;
  return true;
}

}  // namespace

json Api::ModelMetadata(const Principal& who) const {
  const unlearning::DatasetInfo& dataset = engine_->dataset();
  json input_shape = json::array({-1});
  for (uint32_t d : dataset.test.shape) input_shape.push_back(d);
  // The outputs this caller may ask for: a client that builds its request
  // from the metadata (Triton's clients do) asks for nothing refused.
  json outputs = json::array();
  for (const std::string& name :
       internal::KnownOutputs(dataset, Details(who))) {
    outputs.push_back({{"name", name},
                       {"datatype", internal::OutputDatatype(name)},
                       {"shape", {-1}}});
  }
  json parameters = {
      {"shards", engine_->num_shards()},
      {"policy", engine_->policy()},
      {"accepted_datatypes",
       {"FP32", "FP64", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64"}}};
  // Where the data came from (a path on the server) only to admins.
  if (who.admin) parameters["dataset"] = dataset.source;
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

json Api::ServerMetadata() const {
  return {{"name", "eraser"},
          {"version", "0.1.0"},
          {"extensions", json::array({"binary_tensor_data",
                                      "model_configuration", "statistics"})}};
}

json Api::ModelConfig(const Principal& who) const {
  const unlearning::DatasetInfo& dataset = engine_->dataset();
  const engine::InferenceOptions& inference = engine_->inference_options();
  json dims = json::array();
  for (uint32_t d : dataset.test.shape) dims.push_back(d);
  // Each output is one value per row: with max_batch_size > 0 Triton's
  // dims leave out the batch dimension, and a per-row scalar is dims [1]
  // reshaped to [].
  auto output = [](const std::string& name, const std::string& type) {
    return json{{"name", name},         {"data_type", type},
                {"dims", {1}},          {"reshape", {{"shape", json::array()}}},
                {"label_filename", ""}, {"is_shape_tensor", false}};
  };
  json outputs = json::array();
  for (const std::string& name :
       internal::KnownOutputs(dataset, Details(who))) {
    const std::string type = internal::OutputDatatype(name);
    outputs.push_back(
        output(name, type == "BYTES" ? "TYPE_STRING" : "TYPE_" + type));
  }
  const auto delay_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            inference.max_queue_delay)
                            .count();
  return {
      {"name", options_.model_name},
      {"platform", "eraser_sisa"},
      {"backend", "eraser"},
      {"version_policy", {{"latest", {{"num_versions", 1}}}}},
      // A request is admitted whole, so it may carry no more rows than
      // the inference queue holds.
      {"max_batch_size", std::min(kMaxRows, inference.queue_capacity)},
      {"input",
       {{{"name", "input"},
         {"data_type", dataset.test.type == datasets::FeatureType::kPixel
                           ? "TYPE_UINT8"
                           : "TYPE_FP32"},
         {"format", "FORMAT_NONE"},
         {"dims", dims},
         {"is_shape_tensor", false},
         {"allow_ragged_batch", false},
         {"optional", false}}}},
      {"output", outputs},
      {"dynamic_batching",
       {{"preferred_batch_size", {inference.max_batch_size}},
        {"max_queue_delay_microseconds", delay_us},
        {"preserve_ordering", false}}},
      {"instance_group",
       {{{"name", options_.model_name},
         {"kind", "KIND_CPU"},
         {"count", inference.threads}}}},
      {"parameters",
       {{"shards", {{"string_value", std::to_string(engine_->num_shards())}}},
        {"policy", {{"string_value", engine_->policy()}}}}}};
}

json Api::ModelStats() const {
  return {{"model_stats",
           {statistics_->ToJson(options_.model_name,
                                engine_->Stats().executions)}}};
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
      respond(
          internal::JsonResponse(request, http::status::ok, ServerMetadata()));
    }
    return true;
  }
  if (path == "/v2/models/stats") {
    if (!who->MayInfer()) {
      Forbid(request, *who, "read the model's statistics", respond);
    } else if (only(http::verb::get)) {
      respond(internal::JsonResponse(request, http::status::ok, ModelStats()));
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
                                     ModelMetadata(*who)));
    }
  } else if (rest == "/ready" || rest == "/versions/1/ready") {
    if (only(http::verb::get)) {
      respond(Empty(request, draining_ ? http::status::service_unavailable
                                       : http::status::ok));
    }
  } else if (rest == "/infer" || rest == "/versions/1/infer") {
    if (only(http::verb::post)) V2Infer(request, *who, std::move(respond));
  } else if (rest == "/config" || rest == "/versions/1/config") {
    if (only(http::verb::get)) {
      respond(
          internal::JsonResponse(request, http::status::ok, ModelConfig(*who)));
    }
  } else if (rest == "/stats" || rest == "/versions/1/stats") {
    if (only(http::verb::get)) {
      respond(internal::JsonResponse(request, http::status::ok, ModelStats()));
    }
  } else {
    respond(Error(request, http::status::not_found, "no route " + path));
  }
  return true;
}

void Api::V2Infer(const Request& request, const Principal& who,
                  Respond respond) {
  const internal::Stopwatch::time_point start = internal::Stopwatch::now();
  respond = internal::CountingFailures(std::move(respond), statistics_, start);
  const std::string_view body = request.body();
  const auto header_length = request.find("Inference-Header-Content-Length");
  const bool binary_form = header_length != request.end();
  // Open Inference Protocol clients may send no Content-Type; the binary
  // form may be declared application/octet-stream.
  if (!JsonBody(request, respond, /*undeclared_ok=*/true,
                /*octet_ok=*/binary_form)) {
    return;
  }
  // A request refused before the engine sees it (the engine counts its
  // own refusals): a bad input, as the engine would count it.
  auto bad_input = [&](Response res) {
    engine_->metrics()->Refused("bad_input");
    respond(std::move(res));
  };
  TensorRequest req;
  BinaryOutputs binary;
  std::string error;
  if (binary_form) {
    if (request.count("Inference-Header-Content-Length") > 1) {
      return bad_input(internal::BadRequest(
          request, "Inference-Header-Content-Length appears twice"));
    }
    std::size_t header_size = 0;
    const auto value = header_length->value();
    if (!HeaderLength(std::string_view(value.data(), value.size()), body.size(),
                      &header_size)) {
      return bad_input(internal::BadRequest(
          request,
          "Inference-Header-Content-Length must be the size in "
          "bytes of the JSON header, at most the body's " +
              std::to_string(body.size())));
    }
    if (!ParseBinaryForm(body, header_size, &req, &binary, &error)) {
      return bad_input(internal::BadRequest(request, error));
    }
  } else if (body.find("binary_data") != std::string_view::npos ||
             body.find("\"parameters\"") != std::string_view::npos) {
    // Asks for binary outputs (or declares binary inputs without the
    // header, which the reader refuses by name), or carries parameters
    // (a timeout; reserved ones eraser refuses): the general parser.
    if (!ParseBinaryForm(body, body.size(), &req, &binary, &error)) {
      return bad_input(internal::BadRequest(request, error));
    }
  } else if (!ParseTensorRequest(body, &req, &error)) {
    if (!req.reread) return bad_input(internal::BadRequest(request, error));
    // Valid JSON the one-pass reader does not read as it stands (a field
    // of the wrong type, or repeated): the general parser judges it, as it
    // would with "parameters" in the body.
    req = TensorRequest();
    error.clear();
    if (!ParseBinaryForm(body, body.size(), &req, &binary, &error)) {
      return bad_input(internal::BadRequest(request, error));
    }
  }
  const unlearning::DatasetInfo& dataset = engine_->dataset();
  std::vector<std::vector<float>> rows;
  if (!Rows(req, dataset, &rows, &error)) {
    return bad_input(internal::BadRequest(request, error));
  }
  const bool details = Details(who);
  std::vector<std::string> wanted;
  // "outputs": [] names none, as a gRPC request without outputs: all.
  if (!internal::WantedOutputs(!req.outputs.empty(), req.outputs,
                               internal::KnownOutputs(dataset, details),
                               &wanted, &error)) {
    return bad_input(internal::BadRequest(request, error));
  }
  const json id = req.id ? json(*req.id) : json(nullptr);
  auto batch = std::make_shared<internal::RowAnswers>(rows.size());
  auto shared_respond = std::make_shared<Respond>(std::move(respond));
  const unsigned version = request.version();
  const bool keep_alive = request.keep_alive();
  const std::string model = options_.model_name;
  const std::vector<std::string>* names = &dataset.class_names;
  // Called once per row; the last one answers.
  std::shared_ptr<metrics::EngineMetrics> metrics = engine_->metrics();
  // Copied into each row's callback: one shared copy.
  auto binary_outputs =
      std::make_shared<const BinaryOutputs>(std::move(binary));
  const int64_t input_ns = internal::NanosSince(start);
  auto finish = [batch, shared_respond, version, keep_alive, model, names,
                 wanted, details, id, binary_outputs, metrics, start, input_ns,
                 statistics = statistics_](std::size_t row,
                                           StatusOr<engine::Prediction> p) {
    if (!batch->Put(row, std::move(p))) return;
    const internal::Stopwatch::time_point output_start =
        internal::Stopwatch::now();
    internal::ModelStatistics::Timing timing;
    timing.input = input_ns;
    Request stub{http::verb::post, "/v2/infer", version};
    stub.keep_alive(keep_alive);
    const std::size_t n = batch->results.size();
    json labels = json::array(), decisions = json::array(),
         classes = json::array(), margins = json::array(),
         certificates = json::array();
    // The same outputs in binary (BinaryOutputs).
    std::string label_bytes, decision_bytes, class_bytes, margin_bytes;
    for (const auto& r : batch->results) {
      if (!r->ok()) {
        return (*shared_respond)(
            internal::ErrorResponse(stub, r->status(), *metrics));
      }
      const engine::Prediction& pr = r->value();
      timing.AddRow(pr);
      const std::string decision = certify::DecisionName(pr.decision);
      const std::string class_name = internal::ClassName(pr, *names);
      labels.push_back(pr.label);
      decisions.push_back(decision);
      classes.push_back(class_name);
      margins.push_back(pr.margin);
      Append<int64_t>(&label_bytes, pr.label);
      AppendBytes(&decision_bytes, decision);
      AppendBytes(&class_bytes, class_name);
      Append<int32_t>(&margin_bytes, static_cast<int32_t>(pr.margin));
      if (details) certificates.push_back(internal::CertificateJson(pr));
    }
    json outputs = json::array();
    std::string tensors;  // the binary outputs' bytes, in output order
    for (const std::string& name : wanted) {
      json o = {{"name", name},
                {"datatype", internal::OutputDatatype(name)},
                {"shape", {n}}};
      json* data = nullptr;
      const std::string* bytes = nullptr;
      if (name == "label") {
        data = &labels;
        bytes = &label_bytes;
      } else if (name == "decision") {
        data = &decisions;
        bytes = &decision_bytes;
      } else if (name == "class") {
        data = &classes;
        bytes = &class_bytes;
      } else {
        data = &margins;
        bytes = &margin_bytes;
      }
      if (binary_outputs->Wants(name)) {
        o["parameters"] = {{"binary_data_size", bytes->size()}};
        tensors += *bytes;
      } else {
        o["data"] = std::move(*data);
      }
      outputs.push_back(std::move(o));
    }
    json out = {{"model_name", model},
                {"model_version", "1"},
                {"outputs", std::move(outputs)}};
    if (!id.is_null()) out["id"] = id;
    if (details) out["parameters"] = {{"certificates", certificates}};
    Response res;
    if (tensors.empty()) {
      res = internal::JsonResponse(stub, http::status::ok, std::move(out));
    } else {
      const std::string header = JsonText(out);
      res = Response{http::status::ok, version};
      res.set(http::field::server, "eraser");
      res.set(http::field::content_type, "application/octet-stream");
      res.set("Inference-Header-Content-Length", std::to_string(header.size()));
      res.keep_alive(keep_alive);
      res.body() = header + tensors;
      res.prepare_payload();
    }
    timing.output = internal::NanosSince(output_start);
    timing.total = internal::NanosSince(start);
    statistics->Succeeded(timing, n);
    (*shared_respond)(std::move(res));
  };
  // A client's timeout bounds how long a row may wait parked for
  // unlearning (then it gets the fallback answer), below --max-wait.
  const Duration max_wait =
      binary_outputs->timeout_us
          ? std::chrono::duration_cast<Duration>(
                std::chrono::microseconds(*binary_outputs->timeout_us))
          : Duration::max();
  // Admitted whole or refused whole: a refused request costs no row's
  // work, and is answered once.
  const Status admitted =
      engine_->InferRowsAsync(std::move(rows), finish, max_wait);
  if (!admitted.ok()) {
    (*shared_respond)(internal::ErrorResponse(request, admitted, *metrics));
  }
}

}  // namespace eraser::serve
