// The Core's events, inference decisions and parked requests. The planning
// of retrainings is in plan.cc.
#include "eraser/scheduler/core.h"

#include <algorithm>
#include <cmath>

#include "eraser/certify/certificate.h"

namespace eraser::scheduler {
namespace {

using certify::Decision;

std::vector<ShardId> ShardsOf(const std::vector<uint8_t>& flags) {
  std::vector<ShardId> shards;
  for (std::size_t k = 0; k < flags.size(); ++k) {
    if (flags[k] != 0) shards.emplace_back(static_cast<uint32_t>(k));
  }
  return shards;
}

Status Field(const char* name, const char* why) {
  return InvalidArgumentError(std::string(name) + " " + why);
}

}  // namespace

const char* ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kImmediate:
      return "immediate";
    case Reason::kDeadline:
      return "deadline";
    case Reason::kBacklog:
      return "backlog";
    case Reason::kWait:
      return "wait";
    case Reason::kBatch:
      return "batch";
    case Reason::kPeriodic:
      return "periodic";
    case Reason::kIdle:
      return "idle";
    case Reason::kShards:
      return "shards";
    case Reason::kDrain:
      return "drain";
  }
  return "?";
}

Status CoreOptions::Validate() const {
  if (shards == 0) return Field("shards", "must be at least 1");
  if (classes < 2) return Field("classes", "must be at least 2");
  if (epochs.empty()) return Field("epochs", "must list every stage");
  if (slots < 1 || slots > 64) return Field("slots", "must be in 1..64");
  if (borrowable_slots < 0 || borrowable_slots > 64) {
    return Field("borrowable_slots", "must be in 0..64");
  }
  RETURN_IF_ERROR(estimates.Validate("estimates."));
  if (rate_window < std::chrono::seconds(1)) {
    return Field("rate_window", "must be at least 1s");
  }
  RETURN_IF_ERROR(retry.Validate("retry."));
  return ValidateMaxWait(max_wait, "max_wait");
}

Core::Core(CoreOptions options, std::vector<std::vector<uint64_t>> slice_sizes,
           std::vector<uint64_t> versions, TimePoint now)
    : options_(std::move(options)),
      slice_sizes_(std::move(slice_sizes)),
      versions_(std::move(versions)),
      shard_pending_(options_.shards),
      backoff_(options_.shards),
      estimator_(options_.estimates),
      started_(now),
      last_poll_(now),
      next_tick_(now + options_.policy.period) {
  slice_sizes_.resize(options_.shards);
  versions_.resize(options_.shards, 0);
}

Core::~Core() = default;

// ---- deletions --------------------------------------------------------------

Core::Bucket& Core::BucketAt(TimePoint t) {
  const TimePoint second = TimePoint(
      std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()));
  if (buckets_.empty() || buckets_.back().start < second) {
    buckets_.push_back({second});
  }
  const TimePoint oldest = second - options_.rate_window;
  while (!buckets_.empty() && buckets_.front().start <= oldest) {
    buckets_.erase(buckets_.begin());
  }
  return buckets_.back();
}

void Core::KnownUpTo(DeletionSeq seq) {
  watermark_ = std::max(watermark_, seq.value());
  registered_ahead_.erase(registered_ahead_.begin(),
                          registered_ahead_.upper_bound(watermark_));
  while (registered_ahead_.erase(watermark_ + 1) > 0) ++watermark_;
}

void Core::OnDeletion(DeletionSeq seq, TimePoint arrival,
                      const std::vector<SampleHit>& live) {
  if (seq.value() == watermark_ + 1) {
    KnownUpTo(seq);
  } else if (seq.value() > watermark_) {
    registered_ahead_.insert(seq.value());
  }
  if (live.empty() || pending_.count(seq) > 0) return;
  ++BucketAt(arrival).acknowledged;
  Pending& p = pending_[seq];
  p.arrival = arrival;
  std::set<ShardId> hit;
  for (const SampleHit& s : live) {
    if (s.shard.value() >= options_.shards) continue;
    p.samples[s.shard][s.sample] = s.slice;
    hit.insert(s.shard);
  }
  for (ShardId shard : hit) shard_pending_[shard.value()].insert(seq);
  // Parked requests voted with models that hold these samples.
  for (auto& [id, parked] : parked_) {
    for (ShardId shard : hit) parked.tally.MarkAffected(shard.value());
  }
}

