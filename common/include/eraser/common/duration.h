// Human-readable durations: "250ms", "30s", "1.5s", "2m", "1h".
#ifndef ERASER_COMMON_DURATION_H_
#define ERASER_COMMON_DURATION_H_

#include <string>
#include <string_view>

#include "eraser/common/clock.h"
#include "eraser/common/statusor.h"

namespace eraser {

// Parses a non-negative decimal number followed by a unit: us, ms, s, m or
// h. kInvalidArgument (naming the text) otherwise, or above 1000 days.
StatusOr<Duration> ParseDuration(std::string_view text);

// The shortest exact form among h, m, s, ms and us ("30s", "1500ms");
// round-trips through ParseDuration for whole microseconds.
std::string FormatDuration(Duration d);

// Seconds as a double, for reports.
inline double ToSeconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace eraser

#endif  // ERASER_COMMON_DURATION_H_
