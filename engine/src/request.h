// An admitted inference request's payload as it moves through the engine:
// queued, computed, possibly parked or held, answered once. What the engine
// decides about it lives in scheduler::Core; this is what it needs to
// compute it again and to answer it.
#ifndef ERASER_ENGINE_SRC_REQUEST_H_
#define ERASER_ENGINE_SRC_REQUEST_H_

#include <memory>
#include <optional>
#include <vector>

#include "eraser/common/clock.h"
#include "eraser/engine/engine.h"

namespace eraser::engine::internal {

struct Request {
  uint64_t id = 0;
  std::vector<float> features;
  InferCallback done;
  TimePoint admitted;
  TimePoint queued;  // last time it entered the queue
  std::optional<TimePoint> first_compute;
  double compute_seconds = 0;
  std::optional<TimePoint> parked_at;  // parked or held since
  double wait_seconds = 0;
  // The request's own bound on waiting parked or held (Engine::InferAsync).
  Duration max_wait = Duration::max();
};

using RequestPtr = std::unique_ptr<Request>;

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_REQUEST_H_