std::vector<DeletionSeq> Core::PendingNaming(
    const std::vector<SampleHit>& live) const {
  std::map<ShardId, std::map<SampleId, uint32_t>> named;
  for (const SampleHit& s : live) {
    if (s.shard.value() >= options_.shards) return {};
    named[s.shard][s.sample] = s.slice;
  }
  std::vector<DeletionSeq> out;
  if (named.empty()) return out;
  for (DeletionSeq seq : shard_pending_[named.begin()->first.value()]) {
    if (pending_.at(seq).samples == named) out.push_back(seq);
  }
  return out;
}

// ---- inference --------------------------------------------------------------

bool Core::ShardAffected(std::size_t k) const {
  return !shard_pending_[k].empty();
}

bool Core::HoldsInference() const {
  return options_.policy.kind == PolicyKind::kImmediate && !pending_.empty();
}

TimePoint Core::Expiry(TimePoint now, Duration max_wait) const {
  return now + std::max(Duration(0), std::min(options_.max_wait, max_wait));
}

void Core::Hold(uint64_t request, TimePoint now, Duration max_wait) {
  held_.emplace(request, Expiry(now, max_wait));
}

std::vector<DeletionSeq> Core::PendingIn(
    const std::vector<ShardId>& shards) const {
  std::set<DeletionSeq> seqs;
  for (ShardId s : shards) {
    seqs.insert(shard_pending_[s.value()].begin(),
                shard_pending_[s.value()].end());
  }
  return {seqs.begin(), seqs.end()};
}

Verdict Core::Answer(int32_t label, Decision decision, int32_t margin,
                     const std::vector<uint8_t>& affected,
                     std::vector<uint64_t> versions) const {
  Verdict v;
  v.kind = Verdict::Kind::kAnswer;
  v.label = label;
  v.decision = decision;
  v.margin = margin;
  v.affected = ShardsOf(affected);
  v.versions = std::move(versions);
  v.exposed = decision == Decision::kUncertified;
  v.watermark = watermark_;
  v.pending = PendingIn(v.affected);
  return v;
}

void Core::Park(uint64_t request, const std::vector<int32_t>& votes,
                const std::vector<uint8_t>& affected,
                const std::vector<uint64_t>& versions, TimePoint expires) {
  parked_.emplace(request,
                  Parked{certify::VoteTally(votes.data(), affected.data(),
                                            options_.shards, options_.classes),
                         versions, expires});
}

int32_t Core::CleanStage(ShardId shard) const {
  const auto stages = static_cast<int32_t>(options_.epochs.size());
  const uint32_t first = FirstSlice(shard);
  if (first == UINT32_MAX) return stages - 1;
  const int32_t stage =
      static_cast<int32_t>(first) - 1 + options_.testing_clean_stage_offset;
  return std::clamp(stage, -1, stages - 1);
}

std::vector<int32_t> Core::WantedPrefixes() const {
  std::vector<int32_t> out(options_.shards, -1);
  if (options_.policy.rule != UncertifiedRule::kPrefix) return out;
  for (std::size_t k = 0; k < options_.shards; ++k) {
    if (ShardAffected(k))
      out[k] = CleanStage(ShardId(static_cast<uint32_t>(k)));
  }
  return out;
}

bool Core::UsesProbabilities() const {
  return options_.policy.kind == PolicyKind::kEraser &&
         options_.policy.rule == UncertifiedRule::kSoft;
}

bool Core::UsesPrefixes() const {
  if (options_.policy.kind != PolicyKind::kEraser ||
      options_.policy.rule != UncertifiedRule::kPrefix) {
    return false;
  }
  return !AffectedShards().empty();
}

