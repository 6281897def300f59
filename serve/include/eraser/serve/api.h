// The JSON API of `eraser serve`, mapped onto the engine's public interface:
//   POST /v1/infer            {"features": [...]}, {"test_index": n} or,
//                             for tabular data, {"record": {column: value}}
//   POST /v1/deletions        {"sample": id} or {"owner": id}   -> 202
//   GET  /v1/deletions/{seq}
//   POST /v1/drain            unlearn everything pending now
//   GET  /healthz, /readyz
// Errors are {"error": message}: 400 malformed body or wrong feature count,
// 404 unknown sample, owner, sequence or route, 405 wrong method, 413 body
// too large, 429 queue full, 503 shutting down or no certified answer (the
// `reject` rule, or a request that waited max_wait with every shard
// affected), 507 a deletion the full disk cannot log (not acknowledged).
#ifndef ERASER_SERVE_API_H_
#define ERASER_SERVE_API_H_

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "eraser/engine/engine.h"
#include "eraser/serve/http_server.h"

namespace eraser::serve {

class Api {
 public:
  // `engine` must outlive the Api. {"test_index": n} names a sample of the
  // data directory's test split; {"record": ...} is encoded with its
  // tabular encoding; answers name the class when the dataset has names.
  explicit Api(engine::Engine* engine);
  // Waits for slow work handed to its own threads.
  ~Api();

  void Handle(Request request, Respond respond);
  // /readyz answers 503 from now on.
  void SetDraining() { draining_ = true; }

 private:
  void Infer(const Request& request, Respond respond);
  void Delete(const Request& request, Respond respond);
  void DeletionStatus(const Request& request, const std::string& seq,
                      Respond respond);
  void Drain(const Request& request, Respond respond);

  // The features of a request body, or a message for a 400.
  bool Features(const nlohmann::json& body, std::vector<float>* features,
                std::string* error) const;

  engine::Engine* const engine_;
  std::atomic<bool> draining_{false};
  // Deletions (a synced write each), status reads and drains run here, never
  // on an I/O thread.
  boost::asio::thread_pool blocking_{2};
};

// Serves GET /metrics: the metrics in the Prometheus text format.
Handler MetricsHandler(std::shared_ptr<metrics::EngineMetrics> metrics);

}  // namespace eraser::serve

#endif  // ERASER_SERVE_API_H_
