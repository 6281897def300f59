#include "eraser/scheduler/retry.h"

#include <algorithm>

namespace eraser::scheduler {

Status RetryOptions::Validate(const std::string& prefix) const {
  if (initial <= Duration(0)) {
    return InvalidArgumentError(prefix + "initial must be positive");
  }
  if (max < initial) {
    return InvalidArgumentError(prefix + "max must be at least " + prefix +
                                "initial");
  }
  return OkStatus();
}

Duration RetryOptions::Delay(int failures) const {
  Duration delay = initial;
  for (int i = 1; i < failures && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

Status ValidateMaxWait(Duration max_wait, const std::string& field) {
  if (max_wait <= Duration(0)) {
    return InvalidArgumentError(field + " must be positive");
  }
  return OkStatus();
}

}  // namespace eraser::scheduler