std::optional<Verdict> Core::PrefixAnswer(
    const std::vector<int32_t>& votes, const std::vector<uint8_t>& affected,
    const std::vector<uint64_t>& versions, int32_t margin,
    const PrefixVotes& prefix, std::size_t row, std::size_t rows) const {
  // The clean prefixes' votes break the unaffected shards' ties.
  std::vector<int32_t> breakers(options_.shards, -1);
  for (std::size_t k = 0; k < options_.shards; ++k) {
    if (!affected[k] || k >= prefix.stage.size()) continue;
    const int32_t stage = prefix.stage[k];
    // Clean now: no pending deletion of the shard is in its slices, and
    // every deletion applied to the shard is out of it (read while the
    // shard served the model it serves now, so after the last apply).
    if (stage >= 0 && stage <= CleanStage(ShardId(static_cast<uint32_t>(k))) &&
        prefix.served[k] == versions_[k]) {
      breakers[k] = prefix.votes.at(k * rows + row);
    }
  }
  std::vector<uint8_t> counted(options_.shards, 0);
  const std::optional<int> label =
      certify::TieBreakVote(votes.data(), affected.data(), breakers.data(),
                            options_.shards, options_.classes, counted.data());
  if (!label) return std::nullopt;
  std::vector<uint64_t> voted = versions;
  std::vector<int32_t> stages(options_.shards, -1);
  for (std::size_t k = 0; k < options_.shards; ++k) {
    if (!counted[k]) continue;
    voted[k] = prefix.version[k];
    stages[k] = prefix.stage[k];
  }
  Verdict v =
      Answer(*label, Decision::kPrefix, margin, affected, std::move(voted));
  v.prefix_stages = std::move(stages);
  return v;
}

Verdict Core::Decide(uint64_t request, const std::vector<int32_t>& votes,
                     const std::vector<uint64_t>& versions, TimePoint now,
                     Duration max_wait, const PrefixVotes* prefix,
                     std::size_t row, std::size_t rows, const float* probs) {
  std::vector<uint8_t> affected(options_.shards, 0);
  for (std::size_t k = 0; k < options_.shards; ++k) {
    affected[k] = ShardAffected(k) || versions.at(k) != versions_[k];
  }
  if (options_.testing_affected_hook) options_.testing_affected_hook(&affected);
  const certify::Certificate cert = certify::CertifyHardVote(
      votes.data(), affected.data(), options_.shards, options_.classes);
  if (cert.affected == 0) {
    return Answer(cert.answer, Decision::kClean, cert.margin, affected,
                  versions);
  }
  const Policy& policy = options_.policy;
  if (policy.kind == PolicyKind::kImmediate) {
    // Something was acknowledged while it computed: compute it again once
    // nothing is pending.
    held_.emplace(request, Expiry(now, max_wait));
    Verdict v;
    v.kind = Verdict::Kind::kHeld;
    return v;
  }
  if (policy.kind == PolicyKind::kInferenceFirst) {
    return Answer(cert.answer, Decision::kUncertified, cert.margin, affected,
                  versions);
  }
  if (cert.certified) {
    return Answer(cert.answer, Decision::kCertified, cert.margin, affected,
                  versions);
  }
  if (policy.rule == UncertifiedRule::kReject) {
    return Answer(-1, Decision::kRejected, cert.margin, affected, versions);
  }
  const bool by_prefix = policy.rule == UncertifiedRule::kPrefix;
  if (by_prefix && prefix != nullptr) {
    if (std::optional<Verdict> v = PrefixAnswer(
            votes, affected, versions, cert.margin, *prefix, row, rows)) {
      return *v;
    }
  }
  const std::optional<int> partial =
      policy.rule == UncertifiedRule::kSoft && probs != nullptr
          ? certify::SoftPartialVote(probs, affected.data(), options_.shards,
                                     options_.classes)
          : certify::PartialVote(votes.data(), affected.data(), options_.shards,
                                 options_.classes);
  const bool degrade = policy.rule == UncertifiedRule::kWait && overloaded_;
  if (partial && (policy.answers_from_unaffected() || degrade)) {
    return Answer(*partial, Decision::kPartial, cert.margin, affected,
                  versions);
  }
  // `wait`, or `partial`, `soft` or `prefix` with no shard that can vote:
  // park until certified (or, but for `wait`, one shard is retrained).
  Park(request, votes, affected, versions, Expiry(now, max_wait));
  Verdict v;
  v.kind = Verdict::Kind::kParked;
  v.affected = ShardsOf(affected);
  v.watermark = watermark_;
  return v;
}

