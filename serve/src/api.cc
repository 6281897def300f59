#include "eraser/serve/api.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "eraser/common/ascii.h"
#include "eraser/datasets/encoding.h"
#include "model_statistics.h"
#include "refusal_log.h"
#include "responses.h"

namespace eraser::serve {
namespace {

namespace http = boost::beast::http;
using internal::BadRequest;
using internal::ErrorResponse;
using internal::GetId;
using internal::JsonResponse;
using internal::ParseObject;
using internal::StorageErrorResponse;
using nlohmann::json;

std::string Iso8601(TimePoint t) {
  const int64_t micros = ToUnixMicros(t);
  const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[80];  // room for any int the compiler cannot bound
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(micros / 1000 % 1000));
  return buf;
}

// An answer; the certificate details (which shards hold pending deletions,
// the deletion watermark, model versions, the margin) only with `details`:
// they are a side channel on who asked to be forgotten.
json PredictionJson(const engine::Prediction& p,
                    const std::vector<std::string>& class_names, bool details) {
  json body = {{"request_id", p.request_id},
               {"label", p.label},
               {"decision", certify::DecisionName(p.decision)},
               {"latency_ms", p.latency_seconds * 1e3},
               {"queue_ms", p.queue_seconds * 1e3},
               {"compute_ms", p.compute_seconds * 1e3},
               {"wait_ms", p.wait_seconds * 1e3}};
  if (details) {
    json affected = json::array();
    for (ShardId s : p.affected) affected.push_back(s.value());
    body["margin"] = p.margin;
    body["affected_shards"] = affected;
    body["model_versions"] = p.model_versions;
    if (!p.prefix_stages.empty()) body["prefix_stages"] = p.prefix_stages;
    body["deletion_watermark"] = p.deletion_watermark;
  }
  if (p.label >= 0 && static_cast<std::size_t>(p.label) < class_names.size()) {
    body["class"] = class_names[p.label];
  }
  return body;
}

json DeletionJson(const engine::DeletionInfo& info) {
  json shards = json::array();
  for (ShardId s : info.shards) shards.push_back(s.value());
  json body = {
      {"seq", info.seq.value()},
      {"state",
       info.state == storage::DeletionState::kApplied ? "applied" : "pending"},
      {"target", info.target.ToString()},
      {"samples", info.samples},
      {"shards", shards},
      {"arrival", Iso8601(info.arrival)},
      {"arrival_unix_ms", ToUnixMicros(info.arrival) / 1000}};
  // The first model version of each shard that leaves it out: what an
  // exposure check outside the engine compares answers' versions with.
  json excluded = json::array();
  for (const auto& [shard, version] : info.excluded_from) {
    excluded.push_back({{"shard", shard.value()}, {"version", version}});
  }
  body["excluded_from"] = excluded;
  if (info.applied) {
    body["applied"] = Iso8601(*info.applied);
    body["applied_unix_ms"] = ToUnixMicros(*info.applied) / 1000;
    body["delay_ms"] =
        std::chrono::duration<double, std::milli>(*info.applied - info.arrival)
            .count();
  }
  return body;
}

std::string_view View(boost::beast::string_view v) {
  return {v.data(), v.size()};
}

// Whether `name` is a numeric or categorical column of the table.
bool IsFeatureColumn(const datasets::TabularEncoding& encoding,
                     const std::string& name) {
  for (const datasets::ColumnEncoding& c : encoding.columns()) {
    if (c.name == name) return c.is_feature();
  }
  return false;
}

// A record's value as the CSV text it stands for.
std::string RecordValue(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_null()) return "";
  return v.dump();  // shortest round-trip text of a float
}

// The request target's path, without its query.
std::string PathOf(const Request& request) {
  const std::string target(request.target());
  return target.substr(0, target.find('?'));
}

// Routes that answer without a token and whatever the Host.
bool HealthPath(const std::string& path) {
  return path == "/healthz" || path == "/readyz" || path == "/v2/health/live" ||
         path == "/v2/health/ready";
}

}  // namespace

Api::Api(engine::Engine* engine, ApiOptions options)
    : engine_(engine),
      options_(std::move(options)),
      refusal_log_(std::make_unique<internal::RefusalLog>(
          SystemClock::Default(), std::chrono::seconds(10))),
      statistics_(std::make_shared<internal::ModelStatistics>()) {}

