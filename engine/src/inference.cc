// Inference: admission, batched evaluation of every shard, certification,
// and what happens to answers that cannot be certified.
#include <algorithm>
#include <cmath>

#include "engine_impl.h"
#include "eraser/certify/certificate.h"

namespace eraser::engine::internal {
namespace {

double SecondsBetween(SteadyTime a, SteadyTime b) {
  return std::chrono::duration<double>(b - a).count();
}

std::vector<ShardId> ShardsOf(const std::vector<uint8_t>& flags) {
  std::vector<ShardId> shards;
  for (std::size_t k = 0; k < flags.size(); ++k) {
    if (flags[k] != 0) shards.emplace_back(static_cast<uint32_t>(k));
  }
  return shards;
}

std::vector<uint64_t> VersionsOf(const Snapshot& snapshot) {
  std::vector<uint64_t> versions;
  for (const unlearning::ShardModel& m : snapshot.shards) {
    versions.push_back(m.version);
  }
  return versions;
}

}  // namespace

Status EngineImpl::InferAsync(std::vector<float> features, InferCallback done) {
  if (features.size() != feature_size_) {
    metrics_->Refused("bad_input");
    return InvalidArgumentError("expected " + std::to_string(feature_size_) +
                                " features, got " +
                                std::to_string(features.size()));
  }
  for (std::size_t i = 0; i < features.size(); ++i) {
    if (!std::isfinite(features[i])) {
      metrics_->Refused("bad_input");
      return InvalidArgumentError("feature " + std::to_string(i) +
                                  " is not a finite number");
    }
  }
  if (inflight_.fetch_add(1) >= options_.inference.queue_capacity) {
    inflight_.fetch_sub(1);
    metrics_->Refused("queue_full");
    return ResourceExhaustedError(
        "inference queue is full (" +
        std::to_string(options_.inference.queue_capacity) +
        " requests in flight); retry later");
  }
  auto request = std::make_unique<Request>();
  request->id = next_request_id_.fetch_add(1);
  request->features = std::move(features);
  request->done = std::move(done);
  request->admitted = std::chrono::steady_clock::now();
  if (!queue_.Push(request)) {
    inflight_.fetch_sub(1);
    metrics_->Refused("shutting_down");
    return UnavailableError("the engine is shutting down");
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

std::vector<uint8_t> EngineImpl::AffectedFlags(const Snapshot& snapshot) const {
  std::vector<uint8_t> flags(num_shards_, 0);
  for (std::size_t k = 0; k < num_shards_; ++k) {
    // A shard replaced after the snapshot was taken may have been retrained
    // to forget something the snapshot's model still holds.
    flags[k] = !shard_pending_[k].empty() ||
               snapshot.shards[k].version != snapshot_->shards[k].version;
  }
  return flags;
}

void EngineImpl::ComputeBatch(std::vector<RequestPtr>& batch) {
  const SteadyTime start = std::chrono::steady_clock::now();
  if (policy_.kind == scheduler::PolicyKind::kImmediate) {
    // The baseline computes nothing while a deletion is pending: the
    // request would be answered from data whose deletion was acknowledged.
    std::vector<Answer> refused;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!pending_.empty()) {
        for (RequestPtr& r : batch) {
          if (closed_) {
            refused.push_back({std::move(r),
                               UnavailableError("the engine is shutting down"),
                               {}});
            continue;
          }
          if (!r->first_compute) r->first_compute = start;
          if (!r->parked_at) r->parked_at = start;
          parked_immediate_.push_back(std::move(r));
        }
        UpdateGauges();
        batch.clear();
      }
    }
    Deliver(std::move(refused));
    if (batch.empty()) return;
  }

  const std::size_t n = batch.size();
  const std::size_t k = num_shards_;
  std::vector<float> inputs(n * feature_size_);
  for (std::size_t i = 0; i < n; ++i) {
    std::copy(batch[i]->features.begin(), batch[i]->features.end(),
              inputs.begin() + static_cast<std::ptrdiff_t>(i * feature_size_));
  }
  std::vector<int32_t> votes(k * n);
  std::shared_ptr<const Snapshot> snapshot;
  gate_.EnterInference();
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot = snapshot_;
  }
  // Every shard on the whole batch in one call (one stacked computation for
  // MLPs); votes are shard-major, votes[s * n + i].
  const Status status =
      snapshot->ensemble->Predict(inputs.data(), n, votes.data(), nullptr);
  gate_.ExitInference();
  const SteadyTime end = std::chrono::steady_clock::now();
  busy_nanos_.fetch_add(
      std::chrono::duration_cast<std::chrono::nanoseconds>(end - start)
          .count());

