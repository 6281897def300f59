#include "eraser/metrics/engine_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace eraser::metrics {

struct EngineMetrics::Impl {
  explicit Impl(std::shared_ptr<prometheus::Registry> r)
      : registry(std::move(r)),
        requests(prometheus::BuildCounter()
                     .Name("eraser_inference_requests_total")
                     .Help("Inference requests answered, by decision")
                     .Register(*registry)),
        refused(prometheus::BuildCounter()
                    .Name("eraser_inference_refused_total")
                    .Help("Inference requests not admitted, by reason")
                    .Register(*registry)),
        exposures(prometheus::BuildCounter()
                      .Name("eraser_exposures_total")
                      .Help("Answers served without a certificate from a "
                            "shard holding a sample whose deletion was "
                            "acknowledged")
                      .Register(*registry)
                      .Add({})),
        deletions_received(prometheus::BuildCounter()
                               .Name("eraser_deletions_received_total")
                               .Help("Deletion requests acknowledged")
                               .Register(*registry)
                               .Add({})),
        deletions_repeated(
            prometheus::BuildCounter()
                .Name("eraser_deletions_repeated_total")
                .Help("Deletion requests answered with an earlier deletion "
                      "of the same target, pending or with nothing left to "
                      "do (nothing new written)")
                .Register(*registry)
                .Add({})),
        deletions_applied(prometheus::BuildCounter()
                              .Name("eraser_deletions_applied_total")
                              .Help("Deletion requests applied (unlearned)")
                              .Register(*registry)
                              .Add({})),
        retrains(prometheus::BuildCounter()
                     .Name("eraser_shard_retrains_total")
                     .Help("Shard retrainings completed")
                     .Register(*registry)
                     .Add({})),
        reloads(prometheus::BuildCounter()
                    .Name("eraser_shard_reloads_total")
                    .Help("Shard models another replica sharing the store "
                          "retrained, swapped in here")
                    .Register(*registry)
                    .Add({})),
        sample_epochs(prometheus::BuildCounter()
                          .Name("eraser_retrain_sample_epochs_total")
                          .Help("Sample-epochs spent on retraining")
                          .Register(*registry)
                          .Add({})),
        pending(prometheus::BuildGauge()
                    .Name("eraser_pending_deletions")
                    .Help("Deletions acknowledged and not yet applied")
                    .Register(*registry)
                    .Add({})),
        affected(prometheus::BuildGauge()
                     .Name("eraser_affected_shards")
                     .Help("Shards whose served model holds a pending deletion")
                     .Register(*registry)
                     .Add({})),
        queue(prometheus::BuildGauge()
                  .Name("eraser_inference_queue_length")
                  .Help("Inference requests waiting for a worker")
                  .Register(*registry)
                  .Add({})),
        parked(prometheus::BuildGauge()
                   .Name("eraser_parked_requests")
                   .Help("Requests waiting for unlearning before an answer")
                   .Register(*registry)
                   .Add({})),
        deadline_misses(prometheus::BuildCounter()
                            .Name("eraser_deadline_misses_total")
                            .Help("Deletions applied later than the policy's "
                                  "deadline after their acknowledgement")
                            .Register(*registry)
                            .Add({})),
        retrain_failures(prometheus::BuildCounter()
                             .Name("eraser_retrain_failures_total")
                             .Help("Shard retrainings that failed, by reason "
                                   "(each is retried after a backoff)")
                             .Register(*registry)),
        backing_off(prometheus::BuildGauge()
                        .Name("eraser_shards_backing_off")
                        .Help("Shards whose retraining failed and waits for "
                              "its retry")
                        .Register(*registry)
                        .Add({})),
        lease_held(prometheus::BuildGauge()
                       .Name("eraser_replica_lease_held")
                       .Help("Sharing a PostgreSQL store: 1 while this "
                             "replica holds its lease and answers")
                       .Register(*registry)
                       .Add({})),
        live_replicas(prometheus::BuildGauge()
                          .Name("eraser_replicas_live")
                          .Help("Sharing a PostgreSQL store: replicas whose "
                                "leases were live at the last renewal, this "
                                "one included")
                          .Register(*registry)
                          .Add({})),
        erasure_owed(prometheus::BuildGauge()
                         .Name("eraser_erasure_owed")
                         .Help("1 while an applied deletion's bytes still "
                               "await compaction (a compaction failed; it is "
                               "retried)")
                         .Register(*registry)
                         .Add({})),
        http_refused(prometheus::BuildCounter()
                         .Name("eraser_http_refused_total")
                         .Help("HTTP requests and connections refused, by "
                               "reason")
                         .Register(*registry)),
        expired(prometheus::BuildCounter()
                    .Name("eraser_parked_expired_total")
                    .Help("Parked or held requests answered with the "
                          "fallback after the maximum wait")
                    .Register(*registry)
                    .Add({})),
        promoted(prometheus::BuildCounter()
                     .Name("eraser_retrains_promoted_total")
                     .Help("Retrainings on an idle inference core that their "
                           "deadline, or a late shard's, made take precedence "
                           "over inference")
                     .Register(*registry)
                     .Add({})),
        preempted(prometheus::BuildCounter()
                      .Name("eraser_retrains_preempted_total")
                      .Help("Retrainings on an idle inference core stopped "
                            "to give it to a late shard due earlier")
                      .Register(*registry)
                      .Add({})),
        offered(prometheus::BuildGauge()
                    .Name("eraser_deletion_rate_per_second")
                    .Help("Deletions acknowledged per second over the last "
                          "minute (since the start, at least a deadline, when "
                          "shorter)")
                    .Register(*registry)
                    .Add({})),
        capacity(prometheus::BuildGauge()
                     .Name("eraser_unlearning_capacity_per_second")
                     .Help("Deletions per second unlearning could apply with "
                           "its slots always busy, at the work per deletion "
                           "measured over the last minute (0 until measured)")
                     .Register(*registry)
                     .Add({})),
        overloaded(prometheus::BuildGauge()
                       .Name("eraser_unlearning_overloaded")
                       .Help("1 while unlearning is overloaded (offered rate "
                             "above capacity, or a deadline at risk): answers "
                             "degrade to keep the slots for deadlines")
                       .Register(*registry)
                       .Add({})),
        at_risk(prometheus::BuildGauge()
                    .Name("eraser_deadlines_at_risk")
                    .Help("Pending deletions whose deadline the plan cannot "
                          "meet without borrowing the inference core")
                    .Register(*registry)
                    .Add({})),
        latency(prometheus::BuildHistogram()
                    .Name("eraser_inference_latency_seconds")
                    .Help("Inference latency from admission to answer")
                    .Register(*registry)
                    .Add({},
                         prometheus::Histogram::BucketBoundaries{
                             0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                             0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60})),
        margin(prometheus::BuildHistogram()
                   .Name("eraser_certification_margin_votes")
                   .Help("Certificate margin of answers computed while "
                         "deletions were pending, in votes")
                   .Register(*registry)
                   .Add({},
                        prometheus::Histogram::BucketBoundaries{
                            -8, -4, -2, -1, 0, 1, 2, 3, 4, 6, 8, 16, 32, 64})),
        retrain_duration(prometheus::BuildHistogram()
                             .Name("eraser_retrain_duration_seconds")
                             .Help("Wall time of one shard retraining")
                             .Register(*registry)
                             .Add({},
                                  prometheus::Histogram::BucketBoundaries{
                                      0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64})),
        deletion_delay(prometheus::BuildHistogram()
                           .Name("eraser_deletion_delay_seconds")
                           .Help("Time from a deletion's acknowledgement to "
                                 "its application")
                           .Register(*registry)
                           .Add({}, prometheus::Histogram::BucketBoundaries{
                                        0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120,
                                        300, 600})) {
    for (std::size_t i = 0; i < std::size(kDecisionLabels); ++i) {
      by_decision[i] =
          &requests.Add({{"decision", std::string(kDecisionLabels[i])}});
    }
    for (std::size_t i = 0; i < std::size(kRefusedLabels); ++i) {
      by_refusal[i] =
          &refused.Add({{"reason", std::string(kRefusedLabels[i])}});
    }
    for (std::size_t i = 0; i < std::size(kHttpRefusedLabels); ++i) {
      by_http_refusal[i] =
          &http_refused.Add({{"reason", std::string(kHttpRefusedLabels[i])}});
    }
    for (std::size_t i = 0; i < std::size(kRetrainFailureLabels); ++i) {
      by_failure[i] = &retrain_failures.Add(
          {{"reason", std::string(kRetrainFailureLabels[i])}});
    }
  }