bool Api::Features(const json& body, std::vector<float>* features,
                   std::string* error) const {
  const int given = static_cast<int>(body.contains("features")) +
                    static_cast<int>(body.contains("test_index")) +
                    static_cast<int>(body.contains("record"));
  if (given != 1 || body.size() != 1) {
    *error =
        "give exactly one of \"features\", \"test_index\" and \"record\", "
        "and nothing else";
    return false;
  }
  const unlearning::DatasetInfo& dataset = engine_->dataset();
  if (body.contains("features")) {
    const json& f = body["features"];
    if (!f.is_array()) {
      *error = "\"features\" must be an array";
      return false;
    }
    features->reserve(f.size());
    for (const json& v : f) {
      if (!v.is_number()) {
        *error = "\"features\" must hold only numbers";
        return false;
      }
      const double d = v.get<double>();
      if (!(std::fabs(d) <= std::numeric_limits<float>::max())) {
        *error = "feature " + std::to_string(features->size()) +
                 " is outside the float range";
        return false;
      }
      features->push_back(static_cast<float>(d));
    }
    return true;
  }
  if (body.contains("record")) {
    const json& r = body["record"];
    if (dataset.encoding == nullptr) {
      *error =
          "\"record\" needs a data directory built from a CSV file; "
          "send \"features\"";
      return false;
    }
    if (!r.is_object()) {
      *error = "\"record\" must be an object of column name to value";
      return false;
    }
    std::map<std::string, std::string> record;
    for (const auto& [name, value] : r.items()) {
      if (value.is_object() || value.is_array()) {
        *error = "record column '" + name +
                 "' must be a string, a number or a boolean";
        return false;
      }
      // Missing values are refused at ingest, so a feature may not be null
      // here; columns that are no features are not read, as with values.
      if (value.is_null() && IsFeatureColumn(*dataset.encoding, name)) {
        *error = "record column '" + name +
                 "' is null: every feature column needs a value";
        return false;
      }
      record[name] = RecordValue(value);
    }
    StatusOr<std::vector<float>> encoded =
        dataset.encoding->EncodeRecord(record);
    if (!encoded.ok()) {
      *error = "record: " + encoded.status().message();
      return false;
    }
    *features = std::move(encoded).value();
    return true;
  }
  uint64_t index = 0;
  if (!GetId(body, "test_index", &index)) {
    *error = "\"test_index\" must be a non-negative integer";
    return false;
  }
  // Out of range, or erased by a deletion of its owner.
  StatusOr<std::vector<float>> sample = engine_->TestSample(index);
  if (!sample.ok()) {
    *error = sample.status().message();
    return false;
  }
  *features = std::move(sample).value();
  return true;
}

Api::~Api() { Join(); }

void Api::Join() {
  blocking_.join();
  drains_.join();
}

bool Api::Details(const Principal& who) const {
  return who.admin || options_.expose_certificates;
}

Api::Caller Api::Identify(const Request& request,
                          std::shared_ptr<const TokenFile>* hold) const {
  std::vector<std::string_view> values;
  for (const auto& field : request) {
    if (field.name() != http::field::authorization) continue;
    values.emplace_back(field.value().data(), field.value().size());
  }
  return Identify(values, hold);
}

Api::Caller Api::Identify(const std::vector<std::string_view>& authorization,
                          std::shared_ptr<const TokenFile>* hold) const {
  // Without a token file every caller may do everything (loopback only,
  // unless the operator said --insecure).
  static const Principal* const kEveryone = [] {
    auto* p = new Principal();
    p->name = "anyone";
    p->admin = true;
    return p;
  }();
  if (options_.auth == nullptr) return {kEveryone, {}};
  if (authorization.empty()) return {nullptr, "no bearer token"};
  // Two credentials are ambiguous: a proxy and a client may disagree on
  // which one counts.
  if (authorization.size() > 1) {
    return {nullptr, "more than one Authorization header"};
  }
  const std::string_view value = authorization.front();
  // The scheme is case-insensitive (RFC 7235); one or more spaces, then
  // the token.
  constexpr std::string_view kBearer = "bearer ";
  std::string_view token = value.substr(std::min(value.size(), kBearer.size()));
  token.remove_prefix(std::min(token.size(), token.find_first_not_of(' ')));
  if (token.empty() || !StartsWithIgnoringAsciiCase(value, kBearer)) {
    return {nullptr, "not a bearer token"};
  }
  *hold = options_.auth->tokens();
  const Principal* who = (*hold)->Find(token);
  return {who, who == nullptr ? "an unknown bearer token" : ""};
}

