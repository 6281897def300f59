// The HTTP API of `eraser serve`, mapped onto the engine's public interface.
//
// eraser's own JSON routes:
//   POST /v1/infer            {"features": [...]}, {"test_index": n} or,
//                             for tabular data, {"record": {column: value}}
//   POST /v1/deletions        {"sample": id} or {"owner": id}   -> 202
//   GET  /v1/deletions/{seq}
//   POST /v1/drain            unlearn everything pending now
//   GET  /healthz, /readyz
// The Open Inference Protocol (KServe v2) over REST, model name
// ApiOptions::model_name (docs/serve.md has the mapping):
//   GET  /v2, /v2/health/live, /v2/health/ready
//   GET  /v2/models/{name}, /v2/models/{name}/ready,
//        /v2/models/{name}/config, /v2/models[/{name}]/stats
//   POST /v2/models/{name}/infer
//
// Errors are {"error": message}: 400 malformed body or wrong feature count,
// 401 no or an unknown bearer token, 403 a token whose scopes do not allow
// the call, 404 unknown sample, owner, sequence, model or route (also a
// deletion the token may not read: a sequence number alone reveals
// nothing), 405 wrong method, 413 body too large, 429 queue full, 503
// the store cannot be reached, shutting down or no certified answer (the
// `reject` rule, or a request that waited max_wait with every shard
// affected), 507 a deletion the full disk cannot log (not acknowledged).
// A 429, 503 or 507 also carries {"reason": ...}, one of
// metrics::kHttpRefusedLabels, counted in eraser_http_refused_total.
//
// Access control (ApiOptions::auth, docs/serve.md): with a token file every
// route but the health routes needs a bearer token with the right scope
// (eraser/serve/auth.h). Certificate details (affected shards, deletion
// watermark, model versions, margin) go only to `admin` tokens, or to
// everyone with expose_certificates or without a token file.
#ifndef ERASER_SERVE_API_H_
#define ERASER_SERVE_API_H_

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/engine/engine.h"
#include "eraser/serve/auth.h"
#include "eraser/serve/http_server.h"

namespace eraser::serve {

namespace internal {
class ModelStatistics;
class RefusalLog;
}  // namespace internal

struct ApiOptions {
  // The model's name in the /v2 routes.
  std::string model_name = "eraser";
  // The token file in force; null: no access control (eraser serve then
  // listens on loopback only, unless --insecure). Not owned.
  const Authenticator* auth = nullptr;
  // Certificate details to every caller, not only to admin tokens.
  bool expose_certificates = false;
  // The host names a request's Host header may give (the port after a colon
  // is not compared): others get 421, so that a page whose host name an
  // attacker points at 127.0.0.1 (DNS rebinding) reaches nothing. Empty:
  // any (a server listening on every address, behind tokens).
  std::vector<std::string> allowed_hosts;
  // The origins (scheme://host[:port]) whose browser requests are allowed,
  // with CORS preflights answered for them; a request from another origin
  // gets 403. None by default: a page of any site cannot reach the API.
  std::vector<std::string> allowed_origins;
};

class Api {
 public:
  // `engine` must outlive the Api. {"test_index": n} names a sample of the
  // data directory's test split; {"record": ...} is encoded with its
  // tabular encoding; answers name the class when the dataset has names.
  explicit Api(engine::Engine* engine, ApiOptions options = {});
  // Waits for slow work handed to its own threads (Join).
  ~Api();
  // Waits for the work handed to its own threads (deletions, status reads,
  // drains) to finish, and takes no more. Call it once the servers that
  // hand it requests have stopped and before they are destroyed: that work
  // holds their connections' executors, which must not outlive the
  // servers' I/O contexts.
  void Join();

  // Answers one request. HEAD is answered as the GET of the same route,
  // without the body.
  void Handle(Request request, Respond respond);
  // Checks a request on its header alone, before its body is read
  // (HttpServerOptions::screen: a client that sent "Expect:
  // 100-continue" waits for this verdict before it sends the body): the
  // refusal Handle would give for its Host, Origin or token, or nullopt
  // when those pass. Its route, Content-Type and body are Handle's.
  std::optional<Response> Screen(const Request& header);
  // /readyz answers 503 from now on.
  void SetDraining() { draining_ = true; }

