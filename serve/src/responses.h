// Responses and body helpers shared by the API's routes (api.cc, oip.cc).
#ifndef ERASER_SERVE_SRC_RESPONSES_H_
#define ERASER_SERVE_SRC_RESPONSES_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "eraser/common/status.h"
#include "eraser/serve/http_server.h"

namespace eraser::serve::internal {

// A JSON response with `status` and `body`.
Response JsonResponse(const Request& request, boost::beast::http::status status,
                      const nlohmann::json& body);
// 400, 404, 429 (with Retry-After), 503 or 500 by the status's code.
boost::beast::http::status HttpStatusOf(const eraser::Status& status);
Response ErrorResponse(const Request& request, const eraser::Status& status);
// For calls that write the store (deletions, drains): kResourceExhausted
// there is a full disk, not load: 507, so that a client does not take it
// for a busy server.
Response StorageErrorResponse(const Request& request,
                              const eraser::Status& status);
Response BadRequest(const Request& request, const std::string& message);
// A JSON object body, or false with a message.
bool ParseObject(const Request& request, nlohmann::json* out,
                 std::string* error);
// A non-negative integer field of `body` (which has `key`).
bool GetId(const nlohmann::json& body, const char* key, uint64_t* out);

}  // namespace eraser::serve::internal

#endif  // ERASER_SERVE_SRC_RESPONSES_H_