const Principal* Api::Authenticate(const Request& request,
                                   const Respond& respond,
                                   std::shared_ptr<const TokenFile>* hold) {
  const Caller caller = Identify(request, hold);
  if (caller.who != nullptr) return caller.who;
  const bool ambiguous = caller.problem == "more than one Authorization header";
  engine_->metrics()->HttpRefused("unauthenticated");
  // Logged without the token, as a rate-limited summary.
  refusal_log_->Note(ambiguous ? 400 : 401, "unauthenticated",
                     View(http::to_string(request.method())),
                     View(request.target()), caller.problem);
  if (ambiguous) {
    respond(BadRequest(request, "send one Authorization header"));
    return nullptr;
  }
  Response res = JsonError(request.version(), request.keep_alive(),
                           http::status::unauthorized,
                           "a valid bearer token is required (Authorization: "
                           "Bearer <token>)");
  res.set(http::field::www_authenticate, "Bearer realm=\"eraser\"");
  respond(std::move(res));
  return nullptr;
}

std::optional<Response> Api::Screen(const Request& header) {
  // A CORS preflight is answered by Handle, with its body read (browsers
  // send no Expect).
  if (header.method() == http::verb::options) return std::nullopt;
  std::optional<Response> refusal;
  const Respond keep = [&refusal](Response res) { refusal = std::move(res); };
  const bool health = HealthPath(PathOf(header));
  if (!Admitted(header, health, keep)) return refusal;
  std::shared_ptr<const TokenFile> hold;
  if (!health && Authenticate(header, keep, &hold) == nullptr) return refusal;
  return std::nullopt;
}

bool Api::Admitted(const Request& request, bool health,
                   const Respond& respond) {
  metrics::EngineMetrics& metrics = *engine_->metrics();
  // Health answers any Host: load balancers probe a pod by its address,
  // or over HTTP/1.0 without one, and readiness tells a page nothing it
  // could use (its detail needs an admin caller and a Host the server
  // answers for: Readyz).
  if (!health && !internal::HostAdmitted(request, options_.allowed_hosts,
                                         metrics, respond)) {
    return false;
  }
  // Without an Origin, an OPTIONS is no preflight: it is routed, and the
  // route's 405 says which methods it allows.
  const auto origin = request.find(http::field::origin);
  if (origin == request.end()) return true;
  const std::string from(origin->value());
  if (std::find(options_.allowed_origins.begin(),
                options_.allowed_origins.end(),
                from) == options_.allowed_origins.end()) {
    Response res = internal::Refusal(
        request, http::status::forbidden, "origin",
        "requests from origin '" + from.substr(0, 100) +
            "' are not allowed (--allow-origin names the allowed ones)",
        metrics);
    res.erase(http::field::retry_after);
    respond(std::move(res));
    return false;
  }
  if (request.method() != http::verb::options) return true;
  // A CORS preflight of an allowed origin.
  Response res{http::status::no_content, request.version()};
  res.set(http::field::server, "eraser");
  res.set(http::field::access_control_allow_origin, from);
  res.set(http::field::access_control_allow_methods, "GET, HEAD, POST");
  // Inference-Header-Content-Length: the binary tensor data extension.
  res.set(http::field::access_control_allow_headers,
          "Authorization, Content-Type, Inference-Header-Content-Length");
  res.set(http::field::access_control_max_age, "600");
  res.set(http::field::vary, "Origin");
  res.keep_alive(request.keep_alive());
  res.prepare_payload();
  respond(std::move(res));
  return false;
}

