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
//   eraser_deletions_repeated_total             repeats answered with an
//                                               earlier deletion
//   eraser_shard_retrains_total, eraser_retrain_sample_epochs_total
//   eraser_shard_reloads_total                  shard models another replica
//                                               sharing the store retrained,
//                                               swapped in here
//   eraser_deadline_misses_total                deletions applied after their
//                                               deadline
//   eraser_retrain_failures_total{reason}       failed retrainings (training,
//                                               storage, disk_full)
//   eraser_parked_expired_total                 parked requests answered with
//                                               the fallback after max_wait
//   eraser_retrains_promoted_total              retrainings on an idle
//                                               inference core that their
//                                               deadline (or a late shard's)
//                                               made take precedence
//   eraser_retrains_preempted_total             retrainings on an idle
//                                               inference core stopped for a
//                                               shard due earlier
//   eraser_http_refused_total{reason}           HTTP requests and connections
//                                               refused (unauthenticated,
//                                               forbidden, connection_limit,
//                                               header_too_large, timeout,
//                                               tls_handshake; and the
//                                               reasons of 429, 503 and 507
//                                               answers: store_unavailable,
//                                               no_certified_answer,
//                                               overloaded, shutting_down,
//                                               disk_full; misdirected: a
//                                               Host not allowed, 421;
//                                               origin: a browser Origin
//                                               not allowed, 403)
//   eraser_shards_backing_off, eraser_erasure_owed              (gauges)
//   eraser_pending_deletions, eraser_affected_shards,
//   eraser_inference_queue_length, eraser_parked_requests,
//   eraser_deletion_rate_per_second, eraser_unlearning_capacity_per_second,
//   eraser_unlearning_overloaded, eraser_deadlines_at_risk    (gauges)
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

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace eraser::metrics {

// Decision label values, in the order of certify::Decision.
inline constexpr std::string_view kDecisionLabels[] = {
    "clean",    "certified",   "waited", "partial",
    "rejected", "uncertified", "prefix"};

// Why a retraining failed: a Torch or model error, a store error, a full
// disk.
inline constexpr std::string_view kRetrainFailureLabels[] = {
    "training", "storage", "disk_full"};

// Why the HTTP layer refused a request or a connection. The last five are
// also the "reason" of a 429, 503 or 507 body (docs/serve.md): the store
// cannot be reached; no answer can be given without exposure (the `reject`
// rule, or max_wait passed); the inference queue is full; the server is
// shutting down; the disk is full.
inline constexpr std::string_view kHttpRefusedLabels[] = {"unauthenticated",
                                                          "forbidden",
                                                          "connection_limit",
                                                          "header_too_large",
                                                          "timeout",
                                                          "tls_handshake",
                                                          "store_unavailable",
                                                          "no_certified_answer",
                                                          "overloaded",
                                                          "shutting_down",
                                                          "disk_full",
                                                          "misdirected",
                                                          "origin"};

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
  // A request answered with a pending deletion of the same samples.
  void DeletionRepeated();
  void DeletionApplied(double delay_seconds);
  void Retrained(double seconds, uint64_t sample_epochs);
  void ShardReloaded();
  void SetPendingDeletions(std::size_t n);
  void SetAffectedShards(std::size_t n);
  void SetQueueLength(std::size_t n);
  void SetParkedRequests(std::size_t n);
  void DeadlineMissed();
  // `reason` is one of kRetrainFailureLabels (others are ignored).
  void RetrainFailed(std::string_view reason);
  void SetBackingOff(std::size_t shards);
  void SetErasureOwed(bool owed);
  void SetLease(bool held, int live_replicas);
  void ParkedExpired();
  void RetrainPromoted();
  void RetrainPreempted();
  // `reason` is one of kHttpRefusedLabels (others are ignored).
  void HttpRefused(std::string_view reason);
  // The unlearning load over the last minute (scheduler::Capacity).
  void SetCapacity(double offered_per_second, double sustainable_per_second,
                   bool overloaded, std::size_t deadlines_at_risk);

  // The registry in the Prometheus text exposition format (version 0.0.4),
  // what a /metrics endpoint serves. (eraser serve serves it over its own
  // HTTP server: Debian's civetweb, under prometheus-cpp's exposer, starts
  // threads with a 100 KB stack, too small for the static TLS of a process
  // that loads LibTorch and OpenBLAS; see docs/serve.md.)
  std::string TextExposition() const;
  static constexpr char kContentType[] = "text/plain; version=0.0.4";

 private:
  struct Impl;
  explicit EngineMetrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eraser::metrics

#endif  // ERASER_METRICS_ENGINE_METRICS_H_
