#include "responses.h"

#include <algorithm>
#include <set>

#include "eraser/common/ascii.h"
#include "eraser/engine/engine.h"

namespace eraser::serve::internal {

namespace http = boost::beast::http;
using nlohmann::json;

Response JsonResponse(const Request& request, http::status status,
                      const json& body) {
  Response res{status, request.version()};
  res.set(http::field::server, "eraser");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(request.keep_alive());
  res.body() = JsonText(body);
  res.prepare_payload();
  return res;
}

http::status HttpStatusOf(const eraser::Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return http::status::bad_request;
    case StatusCode::kNotFound:
      return http::status::not_found;
    case StatusCode::kResourceExhausted:
      return http::status::too_many_requests;
    case StatusCode::kUnavailable:
      return http::status::service_unavailable;
    default:
      return http::status::internal_server_error;
  }
}

std::string_view RefusalReason(const eraser::Status& status,
                               bool writes_store) {
  switch (status.code()) {
    case StatusCode::kUnavailable:
      return engine::IsShuttingDown(status) ? "shutting_down"
                                            : "store_unavailable";
    case StatusCode::kResourceExhausted:
      return writes_store ? "disk_full" : "overloaded";
    default:
      return {};
  }
}

Response Refusal(const Request& request, http::status status,
                 std::string_view reason, const std::string& message,
                 metrics::EngineMetrics& metrics, json body) {
  metrics.HttpRefused(reason);
  body["error"] = message;
  body["reason"] = reason;
  Response res = JsonResponse(request, status, body);
  // How long a client waits before it tries again: a full disk needs an
  // operator, the rest passes by itself.
  res.set(http::field::retry_after,
          status == http::status::insufficient_storage ? "10" : "1");
  return res;
}

std::string HostName(const Request& request) {
  const auto host = request.find(http::field::host);
  std::string name = host == request.end() ? "" : std::string(host->value());
  name = !name.empty() && name.front() == '['
             ? name.substr(0, name.find(']') + 1)
             : name.substr(0, name.find(':'));
  return AsciiLowercase(name);
}

bool HostNamed(const Request& request,
               const std::vector<std::string>& allowed) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(),
                                      HostName(request)) != allowed.end();
}

bool HostAdmitted(const Request& request,
                  const std::vector<std::string>& allowed,
                  metrics::EngineMetrics& metrics, const Respond& respond) {
  if (HostNamed(request, allowed)) return true;
  const std::string name = HostName(request);
  // RFC 9112 3.2: an HTTP/1.1 request without Host is malformed (400); an
  // HTTP/1.0 one names no host, which no --allow-host name matches.
  if (request.version() >= 11 &&
      request.find(http::field::host) == request.end()) {
    respond(BadRequest(request, "the request has no Host header"));
    return false;
  }
  Response res =
      Refusal(request, http::status::misdirected_request, "misdirected",
              "this server does not answer for host '" + name.substr(0, 100) +
                  "' (--allow-host names more)",
              metrics);
  // Retrying the same request will not help.
  res.erase(http::field::retry_after);
  respond(std::move(res));
  return false;
}

Response ErrorResponse(const Request& request, const eraser::Status& status,
                       metrics::EngineMetrics& metrics) {
  const std::string_view reason = RefusalReason(status, false);
  if (!reason.empty()) {
    return Refusal(request, HttpStatusOf(status), reason, status.message(),
                   metrics);
  }
  return JsonError(request.version(), request.keep_alive(),
                   HttpStatusOf(status), status.message());
}

Response StorageErrorResponse(const Request& request,
                              const eraser::Status& status,
                              metrics::EngineMetrics& metrics) {
  if (status.code() != StatusCode::kResourceExhausted) {
    return ErrorResponse(request, status, metrics);
  }
  return Refusal(request, http::status::insufficient_storage,
                 RefusalReason(status, true), status.message(), metrics);
}

Respond HeadersOnly(Respond respond) {
  return [respond = std::move(respond)](Response res) {
    const std::size_t length = res.body().size();
    res.body().clear();
    res.content_length(length);
    respond(std::move(res));
  };
}

Response BadRequest(const Request& request, const std::string& message) {
  return JsonError(request.version(), request.keep_alive(),
                   http::status::bad_request, message);
}

bool ParseObject(const Request& request, json* out, std::string* error) {
  // nlohmann's parser stops at a NUL byte as at the end of the input, so
  // "{...}\0anything" would parse: a body holding one is not JSON.
  if (request.body().find('\0') != std::string::npos) {
    *error = "the body is not valid JSON (it holds a NUL byte)";
    return false;
  }
  // A key given twice: nlohmann keeps the last, a proxy or validator in
  // front may keep the first, and a deletion cannot be undone ({"sample":
  // 5, "sample": 6} deleted sample 6).
  std::vector<std::set<std::string>> keys;
  std::string repeated;
  const json::parser_callback_t note_keys = [&](int, json::parse_event_t event,
                                                json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second &&
        repeated.empty()) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  // With exceptions, to tell a number beyond a double's range (valid JSON
  // that no number here could use) from a syntax error.
  try {
    *out = json::parse(request.body(), note_keys);
  } catch (const json::out_of_range&) {
    *error = "the body holds a number beyond the double range";
    return false;
  } catch (const json::exception&) {
    *error = "the body is not valid JSON";
    return false;
  }
  if (!repeated.empty()) {
    *error = "the key '" + repeated.substr(0, 64) + "' appears twice";
    return false;
  }
  if (!out->is_object()) {
    *error = "the body must be a JSON object";
    return false;
  }
  return true;
}

bool GetId(const json& body, const char* key, uint64_t* out) {
  const json& v = body.at(key);
  // Ids are u64: nlohmann reads 2^63 and above as unsigned, and
  // is_number_integer() is true for unsigned numbers too.
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (!v.is_number_integer() || v.get<int64_t>() < 0) return false;
  *out = static_cast<uint64_t>(v.get<int64_t>());
  return true;
}

}  // namespace eraser::serve::internal