bool Api::JsonBody(const Request& request, const Respond& respond,
                   bool undeclared_ok, bool octet_ok) {
  // A compressed body would be read as its compressed bytes: RFC 9110
  // 8.4.1's 415 for a content coding the server does not decode.
  for (const auto& field : request) {
    if (field.name() != http::field::content_encoding) continue;
    if (EqualsIgnoringAsciiCase(View(field.value()), "identity")) continue;
    Response res = JsonError(
        request.version(), request.keep_alive(),
        http::status::unsupported_media_type,
        "Content-Encoding '" + std::string(field.value()).substr(0, 40) +
            "' is not decoded here: send the body uncompressed");
    res.set(http::field::accept_encoding, "identity");
    respond(std::move(res));
    return false;
  }
  const auto type = request.find(http::field::content_type);
  if (type == request.end() && undeclared_ok) return true;
  std::string media = type == request.end() ? "" : std::string(type->value());
  media = media.substr(0, media.find(';'));
  media.erase(media.find_last_not_of(" \t") + 1);
  media = AsciiLowercase(media);
  if (media == "application/json") return true;
  // A browser sends a "simple" cross-origin POST (text/plain, a form)
  // without a preflight: refusing every other type keeps pages of other
  // sites from making deletions (their Origin is refused too).
  // application/octet-stream is not one of those.
  if (octet_ok && media == "application/octet-stream") return true;
  respond(JsonError(request.version(), request.keep_alive(),
                    http::status::unsupported_media_type,
                    "the body must be JSON: send Content-Type: "
                    "application/json"));
  return false;
}

void Api::NoteRefusal(int status, std::string_view reason,
                      std::string_view method, std::string_view path,
                      std::string_view detail) {
  refusal_log_->Note(status, reason, method, path, detail);
}

void Api::Forbid(const Request& request, const Principal& who,
                 const std::string& what, const Respond& respond) {
  engine_->metrics()->HttpRefused("forbidden");
  refusal_log_->Note(403, "forbidden", View(http::to_string(request.method())),
                     View(request.target()),
                     "token '" + who.name + "' may not " + what);
  respond(JsonError(request.version(), request.keep_alive(),
                    http::status::forbidden,
                    "this token's scopes do not allow you to " + what));
}

void Api::Handle(Request request, Respond respond) {
  // HEAD is a GET without the body (RFC 9110 9.3.2): routed as the GET,
  // answered with its headers (Content-Length included) only, refusals
  // too (a body after a HEAD's answer would be read as the next answer).
  if (request.method() == http::verb::head) {
    request.method(http::verb::get);
    respond = internal::HeadersOnly(std::move(respond));
  }
  const std::string path = PathOf(request);
  const bool health = HealthPath(path);
  if (!Admitted(request, health, respond)) return;
  // An allowed origin's page may read the answer (CORS).
  if (const auto origin = request.find(http::field::origin);
      origin != request.end()) {
    respond = [respond = std::move(respond),
               from = std::string(origin->value())](Response res) {
      res.set(http::field::access_control_allow_origin, from);
      // A binary answer is framed by this header; the page must read it.
      res.set(http::field::access_control_expose_headers,
              "Inference-Header-Content-Length");
      res.set(http::field::vary, "Origin");
      respond(std::move(res));
    };
  }
  const http::verb method = request.method();
  auto only = [&](http::verb allowed) {
    if (method == allowed) return true;
    Response res = JsonError(
        request.version(), request.keep_alive(),
        http::status::method_not_allowed,
        std::string(http::to_string(method)) + " is not allowed on " + path);
    res.set(http::field::allow, allowed == http::verb::get
                                    ? "GET, HEAD"
                                    : http::to_string(allowed));
    respond(std::move(res));
    return false;
  };
  // Health needs no token: load balancers and orchestrators probe it.
  if (path == "/healthz") {
    if (only(http::verb::get)) {
      respond(JsonResponse(request, http::status::ok, {{"status", "ok"}}));
    }
    return;
  }
  if (path == "/readyz") {
    if (only(http::verb::get)) Readyz(request, std::move(respond));
    return;
  }
  if (path == "/v2/health/live" || path == "/v2/health/ready") {
    if (HandleV2(request, path, nullptr, respond)) return;
  }
  std::shared_ptr<const TokenFile> hold;
  const Principal* who = Authenticate(request, respond, &hold);
  if (who == nullptr) return;
  if (HandleV2(request, path, who, respond)) return;
  if (path == "/v1/infer") {
    if (only(http::verb::post)) Infer(request, *who, std::move(respond));
  } else if (path == "/v1/deletions") {
    if (only(http::verb::post)) Delete(request, *who, std::move(respond));
  } else if (path.rfind("/v1/deletions/", 0) == 0) {
    if (only(http::verb::get)) {
      DeletionStatus(request, *who, path.substr(14), std::move(respond));
    }
  } else if (path == "/v1/drain") {
    if (!only(http::verb::post)) return;
    if (!who->admin) return Forbid(request, *who, "drain", respond);
    Drain(request, std::move(respond));
  } else {
    respond(JsonError(request.version(), request.keep_alive(),
                      http::status::not_found, "no route " + path));
  }
}