  std::vector<Answer> answers;
  answers.reserve(n);
  bool parked = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<uint8_t> affected = AffectedFlags(*snapshot);
    std::vector<int32_t> column(k);
    for (std::size_t i = 0; i < n; ++i) {
      RequestPtr& r = batch[i];
      if (!r->first_compute) r->first_compute = start;
      r->compute_seconds += SecondsBetween(start, end);
      if (!status.ok()) {
        answers.push_back({std::move(r), status, {}});
        continue;
      }
      for (std::size_t s = 0; s < k; ++s) column[s] = votes[s * n + i];
      const std::size_t parked_before =
          parked_.size() + parked_immediate_.size();
      Decide(std::move(r), column, affected, *snapshot, start, &answers);
      parked |= parked_.size() + parked_immediate_.size() > parked_before;
    }
    UpdateGauges();
    if (parked) event_ = true;
  }
  Deliver(std::move(answers));
  if (parked) {
    control_cv_.notify_all();
    // A shard may have been swapped in while this batch computed.
    RefreshParked();
    ReleaseImmediate();
  }
}

void EngineImpl::Decide(RequestPtr request, const std::vector<int32_t>& votes,
                        const std::vector<uint8_t>& affected,
                        const Snapshot& snapshot, SteadyTime computed,
                        std::vector<Answer>* answers) {
  const std::vector<uint64_t> versions = VersionsOf(snapshot);
  const certify::Certificate cert = certify::CertifyHardVote(
      votes.data(), affected.data(), num_shards_, classes_);
  auto answer = [&](int32_t label, Decision decision) {
    answers->push_back(MakeAnswer(std::move(request), label, decision,
                                  cert.margin, affected, versions, computed));
  };
  auto refuse_closing = [&] {
    answers->push_back({std::move(request),
                        UnavailableError("the engine is shutting down"),
                        {}});
  };
  if (cert.affected == 0) return answer(cert.answer, Decision::kClean);
  switch (policy_.kind) {
    case scheduler::PolicyKind::kImmediate:
      // Something was acknowledged while it computed: compute it again once
      // nothing is pending.
      if (closed_) return refuse_closing();
      request->parked_at = request->parked_at.value_or(computed);
      parked_immediate_.push_back(std::move(request));
      return;
    case scheduler::PolicyKind::kInferenceFirst:
      return answer(cert.answer, Decision::kUncertified);
    case scheduler::PolicyKind::kEraser:
      break;
  }
  if (cert.certified) return answer(cert.answer, Decision::kCertified);
  switch (policy_.rule) {
    case scheduler::UncertifiedRule::kPartial: {
      const std::optional<int> partial = certify::PartialVote(
          votes.data(), affected.data(), num_shards_, classes_);
      if (partial) return answer(*partial, Decision::kPartial);
      return answer(-1, Decision::kRejected);  // every shard is affected
    }
    case scheduler::UncertifiedRule::kReject:
      return answer(-1, Decision::kRejected);
    case scheduler::UncertifiedRule::kWait:
      break;
  }
  if (closed_) return refuse_closing();
  request->tally = std::make_unique<certify::VoteTally>(
      votes.data(), affected.data(), num_shards_, classes_);
  request->versions = versions;
  request->parked_at = computed;
  const uint64_t id = request->id;
  scheduler_->OnParked(id, ShardsOf(affected),
                       request->tally->MinShardsToResolve());
  parked_[id] = std::move(request);
}

