// Responses and body helpers shared by the API's routes (api.cc, oip.cc).
#ifndef ERASER_SERVE_SRC_RESPONSES_H_
#define ERASER_SERVE_SRC_RESPONSES_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "eraser/common/status.h"
#include "eraser/metrics/engine_metrics.h"
#include "eraser/serve/http_server.h"

namespace eraser::serve::internal {

// A JSON response with `status` and `body`.
Response JsonResponse(const Request& request, boost::beast::http::status status,
                      const nlohmann::json& body);
// 400, 404, 429 (with Retry-After), 503 or 500 by the status's code.
boost::beast::http::status HttpStatusOf(const eraser::Status& status);
// Why a call was refused for now, for a client (the "reason" of the body)
// and for eraser_http_refused_total{reason}: kUnavailable is
// "shutting_down" (engine::IsShuttingDown) or "store_unavailable";
// kResourceExhausted is "disk_full" for a call that writes the store and
// "overloaded" (the inference queue) otherwise. Empty for other errors.
std::string_view RefusalReason(const eraser::Status& status, bool writes_store);
// {"error": message} with the status code of HttpStatusOf; a refusal also
// carries {"reason": RefusalReason(...)} and is counted on `metrics`.
Response ErrorResponse(const Request& request, const eraser::Status& status,
                       metrics::EngineMetrics& metrics);
// For calls that write the store (deletions, drains): kResourceExhausted
// there is a full disk, not load: 507, so that a client does not take it
// for a busy server.
Response StorageErrorResponse(const Request& request,
                              const eraser::Status& status,
                              metrics::EngineMetrics& metrics);
// A refusal with `status` (429, 503 or 507), `body` extended with
// {"error": message, "reason": reason}, counted on `metrics`.
Response Refusal(const Request& request, boost::beast::http::status status,
                 std::string_view reason, const std::string& message,
                 metrics::EngineMetrics& metrics,
                 nlohmann::json body = nlohmann::json::object());
Response BadRequest(const Request& request, const std::string& message);
// `respond` for a HEAD request answered as its GET: the same status and
// headers, Content-Length the GET body's, no body (RFC 9110 9.3.2).
Respond HeadersOnly(Respond respond);
// The host name a request's Host header gives, lowercase, without its port
// ("[::1]:8080" -> "[::1]"); "" without one.
std::string HostName(const Request& request);
// Whether `allowed` (empty: any host) names the request's Host.
bool HostNamed(const Request& request, const std::vector<std::string>& allowed);
// HostNamed; if not, the 421 refusal (reason "misdirected") is sent to
// `respond`.
bool HostAdmitted(const Request& request,
                  const std::vector<std::string>& allowed,
                  metrics::EngineMetrics& metrics, const Respond& respond);
// A JSON object body, or false with a message.
bool ParseObject(const Request& request, nlohmann::json* out,
                 std::string* error);
// A non-negative integer field of `body` (which has `key`).
bool GetId(const nlohmann::json& body, const char* key, uint64_t* out);

}  // namespace eraser::serve::internal

#endif  // ERASER_SERVE_SRC_RESPONSES_H_