  // ---- for other front ends of the same engine (grpc_server.h) ----
  engine::Engine* engine() const { return engine_; }
  const ApiOptions& options() const { return options_; }
  bool draining() const { return draining_; }
  // Who is calling, without answering: null with the problem when access
  // control is on and `authorization` (the values of every Authorization
  // header or metadata entry) is empty, has more than one value, is not a
  // bearer token (the scheme case-insensitive) or is an unknown token.
  // `hold` keeps the token file the principal points into alive.
  struct Caller {
    const Principal* who = nullptr;
    std::string problem;
  };
  Caller Identify(const std::vector<std::string_view>& authorization,
                  std::shared_ptr<const TokenFile>* hold) const;
  // Whether `who` sees certificate details (admin, or expose_certificates).
  bool Details(const Principal& who) const;
  // The documents of GET /v2, /v2/models/{name} (the outputs `who` may
  // ask for; the dataset's source only for an admin),
  // /v2/models/{name}/config and /v2/models/stats.
  nlohmann::json ServerMetadata() const;
  nlohmann::json ModelMetadata(const Principal& who) const;
  // The model's configuration in Triton's form (model_config.proto as
  // JSON): what Triton's clients and perf_analyzer read; its outputs are
  // those `who` may ask for.
  nlohmann::json ModelConfig(const Principal& who) const;
  // The statistics extension's answer: {"model_stats": [...]}.
  nlohmann::json ModelStats() const;
  // A refusal in the rate-limited log (401, 403), from another front end.
  void NoteRefusal(int status, std::string_view reason, std::string_view method,
                   std::string_view path, std::string_view detail);
  // The counters of inference requests, shared by the front ends.
  const std::shared_ptr<internal::ModelStatistics>& statistics() const {
    return statistics_;
  }

 private:
  // Identify() with the request's Authorization headers.
  Caller Identify(const Request& request,
                  std::shared_ptr<const TokenFile>* hold) const;
  // The same, answering 401 (400 for two Authorization headers) when there
  // is no principal.
  const Principal* Authenticate(const Request& request, const Respond& respond,
                                std::shared_ptr<const TokenFile>* hold);
  // The Host and Origin rules of ApiOptions (health routes, `health`, are
  // not held to the Host rule), and CORS preflights: true when the request
  // may go on; otherwise it was answered (421, or 400 for an HTTP/1.1
  // request without Host; 403; a preflight's 204).
  bool Admitted(const Request& request, bool health, const Respond& respond);
  // True when the body is declared JSON (Content-Type application/json),
  // or declared nothing and `undeclared_ok`, or application/octet-stream and
  // `octet_ok` (the binary tensor data extension); otherwise a 415 was sent.
  bool JsonBody(const Request& request, const Respond& respond,
                bool undeclared_ok = false, bool octet_ok = false);
  // Sends 403 for `what` and counts it.
  void Forbid(const Request& request, const Principal& who,
              const std::string& what, const Respond& respond);

  void Readyz(const Request& request, Respond respond);
  void Infer(const Request& request, const Principal& who, Respond respond);
  void Delete(const Request& request, const Principal& who, Respond respond);
  void DeletionStatus(const Request& request, const Principal& who,
                      const std::string& seq, Respond respond);
  void Drain(const Request& request, Respond respond);

  // ---- oip.cc: the Open Inference Protocol ----
  // Handles /v2 routes; false if `path` is not one.
  bool HandleV2(const Request& request, const std::string& path,
                const Principal* who, Respond& respond);
  void V2Infer(const Request& request, const Principal& who, Respond respond);

  // The features of a request body, or a message for a 400.
  bool Features(const nlohmann::json& body, std::vector<float>* features,
                std::string* error) const;

  engine::Engine* const engine_;
  const ApiOptions options_;
  // 401s and 403s, logged as rate-limited summaries.
  std::unique_ptr<internal::RefusalLog> refusal_log_;
  // Inference requests (/v1/infer and /v2/.../infer) answered and failed,
  // with their durations: shared with the callbacks that answer them.
  const std::shared_ptr<internal::ModelStatistics> statistics_;
  std::atomic<bool> draining_{false};
  // Deletions (a synced write each) and status reads run here, never on an
  // I/O thread.
  boost::asio::thread_pool blocking_{2};
  // Drains, one at a time: a drain lasts as long as the retrainings it
  // waits for (minutes with a costly model), and on blocking_ two of them
  // would hold up every deletion's acknowledgement and status read.
  boost::asio::thread_pool drains_{1};
};

// Serves GET /metrics: the metrics in the Prometheus text format, and the
// health routes (/healthz, /v2/health/live), unauthenticated.
// `allowed_hosts` as ApiOptions::allowed_hosts (empty: any host).
Handler MetricsHandler(std::shared_ptr<metrics::EngineMetrics> metrics,
                       std::vector<std::string> allowed_hosts = {});

}  // namespace eraser::serve

#endif  // ERASER_SERVE_API_H_