Answer EngineImpl::MakeAnswer(RequestPtr request, int32_t label,
                              Decision decision, int32_t margin,
                              const std::vector<uint8_t>& affected,
                              const std::vector<uint64_t>& versions,
                              SteadyTime computed) {
  const SteadyTime now = std::chrono::steady_clock::now();
  Prediction p;
  p.request_id = request->id;
  p.label = label;
  p.decision = decision;
  p.margin = margin;
  p.affected = ShardsOf(affected);
  p.model_versions = versions;
  p.exposed = decision == Decision::kUncertified;
  p.computed_at = computed;
  p.deletion_watermark = watermark_;
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
    r.computed = clock_->Now();
    r.decision = decision;
    r.answer = label;
    r.margin = margin;
    r.affected = p.affected;
    r.model_versions = versions;
    std::set<DeletionSeq> pending;
    for (ShardId s : p.affected) {
      pending.insert(shard_pending_[s.value()].begin(),
                     shard_pending_[s.value()].end());
    }
    r.pending.assign(pending.begin(), pending.end());
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
    uint64_t id;
    std::size_t shard;
    uint64_t version;
    std::shared_ptr<const unlearning::Model> model;
    std::vector<float> features;
    int32_t vote = -1;
  };
  std::vector<Work> work;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, r] : parked_) {
      for (std::size_t k = 0; k < num_shards_; ++k) {
        const unlearning::ShardModel& current = snapshot_->shards[k];
        if (r->tally->is_affected(k) && shard_pending_[k].empty() &&
            current.version > r->versions[k]) {
          work.push_back({id, k, current.version, current.model, r->features});
        }
      }
    }
  }
  if (work.empty()) return;
  gate_.EnterInference();
  for (Work& w : work) {
    w.model->Predict(w.features.data(), 1, &w.vote, nullptr).IgnoreError();
  }
  gate_.ExitInference();

  std::vector<Answer> answers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<uint64_t> touched;
    for (const Work& w : work) {
      auto it = parked_.find(w.id);
      if (it == parked_.end() || w.vote < 0) continue;
      Request& r = *it->second;
      // Only a vote from the model still served, which holds no pending
      // deletion, resolves the shard.
      if (r.versions[w.shard] >= w.version ||
          snapshot_->shards[w.shard].version != w.version ||
          !shard_pending_[w.shard].empty()) {
        continue;
      }
      r.tally->Resolve(w.shard, w.vote);
      r.versions[w.shard] = w.version;
      touched.insert(w.id);
    }
    const SteadyTime now = std::chrono::steady_clock::now();
    for (uint64_t id : touched) {
      auto it = parked_.find(id);
      const certify::Certificate cert = it->second->tally->Certify();
      if (cert.certified) {
        RequestPtr r = std::move(it->second);
        parked_.erase(it);
        scheduler_->OnUnparked(id);
        const std::vector<uint8_t> affected = r->tally->affected_flags();
        const std::vector<uint64_t> versions = r->versions;
        answers.push_back(MakeAnswer(std::move(r), cert.answer,
                                     Decision::kWaited, cert.margin, affected,
                                     versions, now));
      } else {
        scheduler_->OnParked(id, ShardsOf(it->second->tally->affected_flags()),
                             it->second->tally->MinShardsToResolve());
      }
    }
    UpdateGauges();
    event_ = true;
  }
  control_cv_.notify_all();
  Deliver(std::move(answers));
}

void EngineImpl::ReleaseImmediate() {
  std::vector<RequestPtr> release;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pending_.empty() || parked_immediate_.empty()) return;
    const SteadyTime now = std::chrono::steady_clock::now();
    for (RequestPtr& r : parked_immediate_) {
      if (r->parked_at) {
        r->wait_seconds += SecondsBetween(*r->parked_at, now);
        r->parked_at.reset();
      }
    }
    release.swap(parked_immediate_);
    UpdateGauges();
  }
  queue_.PushFront(std::move(release));
}

}  // namespace eraser::engine::internal