void Api::Readyz(const Request& request, Respond respond) {
  // Health needs no token; what unlearning is doing (rates, deadlines,
  // failures) goes to admin callers only: it tells about deletions. And
  // only under a Host the server answers for: without a token file every
  // caller is admin, and a page of another site whose name now resolves
  // to 127.0.0.1 (DNS rebinding) sends its own name.
  std::shared_ptr<const TokenFile> hold;
  const Caller caller = Identify(request, &hold);
  const bool detail = caller.who != nullptr && caller.who->admin &&
                      internal::HostNamed(request, options_.allowed_hosts);
  if (draining_) {
    return respond(internal::Refusal(request, http::status::service_unavailable,
                                     "shutting_down", "shutting down",
                                     *engine_->metrics()));
  }
  // Degraded: still serving, but unlearning is overloaded (answers degrade
  // to keep deadlines), retrainings are failing, an erasure is owed, or the
  // store refuses writes (a full disk: deletions get 507); a load balancer
  // may prefer another replica.
  const engine::EngineStats stats = engine_->Stats();
  if (!stats.lease_held) {
    // A replica without its lease refuses every answer: send traffic to
    // another until it has renewed it and caught up.
    return respond(internal::Refusal(request, http::status::service_unavailable,
                                     "store_unavailable",
                                     "this replica holds no lease on the "
                                     "shared store",
                                     *engine_->metrics()));
  }
  const scheduler::Capacity& c = stats.capacity;
  const bool degraded = c.overloaded || !stats.backing_off.empty() ||
                        stats.erasure_owed ||
                        !stats.store_refusing_writes.empty();
  json backing_off = json::array();
  for (ShardId s : stats.backing_off) backing_off.push_back(s.value());
  if (!detail) {
    return respond(JsonResponse(request, http::status::ok,
                                {{"status", degraded ? "degraded" : "ready"}}));
  }
  respond(JsonResponse(
      request, http::status::ok,
      {{"status", degraded ? "degraded" : "ready"},
       {"shards", engine_->num_shards()},
       {"policy", engine_->policy()},
       {"unlearning",
        {{"offered_deletions_per_second", c.offered_per_second},
         {"sustainable_deletions_per_second", c.sustainable_per_second},
         {"overloaded", c.overloaded},
         {"deadlines_at_risk", c.deadlines_at_risk},
         {"deadline_misses", stats.deadline_misses},
         {"retrain_failures", stats.retrain_failures},
         {"last_retrain_failure", stats.last_retrain_failure},
         {"shards_backing_off", backing_off},
         {"erasure_owed", stats.erasure_owed},
         {"store_refusing_writes", stats.store_refusing_writes}}},
       {"planning",
        {{"train_seconds_per_sample_epoch",
          stats.planning.model_cost.train_seconds_per_sample_epoch},
         {"infer_seconds_per_row",
          stats.planning.model_cost.infer_seconds_per_row},
         {"ensemble_infer_seconds_per_row",
          stats.planning.model_cost.ensemble_infer_seconds_per_row},
         {"initial_seconds_per_sample_epoch",
          stats.planning.initial_seconds_per_sample_epoch},
         {"retrainings_measured", stats.planning.retrainings_measured},
         {"whole_shard_retrain_seconds",
          stats.planning.whole_shard_retrain_seconds},
         {"slots", stats.planning.slots},
         {"borrowable_slots", stats.planning.borrowable_slots},
         {"idle_cores", stats.planning.idle_cores}}}}));
}