std::vector<Revote> Core::Revotes() const {
  std::vector<Revote> out;
  for (const auto& [id, p] : parked_) {
    for (std::size_t k = 0; k < options_.shards; ++k) {
      // The model served now holds nothing pending: a newer one, or the
      // one the request was computed with, whose deletions an apply that
      // retrained nothing (another had left their samples out) completed.
      if (p.tally.is_affected(k) && !ShardAffected(k) &&
          versions_[k] >= p.versions[k]) {
        out.push_back({id, ShardId(static_cast<uint32_t>(k)), versions_[k]});
      }
    }
  }
  return out;
}

std::optional<Verdict> Core::OnRevote(const Revote& revote, int32_t vote,
                                      TimePoint) {
  auto it = parked_.find(revote.request);
  const std::size_t k = revote.shard.value();
  // Only a vote from the model still served, which holds no pending
  // deletion, resolves the shard.
  if (it == parked_.end() || k >= options_.shards || vote < 0 ||
      vote >= options_.classes || versions_[k] != revote.version ||
      ShardAffected(k) || it->second.versions[k] > revote.version ||
      !it->second.tally.is_affected(k)) {
    return std::nullopt;
  }
  Parked& p = it->second;
  p.tally.Resolve(k, vote);
  p.versions[k] = revote.version;
  const certify::Certificate cert = p.tally.Certify();
  // Under `partial`, `soft` and `prefix`, the request waited only because
  // no shard was unaffected; now one is, it gets the answer a new request
  // would get (under `soft` too: one shard's vote is its probabilities'
  // argmax, up to a near tie).
  std::optional<int> partial;
  if (!cert.certified && options_.policy.answers_from_unaffected()) {
    partial = p.tally.Partial();
  }
  if (!cert.certified && !partial) return std::nullopt;
  Verdict v = cert.certified
                  ? Answer(cert.answer, Decision::kWaited, cert.margin,
                           p.tally.affected_flags(), p.versions)
                  : Answer(*partial, Decision::kPartial, cert.margin,
                           p.tally.affected_flags(), p.versions);
  parked_.erase(it);
  return v;
}

std::vector<uint64_t> Core::TakeReleased() {
  if (!pending_.empty() || held_.empty()) return {};
  std::vector<uint64_t> out;
  for (const auto& [id, expires] : held_) out.push_back(id);
  held_.clear();
  return out;
}

std::vector<uint64_t> Core::TakeAllWaiting() {
  std::vector<uint64_t> out;
  for (const auto& [id, expires] : held_) out.push_back(id);
  for (const auto& [id, p] : parked_) out.push_back(id);
  held_.clear();
  parked_.clear();
  return out;
}

std::optional<TimePoint> Core::Arrival(DeletionSeq seq) const {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return std::nullopt;
  return it->second.arrival;
}

void Core::Forget(uint64_t request) {
  held_.erase(request);
  parked_.erase(request);
}

std::vector<ShardId> Core::AffectedShards() const {
  std::vector<ShardId> out;
  for (std::size_t k = 0; k < options_.shards; ++k) {
    if (ShardAffected(k)) out.emplace_back(static_cast<uint32_t>(k));
  }
  return out;
}

// ---- applying -------------------------------------------------------------

// Pending deletions in the order's shard whose samples there the retrained
// model leaves out: every one it covers, and any acknowledged while it ran
// that names only samples it left out too.
std::vector<DeletionSeq> Core::Excluded(const RetrainOrder& order) const {
  const std::set<SampleId> left_out(order.samples.begin(), order.samples.end());
  const std::set<DeletionSeq> covered(order.covers.begin(), order.covers.end());
  std::vector<DeletionSeq> out;
  for (DeletionSeq seq : shard_pending_[order.shard.value()]) {
    const Pending& p = pending_.at(seq);
    bool all = true;
    for (const auto& [sample, slice] : p.samples.at(order.shard)) {
      all = all && left_out.count(sample) > 0;
    }
    if (all || covered.count(seq) > 0) out.push_back(seq);
  }
  return out;
}

void Core::ClearBackoff() {
  for (Backoff& b : backoff_) b = Backoff();
}

std::vector<SampleId> Core::PendingSamples(ShardId shard) const {
  std::set<SampleId> out;
  if (shard.value() >= options_.shards) return {};
  for (DeletionSeq seq : shard_pending_[shard.value()]) {
    for (const auto& [sample, slice] : pending_.at(seq).samples.at(shard)) {
      out.insert(sample);
    }
  }
  return {out.begin(), out.end()};
}

