// The JSON API of `eraser serve`, mapped onto the engine's public interface:
//   POST /v1/infer            {"features": [...]} or {"test_index": n}
//   POST /v1/deletions        {"sample": id} or {"owner": id}   -> 202
//   GET  /v1/deletions/{seq}
//   POST /v1/drain            unlearn everything pending now
//   GET  /healthz, /readyz
// Errors are {"error": message}: 400 malformed body or wrong feature count,
// 404 unknown sample, owner, sequence or route, 405 wrong method, 413 body
// too large, 429 queue full, 503 shutting down or no certified answer under
// the `reject` rule.
#ifndef ERASER_CLI_SERVE_API_H_
#define ERASER_CLI_SERVE_API_H_

#include <atomic>
#include <boost/asio/thread_pool.hpp>

#include "eraser/engine/engine.h"
#include "eraser/workloads/fashion_mnist.h"
#include "serve/http_server.h"

namespace eraser::serve {

class Api {
 public:
  // `engine` must outlive the Api. `test_set` (optional) serves
  // {"test_index": n} requests.
  Api(engine::Engine* engine, const workloads::ImageDataset* test_set);
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

  engine::Engine* const engine_;
  const workloads::ImageDataset* const test_set_;
  std::atomic<bool> draining_{false};
  // Deletions (a synced write each), status reads and drains run here, never
  // on an I/O thread.
  boost::asio::thread_pool blocking_{2};
};

// Serves GET /metrics: the metrics in the Prometheus text format.
Handler MetricsHandler(std::shared_ptr<metrics::EngineMetrics> metrics);

}  // namespace eraser::serve

#endif  // ERASER_CLI_SERVE_API_H_
