// Inference: admission, batched evaluation of every shard, the Core's
// verdicts, and the requests it parks or holds.
#include <algorithm>
#include <cmath>
#include <optional>

#include "engine_impl.h"
#include "eraser/certify/certificate.h"
#include "eraser/common/sync_point.h"

namespace eraser::engine::internal {
namespace {

double SecondsBetween(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}

Status LeaseLapsedError() {
  return UnavailableError(
      "this replica holds no lease on the shared store (it cannot reach the "
      "database, or is catching up with the deletion log); another replica "
      "may answer");
}

}  // namespace

Status EngineImpl::InferAsync(std::vector<float> features, InferCallback done) {
  return InferAsync(std::move(features), std::move(done), Duration::max());
}

Status EngineImpl::CheckFeatures(const std::vector<float>& features) const {
  if (features.size() != feature_size_) {
    return InvalidArgumentError("expected " + std::to_string(feature_size_) +
                                " features, got " +
                                std::to_string(features.size()));
  }
  for (std::size_t i = 0; i < features.size(); ++i) {
    if (!std::isfinite(features[i])) {
      return InvalidArgumentError("feature " + std::to_string(i) +
                                  " is not a finite number");
    }
  }
  return OkStatus();
}

Status EngineImpl::Reserve(std::size_t rows) {
  // Room is checked before it is taken: a batch that does not fit never
  // counts, even for a moment, against requests that would.
  std::size_t inflight = inflight_.load();
  do {
    if (inflight + rows > options_.inference.queue_capacity) {
      metrics_->Refused("queue_full");
      return ResourceExhaustedError(
          "inference queue is full (" +
          std::to_string(options_.inference.queue_capacity) +
          " rows in flight); retry later");
    }
  } while (!inflight_.compare_exchange_weak(inflight, inflight + rows));
  return OkStatus();
}

bool EngineImpl::Enqueue(std::vector<float> features, InferCallback done,
                         Duration max_wait) {
  auto request = std::make_unique<Request>();
  request->id = next_request_id_.fetch_add(1);
  request->features = std::move(features);
  request->done = std::move(done);
  request->max_wait = max_wait;
  request->admitted = clock_->Now();
  return queue_.Push(request);
}

Status EngineImpl::InferAsync(std::vector<float> features, InferCallback done,
                              Duration max_wait) {
  if (Status bad = CheckFeatures(features); !bad.ok()) {
    metrics_->Refused("bad_input");
    return bad;
  }
  RETURN_IF_ERROR(Reserve(1));
  if (!Enqueue(std::move(features), std::move(done), max_wait)) {
    inflight_.fetch_sub(1);
    metrics_->Refused("shutting_down");
    return ShuttingDownError();
  }
  return OkStatus();
}

Status EngineImpl::InferRowsAsync(std::vector<std::vector<float>> rows,
                                  RowCallback done, Duration max_wait) {
  const std::size_t n = rows.size();
  if (n == 0 || n > options_.inference.queue_capacity) {
    metrics_->Refused("bad_input");
    return InvalidArgumentError(
        "a request carries 1 to " +
        std::to_string(options_.inference.queue_capacity) +
        " rows (the inference queue's capacity), not " + std::to_string(n));
  }
  for (std::size_t r = 0; r < n; ++r) {
    if (Status bad = CheckFeatures(rows[r]); !bad.ok()) {
      metrics_->Refused("bad_input");
      return InvalidArgumentError("row " + std::to_string(r) + ": " +
                                  bad.message());
    }
  }
  RETURN_IF_ERROR(Reserve(n));
  auto shared = std::make_shared<RowCallback>(std::move(done));
  for (std::size_t r = 0; r < n; ++r) {
    if (Enqueue(
            std::move(rows[r]),
            [shared, r](StatusOr<Prediction> p) { (*shared)(r, std::move(p)); },
            max_wait)) {
      ERASER_SYNC_POINT("EngineImpl::InferRowsAsync:Queued");
      continue;
    }
    // Closed meanwhile: the queued rows are answered by Close; the rest
    // are answered here, unless none was queued (refused whole).
    inflight_.fetch_sub(n - r);
    metrics_->Refused("shutting_down");
    if (r == 0) return ShuttingDownError();
    for (std::size_t rest = r; rest < n; ++rest) {
      (*shared)(rest, ShuttingDownError());
    }
    break;
  }
  return OkStatus();
}

std::future<StatusOr<Prediction>> EngineImpl::Infer(
    std::vector<float> features) {
  auto promise = std::make_shared<std::promise<StatusOr<Prediction>>>();
  std::future<StatusOr<Prediction>> future = promise->get_future();
  Status admitted =
      InferAsync(std::move(features), [promise](StatusOr<Prediction> result) {
        promise->set_value(std::move(result));
      });
  if (!admitted.ok()) promise->set_value(std::move(admitted));
  return future;
}

void EngineImpl::WorkerLoop() {
  std::vector<RequestPtr> batch;
  while (queue_.PopBatch(options_.inference.max_batch_size,
                         options_.inference.max_queue_delay, &batch)) {
    metrics_->SetQueueLength(queue_.size());
    ComputeBatch(batch);
  }
}

bool EngineImpl::HoldBatch(std::vector<RequestPtr>& batch,
                           std::vector<Answer>* refused) {
  MutexLock lock(&mu_);
  if (!core_->HoldsInference()) return false;
  // The immediate baseline computes nothing while a deletion is pending:
  // the answer would come from data whose deletion was acknowledged.
  const TimePoint now = clock_->Now();
  for (RequestPtr& r : batch) {
    if (closed_) {
      refused->push_back({std::move(r), ShuttingDownError(), {}});
      continue;
    }
    if (!r->first_compute) r->first_compute = now;
    if (!r->parked_at) r->parked_at = now;
    core_->Hold(r->id, now, r->max_wait);
    waiting_[r->id] = std::move(r);
  }
  UpdateGauges();
  return true;
}

void EngineImpl::ComputeBatch(std::vector<RequestPtr>& batch) {
  // Sharing the store, nothing is read per batch: other replicas'
  // deletions are pushed to this engine, and it answers only while its
  // lease holds (MakeAnswer checks again once the batch is decided).
  std::vector<Answer> refused;
  {
    MutexLock lock(&mu_);
    if (!LeaseHeld()) {
      for (RequestPtr& r : batch) {
        ++lease_refusals_;
        refused.push_back(
            {std::move(r),
             rewound_from_.load() != 0 ? RewoundError() : LeaseLapsedError(),
             {}});
      }
    }
  }
  if (!refused.empty()) return Deliver(std::move(refused));
  if (HoldBatch(batch, &refused)) return Deliver(std::move(refused));

  const std::size_t n = batch.size();
  const std::size_t k = num_shards_;
  std::vector<float> inputs(n * feature_size_);
  for (std::size_t i = 0; i < n; ++i) {
    std::copy(batch[i]->features.begin(), batch[i]->features.end(),
              inputs.begin() + static_cast<std::ptrdiff_t>(i * feature_size_));
  }
  std::vector<int32_t> votes(k * n);
  // Under the rule `soft`, every shard's probabilities too (shard-major,
  // probs[(s * n + i) * classes + c]).
  std::vector<float> probs;
  std::shared_ptr<const Snapshot> snapshot;
  std::shared_ptr<const Prefixes> prefixes;
  std::vector<uint8_t> affected(k, 0);
  // After the gate: time blocked behind a retraining is queueing, not
  // compute.
  const TimePoint start = gate_.EnterInference();
  {
    MutexLock lock(&mu_);
    snapshot = snapshot_;
    if (core_->UsesProbabilities()) {
      probs.resize(k * n * static_cast<std::size_t>(classes_));
    }
    if (core_->UsesPrefixes()) {
      prefixes = prefixes_;
      for (ShardId s : core_->AffectedShards()) affected[s.value()] = 1;
    }
  }
  // Every shard on the whole batch in one call (one stacked computation for
  // MLPs); votes are shard-major, votes[s * n + i].
  const Status status = snapshot->ensemble->Predict(
      inputs.data(), n, votes.data(), probs.empty() ? nullptr : probs.data());
  // Under the rule `prefix`, the clean prefixes vote too where they may
  // break a tie among the unaffected shards (the Core decides whether each
  // may count). Only batches with such a row pay for them: a shard affected
  // after the snapshot can leave a row without, which then gets the
  // `partial` answer.
  bool tie = false;
  if (status.ok() && prefixes != nullptr) {
    std::vector<int32_t> column(k);
    for (std::size_t i = 0; i < n && !tie; ++i) {
      for (std::size_t s = 0; s < k; ++s) column[s] = votes[s * n + i];
      tie = certify::UnaffectedShardsTie(column.data(), affected.data(), k,
                                         classes_);
    }
  }
  std::optional<scheduler::PrefixVotes> prefix;
  if (tie) {
    prefix = scheduler::PrefixVotes{prefixes->stage, prefixes->served,
                                    prefixes->version,
                                    std::vector<int32_t>(k * n, -1)};
    for (std::size_t s = 0; s < k; ++s) {
      if (prefixes->models[s] == nullptr) {
        prefix->stage[s] = -1;
        continue;
      }
      if (!prefixes->models[s]
               ->Predict(inputs.data(), n, prefix->votes.data() + s * n,
                         nullptr)
               .ok()) {
        prefix->stage[s] = -1;
      }
    }
  }
  gate_.ExitInference(start);
  const TimePoint end = clock_->Now();
  busy_nanos_.fetch_add((end - start).count());
  if (status.ok()) executions_.fetch_add(1);

  std::vector<Answer> answers;
  answers.reserve(n);
  bool waiting = false;
  {
    MutexLock lock(&mu_);
    const std::vector<uint64_t> versions = snapshot->versions();
    std::vector<int32_t> column(k);
    const auto c = static_cast<std::size_t>(classes_);
    std::vector<float> row_probs(probs.empty() ? 0 : k * c);
    for (std::size_t i = 0; i < n; ++i) {
      RequestPtr& r = batch[i];
      if (!r->first_compute) r->first_compute = start;
      r->compute_seconds += SecondsBetween(start, end);
      if (!status.ok()) {
        answers.push_back({std::move(r), status, {}});
        continue;
      }
      for (std::size_t s = 0; s < k; ++s) column[s] = votes[s * n + i];
      for (std::size_t s = 0; s < k && !row_probs.empty(); ++s) {
        std::copy_n(&probs[(s * n + i) * c], c, &row_probs[s * c]);
      }
      scheduler::Verdict verdict =
          core_->Decide(r->id, column, versions, start, r->max_wait,
                        prefix ? &*prefix : nullptr, i, n,
                        row_probs.empty() ? nullptr : row_probs.data());
      waiting |= verdict.kind != scheduler::Verdict::Kind::kAnswer;
      Settle(std::move(r), std::move(verdict), start, &answers);
    }
    UpdateGauges();
    if (waiting) event_ = true;
  }
  Deliver(std::move(answers));
  if (waiting) {
    control_cv_.SignalAll();
    // A shard may have been swapped in while this batch computed.
    RefreshParked();
    ReleaseHeld();
  }
}

void EngineImpl::Settle(RequestPtr request, scheduler::Verdict verdict,
                        TimePoint computed, std::vector<Answer>* answers) {
  if (verdict.kind == scheduler::Verdict::Kind::kAnswer) {
    answers->push_back(MakeAnswer(std::move(request), verdict, computed));
    return;
  }
  if (closed_) {
    // Nothing will retrain for it any more.
    core_->Forget(request->id);
    answers->push_back({std::move(request), ShuttingDownError(), {}});
    return;
  }
  if (!request->parked_at) request->parked_at = computed;
  waiting_[request->id] = std::move(request);
}

Answer EngineImpl::MakeAnswer(RequestPtr request,
                              const scheduler::Verdict& verdict,
                              TimePoint computed) {
  // Checked after the verdict, with mu_ held since: a lease that holds now
  // held when the answer was computed, so every deletion acknowledged
  // before then was registered (docs/scale-out.md).
  if (!LeaseHeld()) {
    ++lease_refusals_;
    return {std::move(request),
            rewound_from_.load() != 0 ? RewoundError() : LeaseLapsedError(),
            {}};
  }
  const TimePoint now = clock_->Now();
  Prediction p;
  p.request_id = request->id;
  p.label = verdict.label;
  p.decision = verdict.decision;
  p.margin = verdict.margin;
  p.affected = verdict.affected;
  p.model_versions = verdict.versions;
  p.prefix_stages = verdict.prefix_stages;
  p.exposed = verdict.exposed;
  p.computed_at = computed;
  p.deletion_watermark = verdict.watermark;
  p.queue_seconds =
      SecondsBetween(request->admitted, request->first_compute.value_or(now));
  p.compute_seconds = request->compute_seconds;
  if (request->parked_at) {
    request->wait_seconds += SecondsBetween(*request->parked_at, now);
    request->parked_at.reset();
  }
  p.wait_seconds = request->wait_seconds;
  p.latency_seconds = SecondsBetween(request->admitted, now);
  Answer a{std::move(request), p, {}};
  if (options_.audit) {
    certify::CertificateRecord& r = a.record;
    r.request_id = p.request_id;
    r.computed = computed;
    r.decision = p.decision;
    r.answer = p.label;
    r.margin = p.margin;
    r.affected = p.affected;
    r.model_versions = p.model_versions;
    r.prefix_stages = p.prefix_stages;
    r.pending = verdict.pending;
  }
  return a;
}

void EngineImpl::Deliver(std::vector<Answer> answers) {
  for (Answer& a : answers) {
    if (a.result.ok()) {
      const Prediction& p = *a.result;
      metrics_->Answered(certify::DecisionName(p.decision), p.latency_seconds);
      if (!p.affected.empty() && p.decision != Decision::kRejected) {
        metrics_->Margin(p.margin);
      }
      if (p.exposed) metrics_->Exposure();
      if (options_.audit) {
        // An audit record is evidence kept for later, not part of the
        // answer: a failed write must not fail the request.
        store_->PutAudit(p.request_id, a.record.Encode()).IgnoreError();
      }
    }
    inflight_.fetch_sub(1);
    InferCallback done = std::move(a.request->done);
    a.request.reset();
    done(std::move(a.result));
  }
}

void EngineImpl::RefreshParked() {
  struct Work {
    scheduler::Revote revote;
    std::shared_ptr<const unlearning::Model> model;
    std::vector<float> features;
    int32_t vote = -1;
  };
  std::vector<Work> work;
  {
    MutexLock lock(&mu_);
    for (const scheduler::Revote& r : core_->Revotes()) {
      const unlearning::ShardModel& current =
          snapshot_->shards[r.shard.value()];
      auto it = waiting_.find(r.request);
      if (current.version != r.version || it == waiting_.end()) continue;
      work.push_back({r, current.model, it->second->features});
    }
  }
  if (work.empty()) return;
  const TimePoint entered = gate_.EnterInference();
  for (Work& w : work) {
    w.model->Predict(w.features.data(), 1, &w.vote, nullptr).IgnoreError();
  }
  gate_.ExitInference(entered);

  std::vector<Answer> answers;
  {
    MutexLock lock(&mu_);
    const TimePoint now = clock_->Now();
    for (const Work& w : work) {
      std::optional<scheduler::Verdict> verdict =
          core_->OnRevote(w.revote, w.vote, now);
      if (!verdict) continue;
      auto it = waiting_.find(w.revote.request);
      if (it == waiting_.end()) continue;
      RequestPtr r = std::move(it->second);
      waiting_.erase(it);
      answers.push_back(MakeAnswer(std::move(r), *verdict, now));
    }
    UpdateGauges();
    event_ = true;
  }
  control_cv_.SignalAll();
  Deliver(std::move(answers));
}

std::vector<Answer> EngineImpl::ExpireWaiting(TimePoint now) {
  std::vector<Answer> answers;
  for (auto& [id, verdict] : core_->ExpireParked(now)) {
    auto it = waiting_.find(id);
    if (it == waiting_.end()) continue;
    RequestPtr r = std::move(it->second);
    waiting_.erase(it);
    ++expired_;
    metrics_->ParkedExpired();
    answers.push_back(MakeAnswer(std::move(r), verdict, now));
  }
  if (!answers.empty()) UpdateGauges();
  return answers;
}

void EngineImpl::ReleaseHeld() {
  std::vector<RequestPtr> release;
  {
    MutexLock lock(&mu_);
    const TimePoint now = clock_->Now();
    for (uint64_t id : core_->TakeReleased()) {
      auto it = waiting_.find(id);
      if (it == waiting_.end()) continue;
      RequestPtr& r = it->second;
      if (r->parked_at) {
        r->wait_seconds += SecondsBetween(*r->parked_at, now);
        r->parked_at.reset();
      }
      release.push_back(std::move(r));
      waiting_.erase(it);
    }
    if (!release.empty()) UpdateGauges();
  }
  queue_.PushFront(std::move(release));
}

}  // namespace eraser::engine::internal