ApplyPlan Core::PlanApply(const RetrainOrder& order) const {
  ApplyPlan plan;
  plan.excluded = Excluded(order);
  for (DeletionSeq seq : plan.excluded) {
    if (pending_.at(seq).samples.size() == 1) plan.completed.push_back(seq);
  }
  return plan;
}

std::vector<Completion> Core::Completed(
    const std::vector<std::pair<DeletionSeq, TimePoint>>& before,
    TimePoint now) {
  std::vector<Completion> out;
  for (const auto& [seq, arrival] : before) {
    if (pending_.count(seq) > 0) continue;
    const bool late = options_.policy.has_deadline() &&
                      now - arrival > options_.policy.deadline;
    deadline_misses_ += late;
    out.push_back({seq, arrival, late});
  }
  return out;
}

std::vector<Completion> Core::OnApplied(const RetrainOrder& order,
                                        const ApplyPlan& plan, uint64_t version,
                                        TimePoint now, Duration held,
                                        uint64_t sample_epochs) {
  running_.erase(order.shard);
  std::vector<std::pair<DeletionSeq, TimePoint>> before;
  for (DeletionSeq seq : plan.completed) {
    if (auto it = pending_.find(seq); it != pending_.end()) {
      before.emplace_back(seq, it->second.arrival);
    }
  }
  const std::size_t completed = Remove(order, version, plan.excluded);
  backoff_[order.shard.value()] = Backoff();
  estimator_.Observe(sample_epochs, held);
  Bucket& bucket = BucketAt(now);
  bucket.applied += completed;
  bucket.busy_seconds += std::chrono::duration<double>(held).count();
  return Completed(before, now);
}

std::vector<Completion> Core::OnReplaced(ShardId shard, uint64_t version,
                                         const std::vector<SampleId>& gone,
                                         TimePoint now) {
  if (shard.value() >= options_.shards || version <= versions_[shard.value()]) {
    return {};
  }
  std::vector<std::pair<DeletionSeq, TimePoint>> before;
  for (DeletionSeq seq : shard_pending_[shard.value()]) {
    before.emplace_back(seq, pending_.at(seq).arrival);
  }
  RetrainOrder order;
  order.shard = shard;
  order.samples = gone;
  std::sort(order.samples.begin(), order.samples.end());
  BucketAt(now).applied += Remove(order, version, Excluded(order));
  backoff_[shard.value()] = Backoff();
  return Completed(before, now);
}

std::size_t Core::Remove(const RetrainOrder& order, uint64_t version,
                         const std::vector<DeletionSeq>& excluded) {
  const std::size_t k = order.shard.value();
  versions_[k] = std::max(versions_[k], version);
  // A parked vote from the model swapped out is no longer the served
  // model's: that one may leave out, and the old one hold, a deletion not
  // registered here yet (another engine's retraining saw it first). The
  // served model's vote is asked for instead.
  for (auto& [id, parked] : parked_) {
    if (parked.versions[k] < versions_[k]) parked.tally.MarkAffected(k);
  }
  // The cost model follows the erased samples.
  std::vector<uint64_t>& sizes = slice_sizes_[k];
  std::map<SampleId, uint32_t> erased;
  for (const auto& [seq, p] : pending_) {
    auto in_shard = p.samples.find(order.shard);
    if (in_shard == p.samples.end()) continue;
    for (const auto& [sample, slice] : in_shard->second) {
      if (std::binary_search(order.samples.begin(), order.samples.end(),
                             sample)) {
        erased.emplace(sample, slice);
      }
    }
  }
  for (const auto& [sample, slice] : erased) {
    if (slice < sizes.size() && sizes[slice] > 0) --sizes[slice];
  }
  // Deletions that still name samples of the shard keep only those.
  std::size_t completed = 0;
  for (DeletionSeq seq : std::set<DeletionSeq>(shard_pending_[k])) {
    Pending& p = pending_.at(seq);
    auto in_shard = p.samples.find(order.shard);
    const bool gone =
        std::find(excluded.begin(), excluded.end(), seq) != excluded.end();
    if (!gone) {
      // It keeps what the shard still holds of it. One that names only
      // erased samples was acknowledged after the committed plan: its
      // record does not say it left the shard, so it stays as it is and a
      // later order of the shard (nothing left to train) records it.
      std::map<SampleId, uint32_t> kept;
      for (const auto& entry : in_shard->second) {
        if (erased.count(entry.first) == 0) kept.insert(entry);
      }
      if (!kept.empty()) in_shard->second.swap(kept);
      continue;
    }
    p.samples.erase(in_shard);
    shard_pending_[k].erase(seq);
    if (p.samples.empty()) {
      pending_.erase(seq);
      ++completed;
    }
  }
  return completed;
}