void Api::Infer(const Request& request, const Principal& who, Respond respond) {
  if (!who.MayInfer()) return Forbid(request, who, "infer", respond);
  const internal::Stopwatch::time_point start = internal::Stopwatch::now();
  respond = internal::CountingFailures(std::move(respond), statistics_, start);
  if (!JsonBody(request, respond)) return;
  // A request refused before the engine sees it (the engine counts its
  // own refusals): a bad input, as the engine would count it.
  auto bad_input = [&](const std::string& error) {
    engine_->metrics()->Refused("bad_input");
    respond(BadRequest(request, error));
  };
  json body;
  std::string error;
  if (!ParseObject(request, &body, &error)) return bad_input(error);
  std::vector<float> features;
  if (!Features(body, &features, &error)) return bad_input(error);
  // The request is answered on the engine's thread; `respond` posts the
  // response back to the connection.
  const unsigned version = request.version();
  const bool keep_alive = request.keep_alive();
  auto shared_respond = std::make_shared<Respond>(respond);
  const std::vector<std::string>* names = &engine_->dataset().class_names;
  const bool details = Details(who);
  std::shared_ptr<metrics::EngineMetrics> metrics = engine_->metrics();
  const int64_t input_ns = internal::NanosSince(start);
  const eraser::Status admitted = engine_->InferAsync(
      std::move(features),
      [version, keep_alive, shared_respond, names, details, metrics, start,
       input_ns, statistics = statistics_](StatusOr<engine::Prediction> p) {
        Request stub{http::verb::post, "/v1/infer", version};
        stub.keep_alive(keep_alive);
        if (!p.ok()) {
          return (*shared_respond)(ErrorResponse(stub, p.status(), *metrics));
        }
        if (p->decision == certify::Decision::kRejected) {
          return (*shared_respond)(internal::Refusal(
              stub, http::status::service_unavailable, "no_certified_answer",
              "no certified answer now (policy rule reject, or the maximum "
              "wait passed with every shard affected); retry later",
              *metrics, PredictionJson(*p, *names, details)));
        }
        const internal::Stopwatch::time_point output_start =
            internal::Stopwatch::now();
        Response res = JsonResponse(stub, http::status::ok,
                                    PredictionJson(*p, *names, details));
        internal::ModelStatistics::Timing timing;
        timing.input = input_ns;
        timing.queue = internal::Nanos(p->queue_seconds + p->wait_seconds);
        timing.infer = internal::Nanos(p->compute_seconds);
        timing.output = internal::NanosSince(output_start);
        timing.total = internal::NanosSince(start);
        statistics->Succeeded(timing, 1);
        (*shared_respond)(std::move(res));
      });
  if (!admitted.ok()) {
    (*shared_respond)(ErrorResponse(request, admitted, *metrics));
  }
}

void Api::Delete(const Request& request, const Principal& who,
                 Respond respond) {
  if (!JsonBody(request, respond)) return;
  json body;
  std::string error;
  if (!ParseObject(request, &body, &error)) {
    return respond(BadRequest(request, error));
  }
  const bool sample = body.contains("sample");
  const bool owner = body.contains("owner");
  uint64_t id = 0;
  if (sample == owner || body.size() != 1 ||
      !GetId(body, sample ? "sample" : "owner", &id)) {
    return respond(BadRequest(
        request,
        "expected {\"sample\": id} or {\"owner\": id} with a non-negative "
        "integer id"));
  }
  if (sample ? !who.MayDeleteSample() : !who.MayDeleteOwner(id)) {
    return Forbid(request, who,
                  std::string("delete ") + (sample ? "sample " : "owner ") +
                      std::to_string(id),
                  respond);
  }
  const storage::DeletionTarget target =
      sample ? storage::DeletionTarget::Sample(SampleId(id))
             : storage::DeletionTarget::Owner(OwnerId(id));
  boost::asio::post(
      blocking_, [this, request, target, respond = std::move(respond)] {
        // Returns only once the request is durable.
        StatusOr<DeletionSeq> seq = engine_->RequestDeletion(target);
        if (!seq.ok()) {
          return respond(
              StorageErrorResponse(request, seq.status(), *engine_->metrics()));
        }
        StatusOr<engine::DeletionInfo> info = engine_->GetDeletion(*seq);
        json out = {{"seq", seq->value()}, {"state", "pending"}};
        if (info.ok()) out = DeletionJson(*info);
        respond(JsonResponse(request, http::status::accepted, out));
      });
}

