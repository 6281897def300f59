#include "model_statistics.h"

#include <algorithm>
#include <chrono>

namespace eraser::serve::internal {
namespace {

uint64_t NowMillis() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace

void ModelStatistics::Timing::AddRow(const engine::Prediction& row) {
  queue = std::max(queue, Nanos(row.queue_seconds + row.wait_seconds));
  infer = std::max(infer, Nanos(row.compute_seconds));
}

void ModelStatistics::DurationStat::Add(int64_t nanos) {
  ++count;
  ns += static_cast<uint64_t>(nanos > 0 ? nanos : 0);
}

void ModelStatistics::Succeeded(const Timing& timing, uint64_t rows) {
  const uint64_t now = NowMillis();
  MutexLock lock(&mu_);
  success_.Add(timing.total);
  queue_.Add(timing.queue);
  compute_input_.Add(timing.input);
  compute_infer_.Add(timing.infer);
  compute_output_.Add(timing.output);
  inference_count_ += rows;
  last_inference_ms_ = now;
}

void ModelStatistics::Failed(int64_t total_ns) {
  const uint64_t now = NowMillis();
  MutexLock lock(&mu_);
  fail_.Add(total_ns);
  last_inference_ms_ = now;
}

nlohmann::json ModelStatistics::ToJson(const std::string& name,
                                       uint64_t execution_count) const {
  auto stat = [](const DurationStat& d) {
    return nlohmann::json{{"count", d.count}, {"ns", d.ns}};
  };
  MutexLock lock(&mu_);
  return {{"name", name},
          {"version", "1"},
          {"last_inference", last_inference_ms_},
          {"inference_count", inference_count_},
          {"execution_count", execution_count},
          {"inference_stats",
           {{"success", stat(success_)},
            {"fail", stat(fail_)},
            {"queue", stat(queue_)},
            {"compute_input", stat(compute_input_)},
            {"compute_infer", stat(compute_infer_)},
            {"compute_output", stat(compute_output_)},
            {"cache_hit", stat(DurationStat{})},
            {"cache_miss", stat(DurationStat{})}}},
          {"batch_stats", nlohmann::json::array()}};
}

Respond CountingFailures(Respond respond,
                         std::shared_ptr<ModelStatistics> statistics,
                         Stopwatch::time_point start) {
  return [respond = std::move(respond), statistics = std::move(statistics),
          start](Response res) {
    if (res.result() != boost::beast::http::status::ok) {
      statistics->Failed(NanosSince(start));
    }
    respond(std::move(res));
  };
}

}  // namespace eraser::serve::internal