TimePoint Core::OnRetrainFailed(const RetrainOrder& order, TimePoint now,
                                Duration held) {
  // The deletions are still pending in the shard: they wait again, after a
  // backoff that doubles with each failure. The failed attempt held its
  // slot, which counts as busy time.
  running_.erase(order.shard);
  BucketAt(now).busy_seconds += std::chrono::duration<double>(held).count();
  return Fail(backoff_[order.shard.value()], now);
}

std::vector<Core::Interrupt> Core::TakeInterrupts() {
  std::vector<Interrupt> out;
  out.swap(interrupts_);
  return out;
}

void Core::OnRetrainPreempted(const RetrainOrder& order, TimePoint now,
                              Duration held) {
  // The shard waits again as if it had not started; its slot time counts
  // as busy, as a failed attempt's does.
  running_.erase(order.shard);
  BucketAt(now).busy_seconds += std::chrono::duration<double>(held).count();
}

TimePoint Core::Fail(Backoff& b, TimePoint now) {
  ++b.failures;
  b.retry_at = now + options_.retry.Delay(b.failures);
  return b.retry_at;
}

void Core::OnErasureOwedAtOpen(TimePoint now) {
  erasure_.owed = true;
  erasure_.backoff.retry_at = now;
}

TimePoint Core::OnErasureFailed(TimePoint now) {
  erasure_.owed = true;
  ++erasure_.failures_ever;
  return Fail(erasure_.backoff, now);
}

bool Core::ErasureDue(TimePoint now, uint64_t* attempt) const {
  if (!erasure_.owed || now < erasure_.backoff.retry_at) return false;
  *attempt = erasure_.failures_ever;
  return true;
}

void Core::OnErasureFinished(uint64_t attempt) {
  if (attempt != erasure_.failures_ever) return;
  erasure_ = Erasure{false, Backoff(), erasure_.failures_ever};
}

std::vector<ShardId> Core::BackingOff(TimePoint now) const {
  std::vector<ShardId> out;
  for (std::size_t k = 0; k < options_.shards; ++k) {
    if (backoff_[k].failures > 0 && backoff_[k].retry_at > now) {
      out.emplace_back(static_cast<uint32_t>(k));
    }
  }
  return out;
}

std::vector<std::pair<uint64_t, Verdict>> Core::ExpireParked(TimePoint now) {
  std::vector<std::pair<uint64_t, Verdict>> out;
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (now < it->second.expires) {
      ++it;
      continue;
    }
    const certify::VoteTally& tally = it->second.tally;
    const certify::Certificate cert = tally.Certify();
    const std::optional<int> partial = tally.Partial();
    out.emplace_back(it->first,
                     partial
                         ? Answer(*partial, Decision::kPartial, cert.margin,
                                  tally.affected_flags(), it->second.versions)
                         : Answer(-1, Decision::kRejected, cert.margin,
                                  tally.affected_flags(), it->second.versions));
    it = parked_.erase(it);
  }
  // The immediate baseline computes nothing while deletions are pending:
  // a held request has no partial answer.
  for (auto it = held_.begin(); it != held_.end();) {
    if (now < it->second) {
      ++it;
      continue;
    }
    Verdict v;
    v.decision = Decision::kRejected;
    v.label = -1;
    v.versions = versions_;
    v.watermark = watermark_;
    out.emplace_back(it->first, std::move(v));
    it = held_.erase(it);
  }
  return out;
}

void Core::OnLoad(std::size_t queued, double utilization) {
  queued_ = queued;
  utilization_ = utilization;
}

}  // namespace eraser::scheduler