void Api::DeletionStatus(const Request& request, const Principal& who,
                         const std::string& seq_text, Respond respond) {
  if (!who.admin && !who.delete_any && who.owners.empty()) {
    return Forbid(request, who, "read deletion requests", respond);
  }
  if (seq_text.empty() || seq_text.size() > 19 ||
      seq_text.find_first_not_of("0123456789") != std::string::npos) {
    return respond(BadRequest(request,
                              "the sequence number must be a "
                              "non-negative integer"));
  }
  const DeletionSeq seq(std::stoull(seq_text));
  boost::asio::post(blocking_, [this, request, seq, who,
                                respond = std::move(respond)] {
    StatusOr<engine::DeletionInfo> info = engine_->GetDeletion(seq);
    // A deletion the token could not have made reads as absent: a
    // sequence number alone tells nothing about who asked to be forgotten.
    const bool readable =
        info.ok() &&
        (who.admin || who.delete_any ||
         (info->target.kind == storage::DeletionTarget::Kind::kOwner &&
          who.owners.count(info->target.id) > 0));
    if (!readable) {
      if (!info.ok() && info.status().code() != StatusCode::kNotFound) {
        return respond(
            ErrorResponse(request, info.status(), *engine_->metrics()));
      }
      return respond(ErrorResponse(
          request, NotFoundError("no deletion " + std::to_string(seq.value())),
          *engine_->metrics()));
    }
    respond(JsonResponse(request, http::status::ok, DeletionJson(*info)));
  });
}

void Api::Drain(const Request& request, Respond respond) {
  boost::asio::post(drains_, [this, request, respond = std::move(respond)] {
    const eraser::Status drained = engine_->Drain();
    if (!drained.ok()) {
      return respond(
          StorageErrorResponse(request, drained, *engine_->metrics()));
    }
    respond(JsonResponse(
        request, http::status::ok,
        {{"pending_deletions", engine_->Stats().pending_deletions}}));
  });
}

Handler MetricsHandler(std::shared_ptr<metrics::EngineMetrics> metrics,
                       std::vector<std::string> allowed_hosts) {
  return [metrics, allowed_hosts = std::move(allowed_hosts)](Request request,
                                                             Respond respond) {
    if (request.method() == http::verb::head) {
      request.method(http::verb::get);
      respond = internal::HeadersOnly(std::move(respond));
    }
    const std::string target(request.target());
    const std::string path = target.substr(0, target.find('?'));
    // Liveness tells nothing: probes that name the pod's address pass.
    if (path == "/healthz" || path == "/v2/health/live") {
      Response res{http::status::ok, request.version()};
      res.set(http::field::server, "eraser");
      res.keep_alive(request.keep_alive());
      res.prepare_payload();
      return respond(std::move(res));
    }
    // A page whose name was rebound to this address must not read the
    // metrics (DNS rebinding), as on the main listener.
    if (!internal::HostAdmitted(request, allowed_hosts, *metrics, respond)) {
      return;
    }
    if (path != "/metrics") {
      return respond(JsonError(request.version(), request.keep_alive(),
                               http::status::not_found, "try /metrics"));
    }
    if (request.method() != http::verb::get) {
      Response res =
          JsonError(request.version(), request.keep_alive(),
                    http::status::method_not_allowed, "use GET /metrics");
      res.set(http::field::allow, "GET, HEAD");
      return respond(std::move(res));
    }
    Response res{http::status::ok, request.version()};
    res.set(http::field::server, "eraser");
    res.set(http::field::content_type, metrics::EngineMetrics::kContentType);
    res.keep_alive(request.keep_alive());
    res.body() = metrics->TextExposition();
    res.prepare_payload();
    respond(std::move(res));
  };
}

}  // namespace eraser::serve
