// The statistics extension of the Open Inference Protocol (Triton's
// "statistics"): per-request counts and cumulative durations of the model's
// inference requests, as GET /v2/models[/{name}]/stats reports them.
// Thread-safe.
#ifndef ERASER_SERVE_SRC_MODEL_STATISTICS_H_
#define ERASER_SERVE_SRC_MODEL_STATISTICS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "eraser/common/mutex.h"
#include "eraser/engine/engine.h"
#include "eraser/serve/http_server.h"

namespace eraser::serve::internal {

class ModelStatistics {
 public:
  // Where one answered request spent its time, in nanoseconds.
  struct Timing {
    // From the request's arrival at the route to its response.
    int64_t total = 0;
    // Queued for the inference workers, or parked waiting for unlearning
    // (the longest of the request's rows).
    int64_t queue = 0;
    // Reading the body and decoding the tensors.
    int64_t input = 0;
    // Computing the ensemble's votes and the certificate (the longest of
    // the request's rows).
    int64_t infer = 0;
    // Building the response.
    int64_t output = 0;

    // Takes `row`'s queue and compute times if they are the longest yet.
    void AddRow(const engine::Prediction& row);
  };

  // A request answered 200 with `rows` answers.
  void Succeeded(const Timing& timing, uint64_t rows);
  // A request answered with an error after `total_ns`.
  void Failed(int64_t total_ns);

  // Triton's $model_stat object for `name`, version "1";
  // `execution_count` is the engine's (EngineStats::executions).
  nlohmann::json ToJson(const std::string& name,
                        uint64_t execution_count) const;

 private:
  struct DurationStat {
    uint64_t count = 0;
    uint64_t ns = 0;
    void Add(int64_t nanos);
  };

  mutable Mutex mu_;
  DurationStat success_ GUARDED_BY(mu_);
  DurationStat fail_ GUARDED_BY(mu_);
  DurationStat queue_ GUARDED_BY(mu_);
  DurationStat compute_input_ GUARDED_BY(mu_);
  DurationStat compute_infer_ GUARDED_BY(mu_);
  DurationStat compute_output_ GUARDED_BY(mu_);
  // Rows answered by successful requests.
  uint64_t inference_count_ GUARDED_BY(mu_) = 0;
  // Milliseconds since the epoch at the last request, 0 before any.
  uint64_t last_inference_ms_ GUARDED_BY(mu_) = 0;
};

using Stopwatch = std::chrono::steady_clock;

inline int64_t NanosSince(Stopwatch::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Stopwatch::now() -
                                                              start)
      .count();
}

inline int64_t Nanos(double seconds) {
  return static_cast<int64_t>(seconds * 1e9);
}

// `respond`, counting every answer but a 200 as a failed request that
// arrived at `start` (a 200 is counted by the caller, which knows its
// timing).
Respond CountingFailures(Respond respond,
                         std::shared_ptr<ModelStatistics> statistics,
                         Stopwatch::time_point start);

}  // namespace eraser::serve::internal

#endif  // ERASER_SERVE_SRC_MODEL_STATISTICS_H_