  static constexpr std::string_view kRefusedLabels[] = {
      "queue_full", "shutting_down", "bad_input"};

  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Counter>& refused;
  prometheus::Counter* by_decision[std::size(kDecisionLabels)];
  prometheus::Counter* by_refusal[std::size(kRefusedLabels)];
  prometheus::Counter& exposures;
  prometheus::Counter& deletions_received;
  prometheus::Counter& deletions_repeated;
  prometheus::Counter& deletions_applied;
  prometheus::Counter& retrains;
  prometheus::Counter& reloads;
  prometheus::Counter& sample_epochs;
  prometheus::Gauge& pending;
  prometheus::Gauge& affected;
  prometheus::Gauge& queue;
  prometheus::Gauge& parked;
  prometheus::Counter& deadline_misses;
  prometheus::Family<prometheus::Counter>& retrain_failures;
  prometheus::Counter* by_failure[std::size(kRetrainFailureLabels)];
  prometheus::Gauge& backing_off;
  prometheus::Gauge& lease_held;
  prometheus::Gauge& live_replicas;
  prometheus::Gauge& erasure_owed;
  prometheus::Family<prometheus::Counter>& http_refused;
  prometheus::Counter* by_http_refusal[std::size(kHttpRefusedLabels)];
  prometheus::Counter& expired;
  prometheus::Counter& promoted;
  prometheus::Counter& preempted;
  prometheus::Gauge& offered;
  prometheus::Gauge& capacity;
  prometheus::Gauge& overloaded;
  prometheus::Gauge& at_risk;
  prometheus::Histogram& latency;
  prometheus::Histogram& margin;
  prometheus::Histogram& retrain_duration;
  prometheus::Histogram& deletion_delay;
};

