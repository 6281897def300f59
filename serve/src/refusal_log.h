// Refused requests logged as rate-limited summaries. The first refusal of
// a reason in an interval is written at once, with its method and path
// (cut short); the others are only counted, and the first refusal after the
// interval writes how many there were. A flood of unauthenticated requests
// then costs a couple of lines per interval instead of one per request
// (57,212 requests in 5 s once wrote 14 MB to stderr). Thread-safe.
#ifndef ERASER_SERVE_SRC_REFUSAL_LOG_H_
#define ERASER_SERVE_SRC_REFUSAL_LOG_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include "eraser/common/clock.h"
#include "eraser/common/mutex.h"

namespace eraser::serve::internal {

class RefusalLog {
 public:
  // Logged paths keep at most this many bytes.
  static constexpr std::size_t kPathBytes = 80;

  // `clock` must outlive the log; `sink` receives each line (stderr when
  // null).
  RefusalLog(const Clock* clock, Duration interval, std::FILE* sink = nullptr);
  // Writes the counts not yet written.
  ~RefusalLog();

  // One refusal: `status` (401, 403, ...) for `reason`, of `method` on
  // `path`, with `detail` (never a token).
  void Note(int status, std::string_view reason, std::string_view method,
            std::string_view path, std::string_view detail);

 private:
  struct Reason {
    TimePoint window_start;
    uint64_t suppressed = 0;
  };
  void Write(const std::string& line);

  const Clock* const clock_;
  const Duration interval_;
  std::FILE* const sink_;
  Mutex mu_;
  std::map<std::string, Reason, std::less<>> reasons_ GUARDED_BY(mu_);
};

}  // namespace eraser::serve::internal

#endif  // ERASER_SERVE_SRC_REFUSAL_LOG_H_
