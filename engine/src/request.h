// An admitted inference request, as it moves through the engine: queued,
// computed, possibly parked, answered once.
#ifndef ERASER_ENGINE_SRC_REQUEST_H_
#define ERASER_ENGINE_SRC_REQUEST_H_

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "eraser/certify/tally.h"
#include "eraser/engine/engine.h"

namespace eraser::engine::internal {

using SteadyTime = std::chrono::steady_clock::time_point;

struct Request {
  uint64_t id = 0;
  std::vector<float> features;
  InferCallback done;
  SteadyTime admitted;
  SteadyTime queued;  // last time it entered the queue
  std::optional<SteadyTime> first_compute;
  double compute_seconds = 0;
  // Parked under rule `wait`: the votes so far, the affected set, and the
  // model version each vote came from.
  std::unique_ptr<certify::VoteTally> tally;
  std::vector<uint64_t> versions;
  std::optional<SteadyTime> parked_at;
  double wait_seconds = 0;
};

using RequestPtr = std::unique_ptr<Request>;

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_REQUEST_H_
