// The options the engine and the Core share for retrying and waiting,
// defined once with one validator each.
#ifndef ERASER_SCHEDULER_RETRY_H_
#define ERASER_SCHEDULER_RETRY_H_

#include <chrono>
#include <string>

#include "eraser/common/clock.h"
#include "eraser/common/status.h"

namespace eraser::scheduler {

// How a failed shard retraining, or an erasure whose compaction failed, is
// retried: after `initial`, twice as long after each further consecutive
// failure, at most `max`; a success resets it.
struct RetryOptions {
  Duration initial = std::chrono::seconds(1);
  Duration max = std::chrono::seconds(60);

  // The one validator (the Core's and the engine's options hold these):
  // kInvalidArgument naming the field after `prefix`.
  Status Validate(const std::string& prefix) const;
  // The wait after `failures` (>= 1) consecutive failures.
  Duration Delay(int failures) const;
};

// How long a parked or held request waits at most for the retrainings it
// needs before its fallback answer, unless it asks for less.
inline constexpr Duration kDefaultMaxWait = std::chrono::seconds(30);
// The one validator of a max_wait (the Core's and the engine's):
// kInvalidArgument naming `field`.
Status ValidateMaxWait(Duration max_wait, const std::string& field);

}  // namespace eraser::scheduler

#endif  // ERASER_SCHEDULER_RETRY_H_