std::shared_ptr<EngineMetrics> EngineMetrics::Create(
    std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) registry = std::make_shared<prometheus::Registry>();
  return std::shared_ptr<EngineMetrics>(
      new EngineMetrics(std::make_unique<Impl>(std::move(registry))));
}

EngineMetrics::EngineMetrics(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
EngineMetrics::~EngineMetrics() = default;

std::shared_ptr<prometheus::Registry> EngineMetrics::registry() const {
  return impl_->registry;
}

void EngineMetrics::Answered(std::string_view decision,
                             double latency_seconds) {
  for (std::size_t i = 0; i < std::size(kDecisionLabels); ++i) {
    if (decision == kDecisionLabels[i]) {
      impl_->by_decision[i]->Increment();
      impl_->latency.Observe(latency_seconds);
      return;
    }
  }
}

void EngineMetrics::Margin(int votes) { impl_->margin.Observe(votes); }
void EngineMetrics::Exposure() { impl_->exposures.Increment(); }

void EngineMetrics::Refused(std::string_view reason) {
  for (std::size_t i = 0; i < std::size(Impl::kRefusedLabels); ++i) {
    if (reason == Impl::kRefusedLabels[i]) impl_->by_refusal[i]->Increment();
  }
}

void EngineMetrics::DeletionReceived() {
  impl_->deletions_received.Increment();
}

void EngineMetrics::DeletionRepeated() {
  impl_->deletions_repeated.Increment();
}

void EngineMetrics::DeletionApplied(double delay_seconds) {
  impl_->deletions_applied.Increment();
  impl_->deletion_delay.Observe(delay_seconds);
}

void EngineMetrics::Retrained(double seconds, uint64_t sample_epochs) {
  impl_->retrains.Increment();
  impl_->sample_epochs.Increment(static_cast<double>(sample_epochs));
  impl_->retrain_duration.Observe(seconds);
}

void EngineMetrics::ShardReloaded() { impl_->reloads.Increment(); }

void EngineMetrics::SetPendingDeletions(std::size_t n) {
  impl_->pending.Set(static_cast<double>(n));
}
void EngineMetrics::SetAffectedShards(std::size_t n) {
  impl_->affected.Set(static_cast<double>(n));
}
void EngineMetrics::SetQueueLength(std::size_t n) {
  impl_->queue.Set(static_cast<double>(n));
}
void EngineMetrics::SetParkedRequests(std::size_t n) {
  impl_->parked.Set(static_cast<double>(n));
}

void EngineMetrics::DeadlineMissed() { impl_->deadline_misses.Increment(); }

void EngineMetrics::RetrainFailed(std::string_view reason) {
  for (std::size_t i = 0; i < std::size(kRetrainFailureLabels); ++i) {
    if (reason == kRetrainFailureLabels[i]) impl_->by_failure[i]->Increment();
  }
}

void EngineMetrics::SetBackingOff(std::size_t shards) {
  impl_->backing_off.Set(static_cast<double>(shards));
}

void EngineMetrics::SetLease(bool held, int live_replicas) {
  impl_->lease_held.Set(held ? 1 : 0);
  impl_->live_replicas.Set(live_replicas);
}

void EngineMetrics::SetErasureOwed(bool owed) {
  impl_->erasure_owed.Set(owed ? 1 : 0);
}

void EngineMetrics::ParkedExpired() { impl_->expired.Increment(); }
void EngineMetrics::RetrainPromoted() { impl_->promoted.Increment(); }
void EngineMetrics::RetrainPreempted() { impl_->preempted.Increment(); }

void EngineMetrics::HttpRefused(std::string_view reason) {
  for (std::size_t i = 0; i < std::size(kHttpRefusedLabels); ++i) {
    if (reason == kHttpRefusedLabels[i]) impl_->by_http_refusal[i]->Increment();
  }
}

void EngineMetrics::SetCapacity(double offered_per_second,
                                double sustainable_per_second, bool overloaded,
                                std::size_t deadlines_at_risk) {
  impl_->offered.Set(offered_per_second);
  impl_->capacity.Set(sustainable_per_second);
  impl_->overloaded.Set(overloaded ? 1 : 0);
  impl_->at_risk.Set(static_cast<double>(deadlines_at_risk));
}

std::string EngineMetrics::TextExposition() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->registry->Collect());
  return out.str();
}

}  // namespace eraser::metrics
