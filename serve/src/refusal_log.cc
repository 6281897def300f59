#include "refusal_log.h"

#include <cstdio>

namespace eraser::serve::internal {

RefusalLog::RefusalLog(const Clock* clock, Duration interval, std::FILE* sink)
    : clock_(clock), interval_(interval), sink_(sink ? sink : stderr) {}

RefusalLog::~RefusalLog() {
  MutexLock lock(&mu_);
  for (const auto& [reason, r] : reasons_) {
    if (r.suppressed == 0) continue;
    std::fprintf(sink_, "eraser serve: %llu more %s refusals\n",
                 static_cast<unsigned long long>(r.suppressed), reason.c_str());
  }
}

void RefusalLog::Note(int status, std::string_view reason,
                      std::string_view method, std::string_view path,
                      std::string_view detail) {
  const TimePoint now = clock_->Now();
  std::string line;
  {
    MutexLock lock(&mu_);
    auto it = reasons_.find(reason);
    if (it == reasons_.end()) {
      it = reasons_.emplace(std::string(reason), Reason{now, 0}).first;
    } else if (now - it->second.window_start < interval_) {
      ++it->second.suppressed;
      return;
    } else {
      if (it->second.suppressed > 0) {
        line = std::to_string(it->second.suppressed) + " more " +
               std::string(reason) + " refusals in the last " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                  now - it->second.window_start)
                                  .count()) +
               " s; ";
      }
      it->second = Reason{now, 0};
    }
  }
  const bool cut = path.size() > kPathBytes;
  line = "eraser serve: " + line + std::to_string(status) + " " +
         std::string(method) + " " + std::string(path.substr(0, kPathBytes)) +
         (cut ? "..." : "") + ": " + std::string(detail);
  Write(line);
}

void RefusalLog::Write(const std::string& line) {
  std::fprintf(sink_, "%s\n", line.c_str());
}

}  // namespace eraser::serve::internal
