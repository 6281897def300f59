// The engine's metric families (DESIGN section 7) on a prometheus-cpp
// registry. This module is the only one that includes prometheus-cpp; other
// modules see the registry as an opaque pointer.
//
// Families (prefix eraser_, units in the names):
//   eraser_inference_requests_total{decision}   answers by decision
//   eraser_inference_refused_total{reason}      not admitted (queue_full,
//                                               shutting_down, bad_input)
//   eraser_exposures_total                      uncertified answers that used
//                                               a shard with a pending deletion
//   eraser_deletions_received_total, eraser_deletions_applied_total
//   eraser_shard_retrains_total, eraser_retrain_sample_epochs_total
//   eraser_pending_deletions, eraser_affected_shards,
//   eraser_inference_queue_length, eraser_parked_requests     (gauges)
//   eraser_inference_latency_seconds, eraser_certification_margin_votes,
//   eraser_retrain_duration_seconds, eraser_deletion_delay_seconds
//                                                              (histograms)
//
// Thread safety: every method may be called from any thread.
#ifndef ERASER_METRICS_ENGINE_METRICS_H_
#define ERASER_METRICS_ENGINE_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "eraser/common/statusor.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace eraser::metrics {

// Decision label values, in the order of certify::Decision.
inline constexpr std::string_view kDecisionLabels[] = {
    "clean", "certified", "waited", "partial", "rejected", "uncertified"};

class EngineMetrics {
 public:
  // Registers the families on `registry`, or on a new one when null. Two
  // EngineMetrics must not share a registry.
  static std::shared_ptr<EngineMetrics> Create(
      std::shared_ptr<prometheus::Registry> registry = nullptr);
  ~EngineMetrics();

  std::shared_ptr<prometheus::Registry> registry() const;

  // An answer: `decision` is one of kDecisionLabels (others are ignored).
  void Answered(std::string_view decision, double latency_seconds);
  // The certification margin (votes) of an answer computed while deletions
  // were pending.
  void Margin(int votes);
  void Exposure();
  // A request that was not admitted: "queue_full", "shutting_down" or
  // "bad_input".
  void Refused(std::string_view reason);
  void DeletionReceived();
  void DeletionApplied(double delay_seconds);
  void Retrained(double seconds, uint64_t sample_epochs);
  void SetPendingDeletions(std::size_t n);
  void SetAffectedShards(std::size_t n);
  void SetQueueLength(std::size_t n);
  void SetParkedRequests(std::size_t n);

  // The registry in the Prometheus text exposition format.
  std::string TextExposition() const;

 private:
  struct Impl;
  explicit EngineMetrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Serves a registry on http://ADDRESS/metrics (prometheus-cpp's exposer).
class MetricsServer {
 public:
  // `address` is host:port; port 0 picks a free port. kUnavailable if the
  // address cannot be bound.
  static StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address,
      std::shared_ptr<prometheus::Registry> registry);
  ~MetricsServer();
  // The port actually bound.
  int port() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eraser::metrics

#endif  // ERASER_METRICS_ENGINE_METRICS_H_
