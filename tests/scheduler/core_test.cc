// The engine's decisions, one rule per test, on the pure Core: every row of
// docs/engine.md's decision table, the immediate baseline, parked requests
// and their re-votes, retraining plans by policy, deadlines planned from
// the measured tail, borrowed slots, apply plans and capacity. Time comes
// from a ManualClock; there are no threads and no sleeps.
#include "eraser/scheduler/core.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <climits>
#include <random>
#include <set>

namespace eraser::scheduler {
namespace {

using certify::Decision;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::size_t kShards = 8;
constexpr uint32_t kSlices = 4;

Duration Secs(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

// Shards of 1,000 samples, all in slice 0, one epoch per stage: retraining
// from slice r costs (4 - r) * 1,000 sample-epochs, planned (1 ms each
// until measured, times 1.5) at 6 s from slice 0 and 1.5 s from slice 3.
CoreOptions Options(const std::string& text, int slots = 2, int borrowable = 0,
                    bool idle_cores = false) {
  CoreOptions o;
  StatusOr<Policy> policy = ParsePolicy(text);
  EXPECT_TRUE(policy.ok()) << policy.status();
  o.policy = *policy;
  o.shards = kShards;
  o.classes = 10;
  o.epochs = {1, 1, 1, 1};
  o.slots = slots;
  o.borrowable_slots = borrowable;
  o.use_idle_cores = idle_cores;
  o.estimates.initial_seconds_per_sample_epoch = 1e-3;
  o.estimates.safety = 1.5;
  o.estimates.margin = seconds(1);
  EXPECT_TRUE(o.Validate().ok());
  return o;
}

class CoreTest : public ::testing::Test {
 protected:
  Core& Make(const std::string& policy, int slots = 2, int borrowable = 0,
             bool idle_cores = false) {
    core_ = std::make_unique<Core>(
        Options(policy, slots, borrowable, idle_cores),
        std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
        std::vector<uint64_t>(kShards, 1), clock_.Now());
    return *core_;
  }
  // Deletion `seq` of one fresh sample in each (shard, slice), acknowledged
  // at `arrival` (now by default; earlier: by another engine).
  void Delete(uint64_t seq,
              const std::vector<std::pair<uint32_t, uint32_t>>& hits,
              std::optional<TimePoint> arrival = std::nullopt) {
    std::vector<SampleHit> live;
    for (auto [shard, slice] : hits) {
      live.push_back(
          {SampleId(seq * 100 + live.size()), ShardId(shard), slice});
    }
    core_->OnDeletion(DeletionSeq(seq), arrival.value_or(clock_.Now()), live);
  }
  std::vector<RetrainOrder> Poll() {
    std::vector<RetrainOrder> orders = core_->Poll(clock_.Now());
    for (const RetrainOrder& o : orders) running_[o.shard.value()] = o;
    return orders;
  }
  // The running order of `shard` commits after `held`.
  void Finish(uint32_t shard, Duration held = seconds(1), bool ok = true) {
    const RetrainOrder order = running_.at(shard);
    running_.erase(shard);
    if (ok) {
      core_->OnApplied(order, core_->PlanApply(order),
                       core_->versions()[shard] + 1, clock_.Now(), held,
                       order.predicted_sample_epochs);
    } else {
      core_->OnRetrainFailed(order, clock_.Now(), held);
    }
  }
  Verdict Decide(uint64_t request, const std::vector<int32_t>& votes) {
    return core_->Decide(request, votes, core_->versions(), clock_.Now());
  }
  // One request parked with every shard affected, shard 6 from its last
  // slice and the others from slice 0, under a rule that answers from the
  // unaffected shards: only the cheapest shard, 6, is retrained for it (not
  // the five a certificate would need), and its vote alone, 2, answers it
  // as `partial`: what a request arriving now gets.
  void ExpectParkedAnsweredByTheCheapestShard() {
    const std::vector<RetrainOrder> orders = Poll();
    ASSERT_EQ(orders.size(), 1u);
    EXPECT_EQ(orders[0].shard, ShardId(6));
    EXPECT_EQ(orders[0].reason, Reason::kWait);
    Finish(6);
    const std::vector<Revote> revotes = core_->Revotes();
    ASSERT_EQ(revotes.size(), 1u);
    const std::optional<Verdict> answer =
        core_->OnRevote(revotes[0], 2, clock_.Now());
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->decision, Decision::kPartial);
    EXPECT_EQ(answer->label, 2);
    EXPECT_FALSE(answer->exposed);
    EXPECT_EQ(core_->parked(), 0u);
  }
  static std::vector<uint32_t> ShardsOf(const std::vector<RetrainOrder>& o) {
    std::vector<uint32_t> shards;
    for (const RetrainOrder& r : o) shards.push_back(r.shard.value());
    return shards;
  }

  ManualClock clock_;
  std::unique_ptr<Core> core_;
  std::map<uint32_t, RetrainOrder> running_;
};

// Eight votes: `a` for label 1 on shards [0, a), label 2 on the rest.
std::vector<int32_t> Votes(int a) {
  std::vector<int32_t> v(kShards, 2);
  for (int k = 0; k < a; ++k) v[k] = 1;
  return v;
}

// ---- the decision table ---------------------------------------------------

TEST_F(CoreTest, NothingPendingIsCleanUnderEveryPolicy) {
  for (const char* p : {"eraser-lazy-wait", "eraser-lazy-partial",
                        "eraser-lazy-reject", "inference-first", "immediate"}) {
    Core& core = Make(p);
    EXPECT_FALSE(core.HoldsInference());
    const Verdict v = Decide(1, Votes(5));
    EXPECT_EQ(v.kind, Verdict::Kind::kAnswer) << p;
    EXPECT_EQ(v.decision, Decision::kClean) << p;
    EXPECT_EQ(v.label, 1) << p;
    EXPECT_EQ(v.margin, 2) << p;  // 5 against 3
    EXPECT_THAT(v.affected, IsEmpty());
    EXPECT_FALSE(v.exposed);
  }
}

TEST_F(CoreTest, WaitCertifiesParksAndAnswersAfterTheRevotes) {
  Core& core = Make("eraser:lazy,wait");
  Delete(1, {{7, 2}});  // shard 7 votes 2
  // 7 of 8 for label 1, one affected: certified.
  Verdict v = Decide(1, Votes(7));
  EXPECT_EQ(v.decision, Decision::kCertified);
  EXPECT_THAT(v.affected, ElementsAre(ShardId(7)));
  EXPECT_THAT(v.pending, ElementsAre(DeletionSeq(1)));
  EXPECT_EQ(v.watermark, 1u);
  // 5 against 3, and shards 0 and 1, which vote 1, affected too: the three
  // uncertain votes could flip it. It waits.
  Delete(2, {{0, 1}, {1, 0}});
  v = Decide(2, Votes(5));
  EXPECT_EQ(v.kind, Verdict::Kind::kParked);
  EXPECT_EQ(core.parked(), 1u);
  EXPECT_THAT(core.Revotes(), IsEmpty());  // no clean new model yet
  // The retrainings it needs start at once, for the wait.
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_FALSE(orders.empty());
  for (const RetrainOrder& o : orders) EXPECT_EQ(o.reason, Reason::kWait);
  for (const RetrainOrder& o : orders) Finish(o.shard.value());
  std::optional<Verdict> answer;
  for (const Revote& r : core.Revotes()) {
    EXPECT_EQ(r.request, 2u);
    EXPECT_EQ(r.version, 2u);
    answer = core.OnRevote(r, 1, clock_.Now());
    if (answer) break;
  }
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->decision, Decision::kWaited);
  EXPECT_EQ(answer->label, 1);
  EXPECT_EQ(core.parked(), 0u);
  // A stale revote changes nothing.
  EXPECT_FALSE(core.OnRevote({2, ShardId(7), 2}, 1, clock_.Now()).has_value());
}

TEST_F(CoreTest, PartialAnswersFromUnaffectedShardsAndWaitsWhenNoneIs) {
  Core& core = Make("eraser:lazy,partial");
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  // Labels 1 on shards 0-4: shards 0-2 affected; unaffected: 3, 4 vote 1,
  // 5, 6, 7 vote 2: the partial answer is 2.
  const Verdict v = Decide(1, Votes(5));
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(v.label, 2);
  EXPECT_FALSE(v.exposed);
  // Every shard affected: no partial answer exists; it waits (the policy
  // does not say reject).
  Delete(2, {{3, 0}, {4, 0}, {5, 0}, {6, 3}, {7, 0}});
  const Verdict w = Decide(2, Votes(5));
  EXPECT_EQ(w.kind, Verdict::Kind::kParked);
  EXPECT_EQ(core.parked(), 1u);
  ExpectParkedAnsweredByTheCheapestShard();
  EXPECT_EQ(Decide(3, Votes(5)).decision, Decision::kPartial);
}

// `soft` answers from the unaffected shards too, by their summed
// probabilities: where those and the votes' plurality disagree, the sums
// decide; affected shards' probabilities count for nothing.
TEST_F(CoreTest, SoftAnswersFromTheUnaffectedShardsProbabilities) {
  EXPECT_FALSE(Make("eraser:lazy,partial").UsesProbabilities());
  Core& soft = Make("eraser:lazy,soft");
  EXPECT_TRUE(soft.UsesProbabilities());
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  // Unaffected shards 3 and 4 vote 1 barely (0.5 against 0.45 for 2);
  // 5, 6 and 7 vote 2 (plurality: 2). Shards 0-2, affected, say 1 with
  // certainty. Sums over 3-7 for label 1: 1.0 + 0.2 * 3 = 1.6; for 2:
  // 0.9 + 0.3 * 3 = 1.8. Then make 5-7 unsure (0.34 for 2, 0.33 for 1):
  // label 1 sums 1.99 against 1.92, against the votes' plurality.
  constexpr std::size_t kClasses = 10;
  std::vector<float> probs(kShards * kClasses, 0.0f);
  // Labels 1 and 2 get p1 and p2; the other eight share the rest.
  auto set = [&](std::size_t k, float p1, float p2) {
    for (std::size_t c = 0; c < kClasses; ++c) {
      probs[k * kClasses + c] = (1.0f - p1 - p2) / 8;
    }
    probs[k * kClasses + 1] = p1;
    probs[k * kClasses + 2] = p2;
  };
  for (std::size_t k = 0; k < 3; ++k) set(k, 1.0f, 0.0f);
  for (std::size_t k = 3; k < 5; ++k) set(k, 0.5f, 0.45f);
  for (std::size_t k = 5; k < kShards; ++k) set(k, 0.2f, 0.3f);
  auto decide = [&](uint64_t request, const float* p) {
    return soft.Decide(request, Votes(5), soft.versions(), clock_.Now(),
                       Duration::max(), nullptr, 0, 1, p);
  };
  Verdict v = decide(1, probs.data());
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(v.label, 2);
  EXPECT_FALSE(v.exposed);
  for (std::size_t k = 5; k < kShards; ++k) set(k, 0.33f, 0.34f);
  v = decide(2, probs.data());
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(v.label, 1);
  // Without probabilities, the votes' plurality.
  EXPECT_EQ(decide(3, nullptr).label, 2);
  // Every shard affected: parked, as under `partial`, and it needs one
  // shard, not a certificate.
  Delete(2, {{3, 0}, {4, 0}, {5, 0}, {6, 3}, {7, 0}});
  EXPECT_EQ(decide(4, probs.data()).kind, Verdict::Kind::kParked);
  ExpectParkedAnsweredByTheCheapestShard();
}

// One row of prefix votes: the clean prefix of shard k (`stage[k]`, -1 for
// none) read while shard k served `served`, voting `votes[k]`.
PrefixVotes Prefix(const std::vector<int32_t>& stage,
                   const std::vector<int32_t>& votes, uint64_t served = 1) {
  PrefixVotes p;
  p.stage = stage;
  p.served.assign(kShards, served);
  p.version.assign(kShards, 1);
  p.votes = votes;
  return p;
}

TEST_F(CoreTest, PrefixVotesCountOnlyWhileClean) {
  Core& core = Make("eraser:lazy,prefix");
  EXPECT_THAT(core.WantedPrefixes(), ::testing::Each(-1));
  EXPECT_FALSE(core.UsesPrefixes());
  // Five of eight affected: shard 0 from slice 2, shard 1 from slice 3,
  // shard 2 from slice 0 (no clean prefix), shards 3 and 4 from slice 1.
  Delete(1, {{0, 2}, {1, 3}, {2, 0}});
  EXPECT_THAT(core.WantedPrefixes(), ElementsAre(1, 2, -1, -1, -1, -1, -1, -1));
  EXPECT_TRUE(core.UsesPrefixes());
  Delete(2, {{3, 1}, {4, 1}});
  EXPECT_THAT(core.WantedPrefixes(), ElementsAre(1, 2, -1, 0, 0, -1, -1, -1));
  // The unaffected 5, 6, 7 vote 2, 3, 3: 3 leads, whatever the prefixes,
  // however many, say.
  const std::vector<int32_t> all_four(kShards, 4);
  PrefixVotes prefix = Prefix({1, 2, -1, 0, 0, -1, -1, -1}, all_four);
  Verdict v = core.Decide(1, {0, 0, 0, 0, 0, 2, 3, 3}, core.versions(),
                          clock_.Now(), Duration::max(), &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(v.label, 3);
  // They vote 2, 3, 4: the clean prefixes of 0, 1, 3 and 4 break the tie
  // (shard 2 has none): 4, with each checkpoint's version reported.
  const std::vector<int32_t> votes = {0, 0, 0, 0, 0, 2, 3, 4};
  prefix.version = {1, 1, 1, 1, 0, 1, 1, 1};  // shard 4's checkpoint: v0
  v = core.Decide(2, votes, core.versions(), clock_.Now(), Duration::max(),
                  &prefix, 0, 1);
  EXPECT_EQ(v.kind, Verdict::Kind::kAnswer);
  EXPECT_EQ(v.decision, Decision::kPrefix);
  EXPECT_EQ(v.label, 4);
  EXPECT_FALSE(v.exposed);
  EXPECT_THAT(v.prefix_stages, ElementsAre(1, 2, -1, 0, 0, -1, -1, -1));
  EXPECT_THAT(v.versions, ElementsAre(1, 1, 1, 1, 0, 1, 1, 1));
  EXPECT_THAT(v.affected, ElementsAre(ShardId(0), ShardId(1), ShardId(2),
                                      ShardId(3), ShardId(4)));
  // A prefix deeper than the clean stage does not vote (shard 0's stage 2
  // holds slice 2), nor one read while the shard served another model
  // (served 0 for every shard): with neither, `partial` takes the lowest
  // tied label.
  prefix = Prefix({2, -1, -1, -1, -1, -1, -1, -1}, all_four);
  v = core.Decide(3, votes, core.versions(), clock_.Now(), Duration::max(),
                  &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(v.label, 2);
  prefix = Prefix({1, 2, -1, 0, 0, -1, -1, -1}, all_four, /*served=*/0);
  v = core.Decide(4, votes, core.versions(), clock_.Now(), Duration::max(),
                  &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPartial);
  // A deletion registered after the prefixes were loaded, in shard 0's
  // slice 0: its prefix is no longer clean and does not vote.
  Delete(3, {{0, 0}});
  EXPECT_EQ(core.CleanStage(ShardId(0)), -1);
  prefix = Prefix({1, 2, -1, 0, 0, -1, -1, -1}, all_four);
  v = core.Decide(5, votes, core.versions(), clock_.Now(), Duration::max(),
                  &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPrefix);
  EXPECT_THAT(v.prefix_stages, ElementsAre(-1, 2, -1, 0, 0, -1, -1, -1));
  const std::vector<int32_t> all_one(kShards, 1);
  // Every shard affected, none with a clean prefix: parked, and answered
  // once one shard is retrained, as under `partial`.
  Delete(4, {{1, 0}, {3, 0}, {4, 0}, {5, 0}, {6, 0}, {7, 0}});
  EXPECT_THAT(core.WantedPrefixes(), ::testing::Each(-1));
  prefix = Prefix(std::vector<int32_t>(kShards, -1), all_one);
  v = core.Decide(6, Votes(5), core.versions(), clock_.Now(), Duration::max(),
                  &prefix, 0, 1);
  EXPECT_EQ(v.kind, Verdict::Kind::kParked);
  const std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);  // one resolved shard answers
  Finish(orders[0].shard.value());
  const std::vector<Revote> revotes = core.Revotes();
  ASSERT_EQ(revotes.size(), 1u);
  const std::optional<Verdict> answer =
      core.OnRevote(revotes[0], 2, clock_.Now());
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->decision, Decision::kPartial);
}

TEST_F(CoreTest, PrefixesBreakATieAmongTheUnaffectedShards) {
  Core& core = Make("eraser:lazy,prefix");
  // Shards 0-2 affected (clean stages 1, 2, 0); the unaffected 3-7 vote
  // 1, 1, 2, 2, 3: a tie between 1 and 2, which `partial` gives to 1.
  Delete(1, {{0, 2}, {1, 3}, {2, 1}});
  const std::vector<int32_t> votes = {0, 0, 0, 1, 1, 2, 2, 3};
  auto decide = [&](uint64_t request,
                    const std::vector<int32_t>& prefix_votes) {
    PrefixVotes prefix = Prefix({1, 2, 0, -1, -1, -1, -1, -1}, prefix_votes);
    return core.Decide(request, votes, core.versions(), clock_.Now(),
                       Duration::max(), &prefix, 0, 1);
  };
  // Two prefixes for 2, one for 1: label 2, decided by all three.
  Verdict v = decide(1, {2, 2, 1, 0, 0, 0, 0, 0});
  EXPECT_EQ(v.decision, Decision::kPrefix);
  EXPECT_EQ(v.label, 2);
  EXPECT_FALSE(v.exposed);
  EXPECT_THAT(v.prefix_stages, ElementsAre(1, 2, 0, -1, -1, -1, -1, -1));
  // A prefix for a label outside the tie (3) does not count: one for 2, one
  // for 3, none clean from shard 2 (-1): 2, by shard 0's prefix alone.
  // Shard 1's checkpoint (v0) does not vote: its served version is
  // reported, with the shard among the affected, as for a shard left out.
  PrefixVotes outside =
      Prefix({1, 2, 0, -1, -1, -1, -1, -1}, {2, 3, -1, 0, 0, 0, 0, 0});
  outside.version = {0, 0, 1, 1, 1, 1, 1, 1};
  v = core.Decide(2, votes, core.versions(), clock_.Now(), Duration::max(),
                  &outside, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPrefix);
  EXPECT_EQ(v.label, 2);
  EXPECT_THAT(v.prefix_stages, ElementsAre(1, -1, -1, -1, -1, -1, -1, -1));
  EXPECT_THAT(v.versions, ElementsAre(0, 1, 1, 1, 1, 1, 1, 1));
  EXPECT_THAT(v.affected, ElementsAre(ShardId(0), ShardId(1), ShardId(2)));
  // Tied prefixes leave the lowest label, as `partial` would: 1.
  v = decide(3, {1, 2, 3, 0, 0, 0, 0, 0});
  EXPECT_EQ(v.decision, Decision::kPrefix);
  EXPECT_EQ(v.label, 1);
  // No prefix for a tied label: `partial`'s answer.
  v = decide(4, {3, 3, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(v.label, 1);
  EXPECT_THAT(v.prefix_stages, ::testing::IsEmpty());
  // No tie (shard 7 votes 2 too): the unaffected shards decide, whatever
  // the prefixes say.
  PrefixVotes prefix =
      Prefix({1, 2, 0, -1, -1, -1, -1, -1}, {1, 1, 1, 0, 0, 0, 0, 0});
  v = core.Decide(5, {0, 0, 0, 1, 1, 2, 2, 2}, core.versions(), clock_.Now(),
                  Duration::max(), &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(v.label, 2);
  // Every shard affected (3-7 from slice 2): the clean prefixes alone
  // decide among all labels: 0 and 1 vote 5, 2-4 vote 6, 5-7 have none.
  Delete(2, {{3, 2}, {4, 2}, {5, 2}, {6, 2}, {7, 2}});
  prefix = Prefix({1, 2, 0, 1, 1, -1, -1, -1}, {5, 5, 6, 6, 6, 0, 0, 0});
  v = core.Decide(6, votes, core.versions(), clock_.Now(), Duration::max(),
                  &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPrefix);
  EXPECT_EQ(v.label, 6);
  EXPECT_THAT(v.prefix_stages, ElementsAre(1, 2, 0, 1, 1, -1, -1, -1));
  // Under `partial` the same tie goes to the lowest label.
  Core& partial = Make("eraser:lazy,partial");
  Delete(2, {{0, 2}, {1, 3}, {2, 1}});
  EXPECT_FALSE(partial.UsesPrefixes());
  prefix = Prefix({1, 2, 0, -1, -1, -1, -1, -1}, {2, 2, 2, 0, 0, 0, 0, 0});
  v = partial.Decide(7, votes, partial.versions(), clock_.Now(),
                     Duration::max(), &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(v.label, 1);
}

TEST_F(CoreTest, PrefixAfterARetrainingNeedsAPrefixReadSinceIt) {
  Core& core = Make("eraser:lazy,prefix");
  // Five shards affected from slice 2: clean prefixes through stage 1.
  Delete(1, {{0, 2}, {1, 2}, {2, 2}, {3, 2}, {4, 2}});
  // The unaffected 5, 6, 7 tie (2, 3, 4); the prefixes break it (4).
  const std::vector<int32_t> tie = {0, 0, 0, 0, 0, 2, 3, 4};
  const std::vector<int32_t> all_four(kShards, 4);
  PrefixVotes prefix = Prefix({1, 1, 1, 1, 1, -1, -1, -1}, all_four);
  ASSERT_EQ(core.Decide(1, tie, core.versions(), clock_.Now(), Duration::max(),
                        &prefix, 0, 1)
                .decision,
            Decision::kPrefix);
  // A deletion in shard 0's slice 0 arrives; at the deadline shards 0 and
  // 1 (two slots) are retrained without their deletions (version 2), and
  // new deletions arrive in slice 3 of shards 0-4. Shard 0's stage 2 is
  // clean again, but only in version 2's chain: a prefix read while
  // version 1 was served may hold the sample retrained away, and does not
  // vote. Shards 2-4 still hold deletion 1 in slice 2: their clean stage
  // is 1, and a stage-2 prefix does not vote either.
  Delete(2, {{0, 0}});
  const std::vector<RetrainOrder> orders =
      core.Poll(clock_.Now() + seconds(40));
  clock_.Advance(seconds(40));
  for (const RetrainOrder& o : orders) running_[o.shard.value()] = o;
  ASSERT_TRUE(running_.count(0));
  Finish(0);
  for (auto& [shard, order] : std::map<uint32_t, RetrainOrder>(running_)) {
    Finish(shard);
  }
  Delete(3, {{0, 3}, {1, 3}, {2, 3}, {3, 3}, {4, 3}});
  EXPECT_EQ(core.CleanStage(ShardId(0)), 2);
  prefix = Prefix({2, 2, 2, 2, 2, -1, -1, -1}, all_four, /*served=*/1);
  Verdict v = core.Decide(2, tie, core.versions(), clock_.Now(),
                          Duration::max(), &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPartial);
  ASSERT_THAT(core.versions(), ElementsAre(2, 2, 1, 1, 1, 1, 1, 1));
  prefix.served = core.versions();
  v = core.Decide(3, tie, core.versions(), clock_.Now(), Duration::max(),
                  &prefix, 0, 1);
  EXPECT_EQ(v.decision, Decision::kPrefix);
  EXPECT_THAT(v.prefix_stages, ElementsAre(2, 2, -1, -1, -1, -1, -1, -1));
}

TEST_F(CoreTest, TheCoreJudgesDeadlineMisses) {
  for (const char* policy : {"eraser:lazy,partial", "immediate"}) {
    SCOPED_TRACE(policy);
    Core& core = Make(policy);
    Delete(1, {{0, 0}});
    Delete(2, {{1, 0}});
    clock_.Advance(seconds(20));
    const std::vector<RetrainOrder> orders = Poll();
    ASSERT_FALSE(orders.empty());
    // Shard 0 within the 30 s deadline, shard 1 after it: one miss, except
    // for `immediate`, which has no deadline.
    const RetrainOrder first = running_.at(0);
    running_.erase(0);
    const std::vector<Completion> on_time = core.OnApplied(
        first, core.PlanApply(first), 2, clock_.Now(), seconds(1), 1000);
    ASSERT_EQ(on_time.size(), 1u);
    EXPECT_FALSE(on_time[0].late);
    clock_.Advance(seconds(11));
    if (running_.count(1) == 0) Poll();
    Finish(1);
    EXPECT_EQ(core.pending_deletions(), 0u);
    EXPECT_EQ(core.deadline_misses(), core.policy().has_deadline() ? 1u : 0u);
    running_.clear();
  }
}

TEST_F(CoreTest, RejectRejects) {
  Make("eraser:lazy,reject");
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  const Verdict v = Decide(1, Votes(5));
  EXPECT_EQ(v.decision, Decision::kRejected);
  EXPECT_EQ(v.label, -1);
}

TEST_F(CoreTest, InferenceFirstAnswersUncertifiedAndExposed) {
  Make("inference-first");
  Delete(1, {{0, 0}});
  const Verdict v = Decide(1, Votes(8));  // certifiable, but not certified
  EXPECT_EQ(v.decision, Decision::kUncertified);
  EXPECT_TRUE(v.exposed);
  EXPECT_EQ(v.label, 1);
}

TEST_F(CoreTest, ImmediateHoldsEveryRequestUntilNothingIsPending) {
  Core& core = Make("immediate", 1);
  Delete(1, {{3, 1}});
  EXPECT_TRUE(core.HoldsInference());
  core.Hold(10, clock_.Now());
  EXPECT_THAT(core.TakeReleased(), IsEmpty());
  // One computed while the deletion arrived is held too.
  const Verdict v = Decide(11, Votes(8));
  EXPECT_EQ(v.kind, Verdict::Kind::kHeld);
  EXPECT_EQ(core.held(), 2u);
  ASSERT_EQ(Poll().size(), 1u);
  Finish(3);
  EXPECT_FALSE(core.HoldsInference());
  EXPECT_THAT(core.TakeReleased(), ElementsAre(10u, 11u));
  EXPECT_EQ(core.held(), 0u);
}

TEST_F(CoreTest, AShardReplacedSinceTheVotesIsAffected) {
  Core& core = Make("eraser:lazy,wait");
  const std::vector<uint64_t> before = core.versions();
  Delete(1, {{4, 3}});
  Poll();
  core.SetDraining(true);
  ASSERT_EQ(Poll().size(), 1u);
  Finish(4);
  // Nothing is pending, but shard 4's vote came from the model before the
  // swap, which still held the deleted sample.
  const Verdict v = core.Decide(1, Votes(8), before, clock_.Now());
  EXPECT_EQ(v.decision, Decision::kCertified);
  EXPECT_THAT(v.affected, ElementsAre(ShardId(4)));
  EXPECT_EQ(Decide(2, Votes(8)).decision, Decision::kClean);
}

TEST_F(CoreTest, ADeletionWhileParkedWidensTheRequestsAffectedSet) {
  Core& core = Make("eraser:lazy,wait");
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  ASSERT_EQ(Decide(1, Votes(5)).kind, Verdict::Kind::kParked);
  // Shard 4 voted with a model that holds this new deletion: it becomes
  // affected in the parked tally, so its retrained model's vote is asked
  // for too.
  Delete(2, {{4, 3}});
  core.SetDraining(true);
  while (!core.Idle()) {
    for (const RetrainOrder& o : Poll()) Finish(o.shard.value());
  }
  std::set<uint32_t> asked;
  for (const Revote& r : core.Revotes()) asked.insert(r.shard.value());
  EXPECT_THAT(asked, ElementsAre(0, 1, 2, 4));
}

TEST_F(CoreTest, AParkedVoteFromAModelSwappedOutSinceIsAskedAgain) {
  Core& core = Make("eraser:lazy,wait");
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  ASSERT_EQ(Decide(1, Votes(5)).kind, Verdict::Kind::kParked);
  // Another engine's model of shard 5, which nothing pending here touches:
  // it may leave out a deletion this engine has not registered yet, which
  // the model shard 5 voted with still holds.
  core.OnReplaced(ShardId(5), 2, {}, clock_.Now());
  core.SetDraining(true);
  while (!core.Idle()) {
    for (const RetrainOrder& o : Poll()) Finish(o.shard.value());
  }
  std::set<uint32_t> asked;
  std::optional<Verdict> answer;
  for (const Revote& r : core.Revotes()) {
    asked.insert(r.shard.value());
    if (r.shard.value() != 5 && !answer) {
      answer = core.OnRevote(r, 1, clock_.Now());
    }
  }
  EXPECT_THAT(asked, ElementsAre(0, 1, 2, 5));
  // 5 of 7 for label 1 with shard 5 unknown: certified without the old
  // vote, which is not counted as the served model's.
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->decision, Decision::kWaited);
  EXPECT_THAT(answer->affected, ::testing::Contains(ShardId(5)));
}

TEST_F(CoreTest, APendingDeletionIsFoundByExactlyTheSamplesItNames) {
  Core& core = Make("eraser:lazy,wait");
  Delete(1, {{0, 0}, {3, 2}});  // samples 100 (shard 0) and 101 (shard 3)
  const SampleHit a{SampleId(100), ShardId(0), 0};
  const SampleHit b{SampleId(101), ShardId(3), 2};
  EXPECT_THAT(core.PendingNaming({b, a}), ElementsAre(DeletionSeq(1)));
  EXPECT_THAT(core.PendingNaming({a}), IsEmpty()) << "a part of it";
  EXPECT_THAT(core.PendingNaming({a, b, {SampleId(7), ShardId(0), 0}}),
              IsEmpty())
      << "more than it";
  EXPECT_THAT(core.PendingNaming({}), IsEmpty());
  // Another deletion of the same samples (another target): both.
  core.OnDeletion(DeletionSeq(2), clock_.Now(), {a, b});
  EXPECT_THAT(core.PendingNaming({a, b}),
              ElementsAre(DeletionSeq(1), DeletionSeq(2)));
  // Once shard 0 has left sample 100 out, they name 101 only.
  core.OnReplaced(ShardId(0), 2, {SampleId(100)}, clock_.Now());
  EXPECT_THAT(core.PendingNaming({b}),
              ElementsAre(DeletionSeq(1), DeletionSeq(2)));
  EXPECT_THAT(core.PendingNaming({a, b}), IsEmpty());
}

TEST_F(CoreTest, WatermarkRisesWithEveryAcknowledgement) {
  Core& core = Make("eraser-lazy-partial");
  EXPECT_EQ(core.watermark(), 0u);
  Delete(1, {{0, 0}});
  EXPECT_EQ(core.watermark(), 1u);
  // A deletion whose samples are all gone already raises it too.
  core.OnDeletion(DeletionSeq(2), clock_.Now(), {});
  EXPECT_EQ(core.watermark(), 2u);
  EXPECT_EQ(core.pending_deletions(), 1u);
  EXPECT_EQ(Decide(1, Votes(8)).watermark, 2u);
}

// Requests register after their appends, so 4 may register before 3: the
// watermark promises every deletion up to it, and waits for 3.
TEST_F(CoreTest, WatermarkRisesOnlyOverDeletionsAllRegistered) {
  Core& core = Make("eraser-lazy-partial");
  Delete(1, {{0, 0}});
  Delete(2, {{1, 0}});
  Delete(4, {{2, 0}});
  EXPECT_EQ(core.watermark(), 2u);
  EXPECT_EQ(Decide(1, Votes(8)).watermark, 2u);
  Delete(5, {{3, 0}});
  EXPECT_EQ(core.watermark(), 2u);
  Delete(3, {{4, 0}});
  EXPECT_EQ(core.watermark(), 5u);
  // Known from the log at start (applied ones are not registered).
  core.KnownUpTo(DeletionSeq(9));
  EXPECT_EQ(core.watermark(), 9u);
  Delete(11, {{5, 0}});
  core.KnownUpTo(DeletionSeq(10));
  EXPECT_EQ(core.watermark(), 11u);
  Delete(7, {{6, 0}});  // known already: registered, the watermark kept
  EXPECT_EQ(core.watermark(), 11u);
  EXPECT_TRUE(core.IsPending(DeletionSeq(7)));
}

TEST_F(CoreTest, TakeAllWaitingForgetsParkedAndHeld) {
  Core& core = Make("eraser:lazy,wait");
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  ASSERT_EQ(Decide(1, Votes(5)).kind, Verdict::Kind::kParked);
  core.Hold(2, clock_.Now());
  EXPECT_THAT(core.TakeAllWaiting(), ::testing::UnorderedElementsAre(1u, 2u));
  EXPECT_EQ(core.parked() + core.held(), 0u);
}

// ---- retraining plans -----------------------------------------------------

TEST_F(CoreTest, ImmediateRetrainsAtOnceAndBatchesWhatArrivesMeanwhile) {
  Core& core = Make("immediate");
  Delete(1, {{2, 1}});
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(2));
  EXPECT_EQ(orders[0].first_slice, 1u);
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(1)));
  EXPECT_THAT(orders[0].samples, ElementsAre(SampleId(100)));
  EXPECT_EQ(orders[0].reason, Reason::kImmediate);
  EXPECT_EQ(orders[0].predicted_sample_epochs, 3000u);
  EXPECT_DOUBLE_EQ(orders[0].predicted_seconds, 4.5);
  // Two more arrive while shard 2 retrains: they wait, then go together
  // in one retraining from the earliest slice.
  Delete(2, {{2, 3}});
  Delete(3, {{2, 0}});
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_THAT(core.AffectedShards(), ElementsAre(ShardId(2)));
  Finish(2);
  EXPECT_EQ(core.pending_deletions(), 2u);
  orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].first_slice, 0u);
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(2), DeletionSeq(3)));
  Finish(2);
  EXPECT_TRUE(core.Idle());
  EXPECT_THAT(core.AffectedShards(), IsEmpty());
}

TEST_F(CoreTest, ImmediateRespectsTheSlotsOldestFirst) {
  Core& core = Make("immediate", 2);
  Delete(1, {{5, 0}});
  clock_.Advance(milliseconds(10));
  Delete(2, {{1, 0}});
  clock_.Advance(milliseconds(10));
  Delete(3, {{3, 0}});
  EXPECT_THAT(ShardsOf(Poll()), ElementsAre(5, 1));
  EXPECT_EQ(core.running(), 2u);
  EXPECT_THAT(Poll(), IsEmpty());
  Finish(5);
  EXPECT_THAT(ShardsOf(Poll()), ElementsAre(3));
}

TEST_F(CoreTest, InferenceFirstRetrainsAtTheLatestStartBeforeTheDeadline) {
  Core& core = Make("inference-first,deadline=30s");
  const TimePoint t0 = clock_.Now();
  Delete(1, {{1, 3}});
  EXPECT_THAT(Poll(), IsEmpty());
  // Planned 1.5 s, plus the 1 s margin: start 2.5 s before the deadline.
  ASSERT_TRUE(core.NextWakeup().has_value());
  EXPECT_EQ(*core.NextWakeup(), t0 + milliseconds(27'500));
  clock_.AdvanceTo(t0 + milliseconds(27'400));
  EXPECT_THAT(Poll(), IsEmpty());
  clock_.AdvanceTo(t0 + milliseconds(27'500));
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].reason, Reason::kDeadline);
  EXPECT_FALSE(orders[0].borrowed);
}

TEST_F(CoreTest, LazyWaitRetrainsTheCheapestNeededShardOnly) {
  Core& core = Make("eraser:lazy,wait");
  Delete(1, {{0, 0}});             // 4,000 sample-epochs
  Delete(2, {{1, 3}});             // 1,000
  Delete(3, {{5, 2}});             // 2,000
  EXPECT_THAT(Poll(), IsEmpty());  // lazy: nothing yet
  // 5 against 3 with shards 0, 1 and 5 affected: one resolved shard voting
  // 1 would certify it.
  ASSERT_EQ(Decide(7, Votes(5)).kind, Verdict::Kind::kParked);
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(1));
  EXPECT_EQ(orders[0].reason, Reason::kWait);
  EXPECT_THAT(Poll(), IsEmpty());  // one is on its way
  Finish(1);
  // The retrained shard 1 votes 2 now: still short; the next cheapest.
  ASSERT_EQ(core.Revotes().size(), 1u);
  EXPECT_FALSE(core.OnRevote(core.Revotes()[0], 2, clock_.Now()).has_value());
  EXPECT_THAT(ShardsOf(Poll()), ElementsAre(5));
  Finish(5);
  ASSERT_EQ(core.Revotes().size(), 1u);
  EXPECT_TRUE(core.OnRevote(core.Revotes()[0], 1, clock_.Now()).has_value());
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_EQ(core.pending_deletions(), 1u);  // shard 0 waits for its deadline
}

TEST_F(CoreTest, WaitStartsSeveralWhenOneCannotSuffice) {
  Make("eraser:lazy,wait", 2);
  Delete(1, {{0, 0}});
  Delete(2, {{1, 3}});
  Delete(3, {{2, 1}});
  // 5 against 3 with three of the five affected: two must be resolved.
  ASSERT_EQ(Decide(7, Votes(5)).kind, Verdict::Kind::kParked);
  // The two cheapest: shard 1 (from slice 3), then shard 2 (from slice 1).
  EXPECT_THAT(ShardsOf(Poll()), ElementsAre(1, 2));
}

TEST_F(CoreTest, PartialAndRejectNeverRetrainForARequest) {
  for (const char* policy : {"eraser:lazy,partial", "eraser:lazy,reject"}) {
    Make(policy);
    Delete(1, {{0, 0}, {1, 0}, {2, 0}});
    EXPECT_EQ(Decide(1, Votes(5)).kind, Verdict::Kind::kAnswer) << policy;
    EXPECT_THAT(Poll(), IsEmpty()) << policy;
  }
}

TEST_F(CoreTest, BatchStartsWhenNDeletionsWait) {
  Make("eraser:batch:3,partial", 2);
  Delete(1, {{0, 2}});
  Delete(2, {{4, 1}});
  EXPECT_THAT(Poll(), IsEmpty());
  Delete(3, {{0, 3}, {7, 0}});
  std::vector<RetrainOrder> orders = Poll();
  // Three shards wait; two slots. Each order covers its shard's deletions.
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[0].reason, Reason::kBatch);
  EXPECT_EQ(orders[0].shard, ShardId(0));
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(1), DeletionSeq(3)));
  EXPECT_EQ(orders[0].first_slice, 2u);
  // The batch is armed: the third shard starts when a slot frees up.
  Finish(0);
  EXPECT_EQ(Poll().size(), 1u);
}

TEST_F(CoreTest, PeriodicTicks) {
  Core& core = Make("eraser:periodic:10s,partial");
  const TimePoint t0 = clock_.Now();
  Delete(1, {{3, 1}});
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_EQ(*core.NextWakeup(), t0 + seconds(10));
  clock_.AdvanceTo(t0 + seconds(10));
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].reason, Reason::kPeriodic);
  Finish(3);
  clock_.Advance(seconds(1));
  Delete(2, {{3, 2}});
  EXPECT_THAT(Poll(), IsEmpty());  // waits for the next tick
  EXPECT_EQ(*core.NextWakeup(), t0 + seconds(20));
}

// A tick that passes while every slot is busy is taken when a slot frees,
// and the Core does not ask to be woken for it meanwhile (it asked every
// millisecond until 2026-12-07: a control loop polling at 1 kHz through
// every retraining that outlasted a tick).
TEST_F(CoreTest, APeriodicTickPassedWhileEverySlotIsBusyWaitsForASlot) {
  Core& core = Make("eraser:periodic:10s,partial", 1);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{3, 1}});
  clock_.AdvanceTo(t0 + seconds(10));
  ASSERT_EQ(Poll().size(), 1u);  // shard 3 holds the only slot
  Delete(2, {{4, 1}});
  clock_.AdvanceTo(t0 + seconds(20));
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_EQ(core.NextWakeup(), std::nullopt);
  clock_.Advance(seconds(3));
  Finish(3);
  const std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(4));
  EXPECT_EQ(orders[0].reason, Reason::kPeriodic);
}

TEST_F(CoreTest, IdleStartsTheCheapestWhenTheQueueIsEmptyAndLoadLow) {
  Core& core = Make("eraser:idle:0.25,partial", 1);
  Delete(1, {{0, 0}});
  Delete(2, {{1, 3}});
  core.OnLoad(3, 0.1);
  EXPECT_THAT(Poll(), IsEmpty());
  core.OnLoad(0, 0.5);
  EXPECT_THAT(Poll(), IsEmpty());
  core.OnLoad(0, 0.1);
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(1));  // the cheaper one first
  EXPECT_EQ(orders[0].reason, Reason::kIdle);
}

TEST_F(CoreTest, ShardsKeepsAtMostAShardsAffectedOldestRetrainedFirst) {
  Core& core = Make("eraser:shards:2,partial", 4);
  Delete(1, {{0, 1}});
  Delete(2, {{0, 2}});
  clock_.Advance(seconds(1));
  Delete(3, {{6, 0}});
  EXPECT_THAT(Poll(), IsEmpty());  // two shards affected
  clock_.Advance(seconds(1));
  Delete(4, {{3, 3}});
  // Three: the oldest shard goes, with both its deletions; the others keep
  // batching.
  std::vector<RetrainOrder> orders = Poll();
  EXPECT_THAT(ShardsOf(orders), ElementsAre(0));
  EXPECT_EQ(orders[0].reason, Reason::kShards);
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(1), DeletionSeq(2)));
  Delete(5, {{6, 1}});  // batched on an affected shard
  EXPECT_THAT(Poll(), IsEmpty());
  Finish(0);
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_THAT(core.AffectedShards(), ElementsAre(ShardId(3), ShardId(6)));
}

// The apply window: a deletion acknowledged after an order's apply plan was
// written, naming only a sample the order leaves out, is not forgotten with
// the order (its record was not written with it): it stays pending, and the
// next order of the shard (with nothing left to train) writes it.
TEST_F(CoreTest, ADeletionAfterTheCommittedPlanIsWrittenByTheNextOrder) {
  Core& core = Make("eraser:lazy,wait");
  Delete(1, {{0, 0}});  // sample 100 of shard 0
  core.SetDraining(true);
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  const ApplyPlan plan = core.PlanApply(orders[0]);
  EXPECT_THAT(plan.excluded, ElementsAre(DeletionSeq(1)));
  // Acknowledged while the store writes the plan: the same sample.
  core.OnDeletion(DeletionSeq(2), clock_.Now(),
                  {{SampleId(100), ShardId(0), 0}});
  running_.erase(0);
  core.OnApplied(orders[0], plan, 2, clock_.Now(), seconds(1), 1000);
  EXPECT_FALSE(core.IsPending(DeletionSeq(1)));
  EXPECT_TRUE(core.IsPending(DeletionSeq(2)));
  orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(0));
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(2)));
  EXPECT_THAT(orders[0].samples, ElementsAre(SampleId(100)));
  const ApplyPlan next = core.PlanApply(orders[0]);
  EXPECT_THAT(next.completed, ElementsAre(DeletionSeq(2)));
  Finish(0);
  EXPECT_TRUE(core.Idle());
}

// The second order of the test above retrains nothing (its sample is
// already left out) and keeps the version: a request that parked on the
// second deletion, computed with that very model, is answered by a revote
// once the deletion completes, not left to expire.
TEST_F(CoreTest, ARequestParkedOnADeletionAnEmptyApplyCompletesIsAnswered) {
  Core& core = Make("eraser:lazy,wait", 3);
  Delete(1, {{0, 0}});
  core.SetDraining(true);
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  const ApplyPlan plan = core.PlanApply(orders[0]);
  core.OnDeletion(DeletionSeq(2), clock_.Now(),
                  {{SampleId(100), ShardId(0), 0}});
  running_.erase(0);
  core.OnApplied(orders[0], plan, 2, clock_.Now(), seconds(1), 1000);
  core.SetDraining(false);
  ASSERT_TRUE(core.IsPending(DeletionSeq(2)));
  // 5 against 3 with shards 0..2 for label 1 able to flip it: shard 0,
  // which votes 1, is affected, and so are shards 1 and 2.
  Delete(3, {{1, 0}, {2, 0}});
  Verdict v = Decide(7, Votes(5));
  ASSERT_EQ(v.kind, Verdict::Kind::kParked);
  // Shards 1 and 2 retrain to version 2; shard 0's order retrains nothing
  // and its version stays 2.
  core.SetDraining(true);
  orders = Poll();
  ASSERT_EQ(orders.size(), 3u);
  for (const RetrainOrder& o : orders) {
    if (o.shard != ShardId(0)) {
      Finish(o.shard.value());
      continue;
    }
    running_.erase(0);
    core.OnApplied(o, core.PlanApply(o), 2, clock_.Now(), seconds(1), 0);
  }
  EXPECT_FALSE(core.IsPending(DeletionSeq(2)));
  std::set<uint32_t> asked;
  std::optional<Verdict> answer;
  for (const Revote& r : core.Revotes()) {
    asked.insert(r.shard.value());
    if (!answer) answer = core.OnRevote(r, 1, clock_.Now());
  }
  EXPECT_EQ(asked.count(0), 1u) << "no revote for the shard kept at version 2";
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->decision, Decision::kWaited);
  EXPECT_EQ(answer->label, 1);
  EXPECT_EQ(core.parked(), 0u);
}

TEST_F(CoreTest, DrainingRetrainsEverythingWhateverThePolicy) {
  Core& core = Make("eraser:lazy,partial,deadline=1h", 2);
  Delete(1, {{0, 1}});
  Delete(2, {{3, 2}});
  Delete(3, {{5, 0}});
  EXPECT_THAT(Poll(), IsEmpty());
  core.SetDraining(true);
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[0].reason, Reason::kDrain);
  Finish(orders[0].shard.value());
  EXPECT_EQ(Poll().size(), 1u);
}

TEST_F(CoreTest, AFailedRetrainingReturnsItsDeletionsAfterABackoff) {
  Core& core = Make("immediate");
  Delete(1, {{4, 2}});
  ASSERT_EQ(Poll().size(), 1u);
  Finish(4, seconds(1), /*ok=*/false);
  EXPECT_EQ(core.pending_deletions(), 1u);
  EXPECT_EQ(core.versions()[4], 1u);
  // Not retried at once: a failure that repeats would spin.
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_THAT(core.BackingOff(clock_.Now()), ElementsAre(ShardId(4)));
  ASSERT_TRUE(core.NextWakeup().has_value());
  EXPECT_EQ(*core.NextWakeup(), clock_.Now() + seconds(1));
  clock_.Advance(seconds(1));
  std::vector<RetrainOrder> again = Poll();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].first_slice, 2u);
  EXPECT_THAT(again[0].covers, ElementsAre(DeletionSeq(1)));
}

// The retry and max_wait options are defined once (the engine's options
// hold the same types), with one validator each, naming the field.
TEST(CoreOptionsTest, RetryAndMaxWaitHaveOneValidatorNamingTheField) {
  RetryOptions retry{seconds(1), seconds(5)};
  EXPECT_EQ(retry.Delay(1), seconds(1));
  EXPECT_EQ(retry.Delay(3), seconds(4));
  EXPECT_EQ(retry.Delay(4), seconds(5));
  EXPECT_EQ(retry.Delay(1000), seconds(5));
  CoreOptions o = Options("eraser-lazy-partial");
  o.retry.max = milliseconds(500);
  EXPECT_EQ(o.Validate().message(), "retry.max must be at least retry.initial");
  o.retry = RetryOptions{Duration(0), seconds(1)};
  EXPECT_EQ(o.Validate().message(), "retry.initial must be positive");
  o = Options("eraser-lazy-partial");
  o.max_wait = -seconds(1);
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(o.Validate().message(), "max_wait must be positive");
}

TEST_F(CoreTest, TheBackoffDoublesUpToItsCapAndSuccessResetsIt) {
  CoreOptions o = Options("immediate");
  o.retry.initial = seconds(1);
  o.retry.max = seconds(5);
  core_ = std::make_unique<Core>(
      o, std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
      std::vector<uint64_t>(kShards, 1), clock_.Now());
  Core& core = *core_;
  Delete(1, {{2, 0}});
  // Failures after 1, 2, 4, 5, 5 s.
  for (int wait : {1, 2, 4, 5, 5}) {
    ASSERT_EQ(Poll().size(), 1u);
    Finish(2, seconds(1), /*ok=*/false);
    clock_.Advance(seconds(wait) - milliseconds(1));
    EXPECT_THAT(Poll(), IsEmpty()) << wait;
    clock_.Advance(milliseconds(1));
  }
  ASSERT_EQ(Poll().size(), 1u);
  Finish(2);
  EXPECT_EQ(core.pending_deletions(), 0u);
  EXPECT_THAT(core.BackingOff(clock_.Now()), IsEmpty());
  // The next failure starts from 1 s again.
  Delete(2, {{2, 0}});
  ASSERT_EQ(Poll().size(), 1u);
  Finish(2, seconds(1), /*ok=*/false);
  clock_.Advance(seconds(1));
  EXPECT_EQ(Poll().size(), 1u);
}

// The erasure owed after a failed compaction is Core state: retried with
// the shards' backoff, on the Core's wake-ups; a success clears it unless
// another failure was recorded while the retry ran.
TEST_F(CoreTest, AnOwedErasureIsRetriedWithTheBackoff) {
  CoreOptions o = Options("eraser-lazy-partial");
  o.retry.initial = seconds(1);
  o.retry.max = seconds(3);
  core_ = std::make_unique<Core>(
      o, std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
      std::vector<uint64_t>(kShards, 1), clock_.Now());
  Core& core = *core_;
  uint64_t attempt = 0;
  EXPECT_FALSE(core.erasure_owed());
  EXPECT_FALSE(core.ErasureDue(clock_.Now(), &attempt));
  EXPECT_EQ(core.NextWakeup(), std::nullopt);
  // Retries after 1, 2, 3, 3 s.
  for (int wait : {1, 2, 3, 3}) {
    const TimePoint retry = core.OnErasureFailed(clock_.Now());
    EXPECT_EQ(retry, clock_.Now() + seconds(wait));
    EXPECT_TRUE(core.erasure_owed());
    EXPECT_EQ(core.NextWakeup(), retry);
    clock_.AdvanceTo(retry - milliseconds(1));
    EXPECT_FALSE(core.ErasureDue(clock_.Now(), &attempt)) << wait;
    clock_.AdvanceTo(retry);
    EXPECT_TRUE(core.ErasureDue(clock_.Now(), &attempt)) << wait;
  }
  // An apply's compaction fails while the retry runs: the debt stays.
  core.OnErasureFailed(clock_.Now());
  core.OnErasureFinished(attempt);
  EXPECT_TRUE(core.erasure_owed());
  clock_.Advance(seconds(3));
  ASSERT_TRUE(core.ErasureDue(clock_.Now(), &attempt));
  core.OnErasureFinished(attempt);
  EXPECT_FALSE(core.erasure_owed());
  EXPECT_FALSE(core.ErasureDue(clock_.Now(), &attempt));
  EXPECT_EQ(core.NextWakeup(), std::nullopt);
  // The next failure starts from 1 s again; owed at open, it is due at once.
  EXPECT_EQ(core.OnErasureFailed(clock_.Now()), clock_.Now() + seconds(1));
  Make("eraser-lazy-partial");
  core_->OnErasureOwedAtOpen(clock_.Now());
  EXPECT_TRUE(core_->ErasureDue(clock_.Now(), &attempt));
}

TEST_F(CoreTest, ABackingOffShardDoesNotBlockTheOthers) {
  Make("immediate", 1);
  Delete(1, {{0, 0}});
  ASSERT_THAT(ShardsOf(Poll()), ElementsAre(0u));
  Finish(0, seconds(1), /*ok=*/false);
  Delete(2, {{1, 0}});
  EXPECT_THAT(ShardsOf(Poll()), ElementsAre(1u));
}

TEST_F(CoreTest, ABackoffPastTheDeadlineIsAtRisk) {
  CoreOptions o = Options("eraser:lazy,wait,deadline=20s");
  o.retry.initial = seconds(30);
  o.retry.max = seconds(30);
  core_ = std::make_unique<Core>(
      o, std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
      std::vector<uint64_t>(kShards, 1), clock_.Now());
  Core& core = *core_;
  Delete(1, {{3, 0}});
  clock_.Advance(seconds(13));  // the latest start of a 6 s plan, 1 s margin
  ASSERT_THAT(ShardsOf(Poll()), ElementsAre(3u));
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 0u);
  // Restarted now it would still make it; after the 30 s backoff it cannot.
  Finish(3, Duration(0), /*ok=*/false);
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 1u);
}

TEST_F(CoreTest, AParkedRequestFallsBackAfterMaxWait) {
  CoreOptions o = Options("eraser:lazy,wait");
  o.max_wait = seconds(10);
  core_ = std::make_unique<Core>(
      o, std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
      std::vector<uint64_t>(kShards, 1), clock_.Now());
  Core& core = *core_;
  // Shards 0-2 affected, 5 votes for 1: parked; unaffected shards 3, 4
  // vote 1 and 5-7 vote 2: its partial answer is 2.
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  ASSERT_EQ(Decide(1, Votes(5)).kind, Verdict::Kind::kParked);
  // The retrainings it needs fail.
  for (const RetrainOrder& r : Poll()) {
    Finish(r.shard.value(), seconds(1), /*ok=*/false);
  }
  EXPECT_EQ(*core.NextWakeup(), clock_.Now() + seconds(1));  // the retry
  clock_.Advance(seconds(10) - milliseconds(1));
  EXPECT_THAT(core.ExpireParked(clock_.Now()), IsEmpty());
  clock_.Advance(milliseconds(1));
  std::vector<std::pair<uint64_t, Verdict>> expired =
      core.ExpireParked(clock_.Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, 1u);
  EXPECT_EQ(expired[0].second.decision, Decision::kPartial);
  EXPECT_EQ(expired[0].second.label, 2);
  EXPECT_FALSE(expired[0].second.exposed);
  // Every shard affected: nothing to answer partially from; rejected.
  Delete(2, {{3, 0}, {4, 0}, {5, 0}, {6, 0}, {7, 0}});
  ASSERT_EQ(Decide(2, Votes(5)).kind, Verdict::Kind::kParked);
  EXPECT_LE(*core.NextWakeup(), clock_.Now() + seconds(10));
  clock_.Advance(seconds(10));
  expired = core.ExpireParked(clock_.Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, 2u);
  EXPECT_EQ(expired[0].second.decision, Decision::kRejected);
  EXPECT_EQ(core.parked(), 0u);
}

TEST_F(CoreTest, AHeldRequestIsRejectedAfterMaxWait) {
  CoreOptions o = Options("immediate");
  o.max_wait = seconds(10);
  core_ = std::make_unique<Core>(
      o, std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
      std::vector<uint64_t>(kShards, 1), clock_.Now());
  Core& core = *core_;
  Delete(1, {{3, 1}});
  core.Hold(10, clock_.Now());
  for (const RetrainOrder& r : Poll())
    Finish(r.shard.value(), seconds(1), false);
  clock_.Advance(seconds(10) - milliseconds(1));
  EXPECT_THAT(core.ExpireParked(clock_.Now()), IsEmpty());
  clock_.Advance(milliseconds(1));
  std::vector<std::pair<uint64_t, Verdict>> expired =
      core.ExpireParked(clock_.Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, 10u);
  EXPECT_EQ(expired[0].second.decision, Decision::kRejected);
  EXPECT_EQ(core.held(), 0u);
}

// A client's own timeout (the protocol's parameters.timeout): shorter than
// max_wait it decides when the request falls back; longer, max_wait does.
TEST_F(CoreTest, ARequestsOwnMaxWaitBoundsItsWaitBelowMaxWait) {
  CoreOptions o = Options("eraser:lazy,wait");
  o.max_wait = seconds(10);
  core_ = std::make_unique<Core>(
      o, std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
      std::vector<uint64_t>(kShards, 1), clock_.Now());
  Core& core = *core_;
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  const std::vector<uint64_t> versions = core.versions();
  ASSERT_EQ(core.Decide(1, Votes(5), versions, clock_.Now(), seconds(2)).kind,
            Verdict::Kind::kParked);
  ASSERT_EQ(core.Decide(2, Votes(5), versions, clock_.Now(), seconds(60)).kind,
            Verdict::Kind::kParked);
  // The engine is woken for the shorter one.
  EXPECT_LE(*core.NextWakeup(), clock_.Now() + seconds(2));
  clock_.Advance(seconds(2) - milliseconds(1));
  EXPECT_THAT(core.ExpireParked(clock_.Now()), IsEmpty());
  clock_.Advance(milliseconds(1));
  std::vector<std::pair<uint64_t, Verdict>> expired =
      core.ExpireParked(clock_.Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, 1u);
  EXPECT_EQ(expired[0].second.decision, Decision::kPartial);
  // 60 s asked, 10 s allowed.
  clock_.Advance(seconds(8) - milliseconds(1));
  EXPECT_THAT(core.ExpireParked(clock_.Now()), IsEmpty());
  clock_.Advance(milliseconds(1));
  expired = core.ExpireParked(clock_.Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, 2u);
  // Held by the immediate baseline: the same bound; zero falls back at once.
  CoreOptions immediate = Options("immediate");
  immediate.max_wait = seconds(10);
  Core held(immediate,
            std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
            std::vector<uint64_t>(kShards, 1), clock_.Now());
  held.OnDeletion(DeletionSeq(1), clock_.Now(), {{SampleId(1), ShardId(3), 1}});
  held.Hold(10, clock_.Now(), milliseconds(500));
  held.Hold(11, clock_.Now(), Duration(0));
  expired = held.ExpireParked(clock_.Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, 11u);
  clock_.Advance(milliseconds(500));
  expired = held.ExpireParked(clock_.Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, 10u);
  EXPECT_EQ(expired[0].second.decision, Decision::kRejected);
}

TEST_F(CoreTest, TheTestingHookSeesEveryDecision) {
  CoreOptions o = Options("eraser:lazy,partial");
  o.testing_affected_hook = [](std::vector<uint8_t>* affected) {
    (*affected)[0] = 0;  // the planted bug: shard 0 forgotten
  };
  core_ = std::make_unique<Core>(
      o, std::vector<std::vector<uint64_t>>(kShards, {1000, 0, 0, 0}),
      std::vector<uint64_t>(kShards, 1), clock_.Now());
  Delete(1, {{0, 0}});
  EXPECT_EQ(Decide(1, Votes(5)).decision, Decision::kClean);
}

// ---- apply plans ----------------------------------------------------------

TEST_F(CoreTest, AnOwnerDeletionIsAppliedWhenItsLastShardIs) {
  Core& core = Make("immediate", 2);
  Delete(1, {{0, 1}, {3, 2}});
  Delete(1, {{0, 1}, {3, 2}});  // repeated: ignored
  std::vector<RetrainOrder> orders = Poll();
  EXPECT_THAT(ShardsOf(orders), ElementsAre(0, 3));
  ApplyPlan first = core.PlanApply(orders[0]);
  EXPECT_THAT(first.excluded, ElementsAre(DeletionSeq(1)));
  EXPECT_THAT(first.completed, IsEmpty());  // shard 3 still holds it
  Finish(0);
  EXPECT_EQ(core.pending_deletions(), 1u);
  EXPECT_THAT(core.AffectedShards(), ElementsAre(ShardId(3)));
  ApplyPlan last = core.PlanApply(orders[1]);
  EXPECT_THAT(last.completed, ElementsAre(DeletionSeq(1)));
  Finish(3);
  EXPECT_TRUE(core.Idle());
}

TEST_F(CoreTest, ADeletionOfSamplesARunningRetrainingLeavesOutIsDoneByIt) {
  Core& core = Make("immediate", 1);
  core.OnDeletion(DeletionSeq(1), clock_.Now(),
                  {{SampleId(5), ShardId(2), 1}, {SampleId(6), ShardId(2), 3}});
  ASSERT_EQ(Poll().size(), 1u);
  // While it runs: one deletion of a sample it leaves out, one of another.
  core.OnDeletion(DeletionSeq(2), clock_.Now(), {{SampleId(6), ShardId(2), 3}});
  core.OnDeletion(DeletionSeq(3), clock_.Now(),
                  {{SampleId(5), ShardId(2), 1}, {SampleId(9), ShardId(2), 0}});
  const ApplyPlan plan = core.PlanApply(running_.at(2));
  EXPECT_THAT(plan.completed, ElementsAre(DeletionSeq(1), DeletionSeq(2)));
  Finish(2);
  EXPECT_EQ(core.pending_deletions(), 1u);
  // Only sample 9 is left to retrain for deletion 3.
  std::vector<RetrainOrder> next = Poll();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_THAT(next[0].samples, ElementsAre(SampleId(9)));
  EXPECT_EQ(next[0].first_slice, 0u);
}

TEST_F(CoreTest, TheCostModelFollowsErasedSamples) {
  Make("immediate", 1);
  // 3,000 sample-epochs from slice 1; a slice-0 sample erased makes every
  // later stage one sample smaller.
  Delete(1, {{2, 0}});
  std::vector<RetrainOrder> orders = Poll();
  EXPECT_EQ(orders[0].predicted_sample_epochs, 4000u);
  Finish(2);
  Delete(2, {{2, 1}});
  EXPECT_EQ(Poll()[0].predicted_sample_epochs, 3u * 999u);
}

// ---- deadlines and their estimates ----------------------------------------

TEST_F(CoreTest, TheTailOfTheMeasurementsPlans) {
  Core& core = Make("eraser:batch:1,partial,deadline=30s", 1);
  Delete(1, {{2, 3}});
  ASSERT_EQ(Poll().size(), 1u);
  Finish(2, seconds(2));  // 1,000 sample-epochs in 2 s
  EXPECT_DOUBLE_EQ(core.estimator().Plan(1000), 2 * 1.5);
  // A faster one does not lower the plan: the slow one is the tail.
  Delete(2, {{2, 3}});
  ASSERT_EQ(Poll().size(), 1u);
  Finish(2, milliseconds(500));
  EXPECT_DOUBLE_EQ(core.estimator().Plan(1000), 2 * 1.5);
  // Bigger work scales the bound; smaller work never gets less than the
  // slowest measured time (a fixed overhead).
  EXPECT_DOUBLE_EQ(core.estimator().Plan(4000), 8 * 1.5);
  EXPECT_DOUBLE_EQ(core.estimator().Plan(10), 2 * 1.5);
  EXPECT_NEAR(core.estimator().Typical(1000), 1.25, 1e-9);
  // A failed retraining measures nothing.
  Delete(3, {{2, 3}});
  ASSERT_EQ(Poll().size(), 1u);
  Finish(2, seconds(100), /*ok=*/false);
  EXPECT_DOUBLE_EQ(core.estimator().Plan(1000), 2 * 1.5);
}

TEST_F(CoreTest, OldMeasurementsLeaveTheWindow) {
  EstimatorOptions o;
  o.window = 3;
  o.safety = 1;
  Estimator e(o);
  e.Observe(1000, seconds(9));
  for (int i = 0; i < 3; ++i) e.Observe(1000, seconds(1));
  EXPECT_DOUBLE_EQ(e.Plan(1000), 1.0);  // the 9 s one and the prior are gone
  EXPECT_EQ(e.measurements(), 3u);
  // Until the window is full, the assumed rate stays in the bound.
  Estimator young(o);
  young.Observe(1000, milliseconds(1));
  EXPECT_DOUBLE_EQ(young.Plan(1000), 1000 * o.InitialRate());
}

TEST_F(CoreTest, QueuedWorkMovesDeadlineStartsForward) {
  // Two slots, three shards due together, 6 s planned each: the last in
  // line has 12 s of work ahead of it on two slots, so it must start 6 s
  // earlier than alone, and the line starts then, two at once.
  Core& core = Make("inference-first,deadline=30s", 2);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 0}});
  Delete(2, {{1, 0}});
  Delete(3, {{2, 0}});
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_EQ(*core.NextWakeup(), t0 + seconds(30 - 1 - 6 - 6));
  clock_.AdvanceTo(t0 + seconds(17));
  EXPECT_THAT(ShardsOf(Poll()), ElementsAre(0, 1));
}

// The same three shards on one slot: 18 s owed, and three deletions in the
// first deadline make about six likely in the next, which would cost about
// 17 s more on the five shards holding none: more than a deadline (29 s
// without the margin), so the slot starts at once instead of idling until
// the line's latest start (11 s), without borrowing. One deletion alone
// (6 s owed, a 14 s reserve) leaves it lazy.
TEST_F(CoreTest, ABacklogThatWouldNotFitADeadlineKeepsTheSlotBusy) {
  Core& core = Make("eraser:lazy,partial,deadline=30s", 1, 1);
  Delete(1, {{0, 0}});
  EXPECT_THAT(Poll(), IsEmpty());
  Delete(2, {{1, 0}});
  Delete(3, {{2, 0}});
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_THAT(ShardsOf(orders), ElementsAre(0));
  EXPECT_EQ(orders[0].reason, Reason::kBacklog);
  EXPECT_FALSE(orders[0].borrowed);
  EXPECT_FALSE(core.overloaded());
}

TEST_F(CoreTest, DeadlinesRunEarliestDueFirst) {
  // One slot. Shard 0 is due at 30 s, planned 1.5 s; shard 1 is due at 31 s,
  // planned 6 s, behind shard 0: it must start by 31 - 1 - 6 - 1.5 = 22.5 s.
  // Then shard 0, due first, starts first.
  Core& core = Make("eraser:lazy,partial,deadline=30s", 1);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 3}});
  clock_.Advance(seconds(1));
  Delete(2, {{1, 0}});
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_EQ(*core.NextWakeup(), t0 + milliseconds(22'500));
  clock_.AdvanceTo(t0 + milliseconds(22'500));
  std::vector<RetrainOrder> orders = Poll();
  EXPECT_THAT(ShardsOf(orders), ElementsAre(0));
  EXPECT_EQ(orders[0].reason, Reason::kDeadline);
  // When it finishes, in the time planned, shard 1 follows at once.
  clock_.Advance(milliseconds(1'500));
  Finish(0, milliseconds(1'000));
  EXPECT_THAT(ShardsOf(Poll()), ElementsAre(1));
}

TEST_F(CoreTest, ADeadlineAtRiskBorrowsASlotFromInference) {
  // One normal slot, busy with a long retraining; a second shard's deadline
  // cannot wait for it: it starts on the borrowed slot, and the capacity
  // reports it at risk.
  Core& core = Make("eraser:lazy,wait,deadline=30s", 1, /*borrowable=*/1);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 0}});
  Delete(2, {{1, 3}});
  // A wait request takes the normal slot for shard 0 first.
  core.SetDraining(true);
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_FALSE(orders[0].borrowed);
  core.SetDraining(false);
  // Shard 1 (1.5 s planned) is due at 30 s: it must start by 27.5 s. At
  // 28 s shard 0 still holds the normal slot: shard 1 borrows.
  clock_.AdvanceTo(t0 + seconds(28));
  EXPECT_GT(core.GetCapacity(clock_.Now()).deadlines_at_risk, 0u);
  orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(1));
  EXPECT_TRUE(orders[0].borrowed);
  EXPECT_TRUE(core.overloaded());
  EXPECT_THAT(Poll(), IsEmpty());  // the borrowed slot is taken
}

// Work conservation: with idle cores, what the plan starts beyond the
// normal slots runs on the borrowable slot, yielding to inference, for
// every policy (immediate included, so that comparisons stay fair); it is
// not a deadline at risk. Without, it waits for the slot.
TEST_F(CoreTest, IdleCoresRunWhatThePlanStartsBeyondTheSlots) {
  // (A deadline far off keeps KeepBusy out of it.)
  for (const char* policy :
       {"immediate", "eraser:shards:1,partial,deadline=1h"}) {
    for (bool idle : {false, true}) {
      SCOPED_TRACE(std::string(policy) + (idle ? " idle" : ""));
      Core& core = Make(policy, 1, /*borrowable=*/1, idle);
      Delete(1, {{0, 0}});
      Delete(2, {{1, 0}});
      Delete(3, {{2, 0}});
      std::vector<RetrainOrder> orders = Poll();
      ASSERT_EQ(orders.size(), idle ? 2u : 1u);
      EXPECT_FALSE(orders[0].borrowed);
      EXPECT_FALSE(orders[0].yields);
      if (idle) {
        EXPECT_TRUE(orders[1].borrowed);
        EXPECT_TRUE(orders[1].yields);
      }
      EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 0u);
      EXPECT_THAT(Poll(), IsEmpty());  // both slots taken
      // The yielding one ends first: its slot takes the next shard, again
      // yielding (immediate; shards:1 has one affected shard left).
      if (idle) {
        Finish(orders[1].shard.value());
        std::vector<RetrainOrder> next = Poll();
        if (std::string(policy) == "immediate") {
          ASSERT_EQ(next.size(), 1u);
          EXPECT_TRUE(next[0].yields);
        } else {
          EXPECT_THAT(next, IsEmpty());
        }
      }
      running_.clear();
    }
  }
}

// A yielding retraining runs on what inference leaves: once even a fresh
// start at full speed would end past its deadline, its deletions are at
// risk (overload degrades answers; a hole a test can see).
TEST_F(CoreTest, ALateYieldingRetrainingIsAtRisk) {
  Core& core = Make("eraser:shards:1,partial,deadline=30s", 1, 1, true);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 3}});
  Delete(2, {{1, 3}});
  Delete(3, {{2, 3}});
  std::vector<RetrainOrder> orders = Poll();  // down to A = 1 affected
  ASSERT_EQ(orders.size(), 2u);
  ASSERT_TRUE(orders[1].yields);
  clock_.Advance(seconds(1));
  Finish(orders[0].shard.value());
  // Planned 1.5 s, a 1 s margin, due at 30 s: at risk from 27.5 s on.
  clock_.AdvanceTo(t0 + milliseconds(27'400));
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 0u);
  // The waiting shard starts on the free normal slot; only the yielding
  // one is left at risk.
  clock_.AdvanceTo(t0 + milliseconds(27'600));
  orders = Poll();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_FALSE(orders[0].borrowed);
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 1u);
}

// A yielding retraining takes precedence over inference once, even at full
// speed from then on, it would end later than the margin before its due:
// the Core sets that time in the order when it starts, wakes at it, and
// counts the order at risk from then on.
TEST_F(CoreTest, AYieldingRetrainingIsPromotedAtItsLastSafeStart) {
  Core& core = Make("eraser:shards:0,partial,deadline=30s", 1, 1, true);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 3}});
  Delete(2, {{1, 3}});
  const std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 2u);
  ASSERT_FALSE(orders[0].yields);
  EXPECT_EQ(orders[0].promote_at, TimePoint::max());
  ASSERT_TRUE(orders[1].yields);
  // Planned 1.5 s, a 1 s margin, due at 30 s: promoted at 27.5 s.
  EXPECT_EQ(orders[1].promote_at, t0 + milliseconds(27'500));
  Finish(orders[0].shard.value());
  EXPECT_EQ(core.NextWakeup(), t0 + milliseconds(27'500));
  clock_.AdvanceTo(t0 + milliseconds(27'499));
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 0u);
  clock_.AdvanceTo(t0 + milliseconds(27'500));
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_EQ(core.NextWakeup(), std::nullopt);
  // Now borrowed with precedence: at risk, as a late deadline is.
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 1u);
  Finish(orders[1].shard.value());
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 0u);
  EXPECT_EQ(core.deadline_misses(), 0u);
}

// A costly shard past its latest start finds the normal slot busy and a
// yielding retraining on the idle core, due before it: that retraining is
// promoted at once (its remaining work was counted before the late shard's
// start), so the core frees as soon as it can; the late shard then takes it
// with precedence. A 10 s deadline: 6 s from slice 0, 1.5 s from slice 3.
TEST_F(CoreTest, ALateShardPromotesAYieldingRetrainingDueBeforeIt) {
  Core& core = Make("eraser:shards:0,partial,deadline=10s", 1, 1, true);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 0}});
  Delete(2, {{1, 3}});
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(ShardsOf(orders), (std::vector<uint32_t>{0, 1}));
  ASSERT_TRUE(orders[1].yields);
  EXPECT_EQ(orders[1].promote_at, t0 + milliseconds(7'500));
  EXPECT_THAT(core.TakeInterrupts(), IsEmpty());
  // Due at 11 s, 6 s to retrain behind 5 s left on the slot and 0.5 s of
  // the yielding one: past its latest start at once.
  clock_.Advance(seconds(1));
  Delete(3, {{2, 0}});
  EXPECT_THAT(Poll(), IsEmpty());
  const std::vector<Core::Interrupt> interrupts = core.TakeInterrupts();
  ASSERT_EQ(interrupts.size(), 1u);
  EXPECT_EQ(interrupts[0].shard, ShardId(1));
  EXPECT_FALSE(interrupts[0].stop);
  EXPECT_THAT(core.TakeInterrupts(), IsEmpty()) << "named once";
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_THAT(core.TakeInterrupts(), IsEmpty()) << "already promoted";
  // The late shard is at risk; the promoted retraining, on time, is not.
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 1u);
  clock_.Advance(milliseconds(1'500));
  Finish(1);
  orders = Poll();
  ASSERT_EQ(ShardsOf(orders), (std::vector<uint32_t>{2}));
  EXPECT_TRUE(orders[0].borrowed);
  EXPECT_FALSE(orders[0].yields);
  EXPECT_EQ(orders[0].reason, Reason::kDeadline);
  clock_.AdvanceTo(t0 + seconds(6));
  Finish(0);
  clock_.AdvanceTo(t0 + milliseconds(8'500));
  Finish(2);
  EXPECT_EQ(core.deadline_misses(), 0u);
  EXPECT_TRUE(core.Idle());
}

// The same, with the yielding retraining due well after the late shard: a
// deletion another engine acknowledged 8 s before it reaches this one
// (due at 12 s, 20 s deadline). The yielding retraining is stopped
// instead: earliest deadline first, the late shard is late even without
// the yielding retraining's work (12 - 1 - 5.5 - 6 = -0.5 s), and the
// stopped shard, waiting behind it, is not (20.5 - 1 - 5.5 - 6 - 1.5 =
// 6.5 s). The late shard takes its slot (at risk while it borrows; the
// stopped shard is not). Nothing is learnt from the stopped attempt, and
// its shard is not backed off.
TEST_F(CoreTest, ALateShardPreemptsAYieldingRetrainingDueAfterIt) {
  Core& core = Make("eraser:shards:0,partial,deadline=20s", 1, 1, true);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 0}});
  clock_.Advance(milliseconds(500));
  Delete(2, {{1, 3}});  // due at 20.5 s
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(ShardsOf(orders), (std::vector<uint32_t>{0, 1}));
  ASSERT_TRUE(orders[1].yields);
  clock_.AdvanceTo(t0 + seconds(1));
  Delete(3, {{2, 0}}, t0 - seconds(8));
  EXPECT_THAT(Poll(), IsEmpty());
  const std::vector<Core::Interrupt> interrupts = core.TakeInterrupts();
  ASSERT_EQ(interrupts.size(), 1u);
  EXPECT_EQ(interrupts[0].shard, ShardId(1));
  EXPECT_TRUE(interrupts[0].stop);
  // Until it stops, its slot stays taken and nothing more is asked.
  EXPECT_EQ(core.running(), 2u);
  EXPECT_THAT(Poll(), IsEmpty());
  EXPECT_THAT(core.TakeInterrupts(), IsEmpty());
  clock_.Advance(milliseconds(10));
  core.OnRetrainPreempted(running_.at(1), clock_.Now(), milliseconds(10));
  running_.erase(1);
  EXPECT_EQ(core.estimator().measurements(), 0u);
  EXPECT_THAT(core.BackingOff(clock_.Now()), IsEmpty());
  orders = Poll();
  ASSERT_EQ(ShardsOf(orders), (std::vector<uint32_t>{2}));
  EXPECT_TRUE(orders[0].borrowed);
  EXPECT_FALSE(orders[0].yields);
  EXPECT_EQ(orders[0].reason, Reason::kDeadline);
  // The late shard borrows (at risk); the stopped one can wait.
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 1u);
  // Shard 1 restarts on the normal slot when it frees.
  clock_.AdvanceTo(t0 + milliseconds(6'500));
  Finish(0);
  orders = Poll();
  ASSERT_EQ(ShardsOf(orders), (std::vector<uint32_t>{1}));
  EXPECT_FALSE(orders[0].borrowed);
  clock_.AdvanceTo(t0 + milliseconds(7'010));
  Finish(2);
  clock_.AdvanceTo(t0 + seconds(8));
  Finish(1);
  EXPECT_EQ(core.deadline_misses(), 0u);
  EXPECT_TRUE(core.Idle());
}

// As above, with a third shard (6 s) due at 17 s, between the two, also
// waiting: the yielding shard would wait behind both and could not start
// in time (20.5 - 1 - 5.5 - 6 - 6 - 1.5 = 0.5 s, before now). It is
// promoted instead of stopped.
TEST_F(CoreTest, AYieldingRetrainingThatCouldNotRestartInTimeIsPromoted) {
  Core& core = Make("eraser:shards:0,partial,deadline=20s", 1, 1, true);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 0}});
  clock_.Advance(milliseconds(500));
  Delete(2, {{1, 3}});
  ASSERT_EQ(ShardsOf(Poll()), (std::vector<uint32_t>{0, 1}));
  clock_.AdvanceTo(t0 + seconds(1));
  Delete(3, {{2, 0}}, t0 - seconds(8));
  Delete(4, {{3, 0}}, t0 - seconds(3));
  EXPECT_THAT(Poll(), IsEmpty());
  const std::vector<Core::Interrupt> interrupts = core.TakeInterrupts();
  ASSERT_EQ(interrupts.size(), 1u);
  EXPECT_EQ(interrupts[0].shard, ShardId(1));
  EXPECT_FALSE(interrupts[0].stop);
  // Promoted early, it is not at risk before its own promotion time
  // (20.5 - 1.5 - 1 = 18 s); the two waiting shards are.
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 2u);
  clock_.AdvanceTo(t0 + seconds(18));
  EXPECT_EQ(core.GetCapacity(clock_.Now()).deadlines_at_risk, 3u);
}

// With two idle cores lent, the yielding retraining due last is the one
// that makes room.
TEST_F(CoreTest, TheYieldingRetrainingDueLastMakesRoom) {
  Core& core = Make("eraser:shards:0,partial,deadline=20s", 1, 2, true);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 0}});
  Delete(2, {{1, 3}});  // due at 20 s
  clock_.Advance(milliseconds(500));
  Delete(3, {{3, 3}});  // due at 20.5 s
  ASSERT_EQ(ShardsOf(Poll()), (std::vector<uint32_t>{0, 1, 3}));
  clock_.AdvanceTo(t0 + seconds(1));
  Delete(4, {{2, 0}}, t0 - seconds(8));
  EXPECT_THAT(Poll(), IsEmpty());
  const std::vector<Core::Interrupt> interrupts = core.TakeInterrupts();
  ASSERT_EQ(interrupts.size(), 1u);
  EXPECT_EQ(interrupts[0].shard, ShardId(3));
  EXPECT_TRUE(interrupts[0].stop);
}

// A shard late only because its latest start counts the yielding
// retraining's remaining work is not given that retraining's core by
// stopping it, though it is due after it: the work would be lost and the
// core left to the normal plan. Shard 2 (1.5 s, due at 9 s, from a
// deletion another engine acknowledged at -1 s) is past its latest start
// (9 - 1 - 1 - 5.5 - 1.5 = 0 s) with the yielding retraining's 5.5 s left
// counted, not without them (5.5 s): the yielding retraining is promoted
// instead.
TEST_F(CoreTest, AYieldingRetrainingIsNotStoppedForAShardLateOnlyBecauseOfIt) {
  Core& core = Make("eraser:shards:0,partial,deadline=10s", 1, 1, true);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 3}});
  clock_.Advance(milliseconds(500));
  Delete(2, {{1, 0}});
  std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(ShardsOf(orders), (std::vector<uint32_t>{0, 1}));
  ASSERT_TRUE(orders[1].yields);
  clock_.AdvanceTo(t0 + seconds(1));
  Delete(3, {{2, 3}}, t0 - seconds(1));
  EXPECT_THAT(Poll(), IsEmpty());
  const std::vector<Core::Interrupt> interrupts = core.TakeInterrupts();
  ASSERT_EQ(interrupts.size(), 1u);
  EXPECT_EQ(interrupts[0].shard, ShardId(1));
  EXPECT_FALSE(interrupts[0].stop);
}

// While every slot is busy and a yielding retraining could make room, the
// Core asks to be polled at a waiting shard's latest start (30 s deadline:
// 30 - 1 - (6 + 1.5) - 6 = 15.5 s), not only at the yielding retraining's
// promotion (27.5 s).
TEST_F(CoreTest, AWaitingShardsLatestStartWakesTheCoreWhileEverySlotIsBusy) {
  Core& core = Make("eraser:shards:0,partial,deadline=30s", 1, 1, true);
  const TimePoint t0 = clock_.Now();
  Delete(1, {{0, 0}});
  Delete(2, {{1, 3}});
  Delete(3, {{2, 0}});
  ASSERT_EQ(ShardsOf(Poll()), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(core.NextWakeup(), t0 + milliseconds(15'500));
}

// Without a deadline nothing is promoted: `immediate`'s yielding
// retrainings run on what inference leaves, however long that takes.
TEST_F(CoreTest, AYieldingRetrainingWithoutADeadlineIsNeverPromoted) {
  Make("immediate", 1, 1, true);
  Delete(1, {{0, 3}});
  Delete(2, {{1, 3}});
  const std::vector<RetrainOrder> orders = Poll();
  ASSERT_EQ(orders.size(), 2u);
  ASSERT_TRUE(orders[1].yields);
  EXPECT_EQ(orders[1].promote_at, TimePoint::max());
}

TEST_F(CoreTest, OverloadDegradesWaitToPartial) {
  Core& core = Make("eraser:lazy,wait,deadline=30s", 1, 1);
  Delete(1, {{0, 0}, {1, 0}, {2, 0}});
  clock_.Advance(seconds(28));  // every deadline at risk now
  Poll();
  ASSERT_TRUE(core.overloaded());
  const Verdict v = Decide(1, Votes(5));
  EXPECT_EQ(v.decision, Decision::kPartial);
  EXPECT_EQ(core.parked(), 0u);
}

TEST_F(CoreTest, CapacityMeasuresOfferedAndSustainableRates) {
  Core& core = Make("immediate", 1);
  for (int i = 1; i <= 6; ++i) {
    Delete(i, {{static_cast<uint32_t>(i % kShards), 3}});
    std::vector<RetrainOrder> orders = Poll();
    ASSERT_EQ(orders.size(), 1u);
    clock_.Advance(seconds(2));
    Finish(orders[0].shard.value(), seconds(2));  // busy all the time
    clock_.Advance(seconds(1));
  }
  // 18 s since the Core started: rates over one deadline (30 s), not yet
  // over the whole minute.
  Capacity c = core.GetCapacity(clock_.Now());
  EXPECT_DOUBLE_EQ(c.offered_per_second, 6.0 / 30);
  EXPECT_DOUBLE_EQ(c.applied_per_second, 6.0 / 30);
  EXPECT_DOUBLE_EQ(c.busy_fraction, 12.0 / 30);
  EXPECT_DOUBLE_EQ(c.sustainable_per_second, 0.5);  // one per 2 s of slot
  EXPECT_FALSE(c.overloaded);
  // 48 s since the start: over the 48 s seen.
  clock_.Advance(seconds(30));
  c = core.GetCapacity(clock_.Now());
  EXPECT_DOUBLE_EQ(c.offered_per_second, 6.0 / 48);
  EXPECT_DOUBLE_EQ(c.busy_fraction, 12.0 / 48);
  // A minute later the window is empty again.
  clock_.Advance(seconds(61));
  EXPECT_DOUBLE_EQ(core.GetCapacity(clock_.Now()).offered_per_second, 0.0);
}

// A simulated executor for the Core under random deletions: retrainings
// take 0.5 to 1.5 times `seconds_per_sample_epoch` per sample-epoch; a
// yielding one runs at a random fraction of full speed in [min_speed,
// max_speed] (what inference leaves it) until it is promoted (at its
// promote_at, or early by an Interrupt), then at full speed; one an
// Interrupt stops ends at once (OnRetrainPreempted). With
// `honor_interrupts` false, Interrupts are ignored (the executor before
// they existed).
struct IdleRun {
  int misses = 0;
  uint64_t deletions = 0;
  int orders = 0;
  int promoted = 0;        // at their own promote_at
  int promoted_early = 0;  // by an Interrupt
  int preempted = 0;
};

struct IdleRunOptions {
  std::string policy;
  int slots = 1;
  bool idle_cores = true;
  double seconds_per_sample_epoch = 1e-3;
  std::vector<uint64_t> slice_sizes = {1000, 0, 0, 0};
  std::vector<uint32_t> epochs = {1, 1, 1, 1};
  double deletions_per_second_per_slot = 0.5;
  Duration length = seconds(120);
  double min_speed = 0.02;
  double max_speed = 1.0;
  bool honor_interrupts = true;
  // The fraction of deletions another replica acknowledged up to 5 s
  // before they reach this engine (registered with their arrival time).
  double replicated_fraction = 0;
  uint32_t seed = 99;
};

IdleRun RunOnIdleCores(const IdleRunOptions& ro) {
  ManualClock clock;
  const TimePoint t0 = clock.Now();
  CoreOptions options =
      Options(ro.policy, ro.slots, /*borrowable=*/1, ro.idle_cores);
  options.epochs = ro.epochs;
  // Planned from the tail (assumed 1.5 times the typical rate at first)
  // with a 1.25 factor and a 0.2 s margin.
  options.estimates.initial_seconds_per_sample_epoch =
      1.5 * ro.seconds_per_sample_epoch;
  options.estimates.safety = 1.25;
  options.estimates.margin = milliseconds(200);
  Core core(options,
            std::vector<std::vector<uint64_t>>(kShards, ro.slice_sizes),
            std::vector<uint64_t>(kShards, 1), t0);
  core.OnLoad(5, 0.9);  // never idle: idle falls back on deadlines
  std::mt19937 rng(ro.seed);
  std::mt19937 run_rng(ro.seed +
                       1000);  // the arrivals do not depend on the plan
  std::uniform_real_distribution<double> noise(0.5, 1.5);
  std::uniform_real_distribution<double> speed(ro.min_speed, ro.max_speed);
  std::map<uint64_t, TimePoint> arrival;
  // Per running shard: its order, its work and the work left (seconds at
  // full speed) as of `since`, and its speed. The Core learns the work (the
  // engine takes the time yielded to inference off what it reports).
  struct Run {
    RetrainOrder order;
    double full = 0;
    double work = 0;
    double speed = 1;
    TimePoint since;
    bool promoted = false;
    double Done(TimePoint now) const {
      return full - work +
             speed * std::chrono::duration<double>(now - since).count();
    }
    TimePoint End() const { return since + Secs(work / speed); }
    void FullSpeed(TimePoint now) {
      work -= speed * std::chrono::duration<double>(now - since).count();
      since = now;
      speed = 1;
      promoted = true;
    }
  };
  std::map<uint32_t, Run> running;
  auto next_end = [&running] {
    TimePoint t = TimePoint::max();
    for (const auto& [shard, r] : running) t = std::min(t, r.End());
    return t;
  };
  const Duration deadline = options.policy.deadline;
  TimePoint next_arrival = t0;
  IdleRun out;
  const TimePoint end = t0 + ro.length;
  while (next_arrival < end || !running.empty() || !core.Idle()) {
    TimePoint now = std::min(
        next_end(), next_arrival < end ? next_arrival : TimePoint::max());
    if (auto w = core.NextWakeup()) now = std::min(now, *w);
    // A yielding retraining promotes itself at its time, whether or not
    // the Core wakes then.
    for (const auto& [shard, r] : running) {
      if (r.order.yields && !r.promoted)
        now = std::min(now, r.order.promote_at);
    }
    EXPECT_NE(now, TimePoint::max());
    if (now == TimePoint::max()) break;
    clock.AdvanceTo(now);
    for (auto it = running.begin(); it != running.end();) {
      const Run& r = it->second;
      if (r.End() > clock.Now()) {
        ++it;
        continue;
      }
      core.OnApplied(r.order, core.PlanApply(r.order),
                     core.versions()[it->first] + 1, clock.Now(), Secs(r.full),
                     r.order.predicted_sample_epochs);
      for (DeletionSeq d : r.order.covers) {
        if (!core.IsPending(d) && clock.Now() > arrival[d.value()] + deadline) {
          ++out.misses;
        }
      }
      it = running.erase(it);
    }
    if (next_arrival < end && next_arrival <= clock.Now()) {
      const uint64_t seq = ++out.deletions;
      const auto shard = static_cast<uint32_t>(rng() % kShards);
      const auto slice = static_cast<uint32_t>(rng() % kSlices);
      std::uniform_real_distribution<double> unit(0, 1);
      const bool replicated = unit(rng) < ro.replicated_fraction;
      const TimePoint acknowledged =
          clock.Now() - (replicated ? Secs(5 * unit(rng)) : Duration(0));
      core.OnDeletion(DeletionSeq(seq), acknowledged,
                      {{SampleId(seq), ShardId(shard), slice}});
      arrival[seq] = acknowledged;
      next_arrival =
          clock.Now() + Secs(std::exponential_distribution<double>(
                            ro.deletions_per_second_per_slot * ro.slots)(rng));
    }
    // A preempted retraining stops at once, and the Poll after it starts
    // the late shard.
    for (bool again = true; again;) {
      again = false;
      for (const RetrainOrder& o : core.Poll(clock.Now())) {
        ++out.orders;
        Run r;
        r.order = o;
        r.full = r.work = ro.seconds_per_sample_epoch *
                          o.predicted_sample_epochs * noise(run_rng);
        r.speed = o.yields ? speed(run_rng) : 1.0;
        r.since = clock.Now();
        running[o.shard.value()] = r;
      }
      for (const Core::Interrupt& i : core.TakeInterrupts()) {
        if (!ro.honor_interrupts) continue;
        Run& r = running.at(i.shard.value());
        EXPECT_TRUE(r.order.yields);
        EXPECT_FALSE(r.promoted);
        if (!i.stop) {
          ++out.promoted_early;
          r.FullSpeed(clock.Now());
        } else {
          ++out.preempted;
          core.OnRetrainPreempted(r.order, clock.Now(),
                                  Secs(r.Done(clock.Now())));
          running.erase(i.shard.value());
          again = true;
        }
      }
    }
    // A promoted retraining runs at full speed from its promotion on.
    for (auto& [shard, r] : running) {
      if (r.promoted || clock.Now() < r.order.promote_at) continue;
      ++out.promoted;
      EXPECT_TRUE(r.order.yields);
      r.FullSpeed(clock.Now());
    }
  }
  EXPECT_EQ(out.misses, static_cast<int>(core.deadline_misses()));
  return out;
}

// Random deletions for two minutes against the simulated executor, under
// every policy that postpones: every deletion is applied within its
// deadline. The plan takes the tail of the measured times (not their mean,
// which half of the retrainings exceed).
class CoreDeadlines : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(CoreDeadlines, HoldUnderRandomLoad) {
  const auto [slots, idle_cores] = GetParam();
  for (const char* text :
       {"inference-first,deadline=20s", "eraser:lazy,partial,deadline=20s",
        "eraser:lazy,wait,deadline=20s", "eraser:batch:5,partial,deadline=20s",
        "eraser:periodic:7s,reject,deadline=20s",
        "eraser:idle,partial,deadline=20s",
        "eraser:shards:2,partial,deadline=20s"}) {
    SCOPED_TRACE(text);
    IdleRunOptions ro;
    ro.policy = text;
    ro.slots = slots;
    ro.idle_cores = idle_cores;
    const IdleRun run = RunOnIdleCores(ro);
    EXPECT_GT(run.deletions, 30u);
    EXPECT_EQ(run.misses, 0);
    // Promotions happen here (slow yielding retrainings), and only here.
    if (idle_cores) {
      EXPECT_GT(run.promoted, 0);
    } else {
      EXPECT_EQ(run.promoted + run.promoted_early + run.preempted, 0);
    }
  }
}

// Retrainings 1.5 times costlier than above (up to 6 s typical, 11 s
// planned against the 20 s deadline) on one slot, and an inference load
// that leaves the idle core 2% to 30% of its time: a shard past its latest
// start often finds the normal slot and the idle core busy. Twenty
// 10-minute runs at each of 0.3 and 0.5 deletions/s, with the Interrupts
// carried out and ignored (the executor before they existed; the Core is
// the same), on the same arrivals; then again with 30% of the deletions
// acknowledged by another replica up to 5 s before they reach this one
// (so a later shard can be due first). The counts are in docs/engine.md.
TEST(CoreDeadlinesOnIdleCores, ALateShardGetsTheIdleCore) {
  for (double replicated : {0.0, 0.3}) {
    SCOPED_TRACE("replicated " + std::to_string(replicated));
    IdleRun honored_total, ignored_total;
    for (double rate : {0.3, 0.5}) {
      for (uint32_t seed = 1; seed <= 20; ++seed) {
        IdleRunOptions ro;
        ro.policy = "eraser:lazy,partial,deadline=20s";
        ro.seconds_per_sample_epoch = 1.5e-3;
        ro.deletions_per_second_per_slot = rate;
        ro.max_speed = 0.3;
        ro.length = seconds(600);
        ro.replicated_fraction = replicated;
        ro.seed = seed;
        const IdleRun honored = RunOnIdleCores(ro);
        ro.honor_interrupts = false;
        const IdleRun ignored = RunOnIdleCores(ro);
        EXPECT_EQ(honored.deletions, ignored.deletions);
        honored_total.deletions += honored.deletions;
        honored_total.misses += honored.misses;
        honored_total.promoted_early += honored.promoted_early;
        honored_total.preempted += honored.preempted;
        ignored_total.misses += ignored.misses;
      }
    }
    std::printf(
        "replicated %.1f: %llu deletions; interrupts carried out: %d "
        "misses (%d promoted at once, %d preempted); ignored: %d misses\n",
        replicated, static_cast<unsigned long long>(honored_total.deletions),
        honored_total.misses, honored_total.promoted_early,
        honored_total.preempted, ignored_total.misses);
    EXPECT_LT(2 * honored_total.misses, ignored_total.misses);
    EXPECT_GT(honored_total.promoted_early, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(SlotsAndIdleCores, CoreDeadlines,
                         ::testing::Combine(::testing::Values(1, 2),
                                            ::testing::Bool()));

}  // namespace
}  // namespace eraser::scheduler

namespace eraser::scheduler {
namespace {

// Another engine sharing the store retrained shard 3 and this one swapped
// its model in: deletions whose shard-3 samples it leaves out are done
// there; one naming a sample it still holds stays pending; an older
// version changes nothing.
TEST_F(CoreTest, AModelFromAnotherEngineCompletesWhatItLeavesOut) {
  Core& core = Make("eraser:lazy,wait");
  Delete(1, {{3, 0}});          // sample 100
  Delete(2, {{3, 0}, {3, 1}});  // samples 200, 201
  Delete(3, {{3, 0}, {5, 0}});  // samples 300 (shard 3), 301 (shard 5)
  EXPECT_THAT(
      core.PendingSamples(ShardId(3)),
      ElementsAre(SampleId(100), SampleId(200), SampleId(201), SampleId(300)));
  EXPECT_THAT(core.OnReplaced(ShardId(3), 1, {SampleId(100)}, clock_.Now()),
              IsEmpty())
      << "version 1 is the one served";
  EXPECT_EQ(core.pending_deletions(), 3u);

  const TimePoint arrival = clock_.Now();  // of deletions 1 to 3
  clock_.Advance(seconds(5));
  const auto completed = core.OnReplaced(
      ShardId(3), 2, {SampleId(100), SampleId(200), SampleId(300)},
      clock_.Now());
  // Deletion 1 only: 3 still pends in shard 5, 2 for sample 201.
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].seq, DeletionSeq(1));
  EXPECT_EQ(completed[0].arrival, arrival);
  EXPECT_FALSE(completed[0].late);
  EXPECT_EQ(core.deadline_misses(), 0u);
  EXPECT_EQ(core.versions()[3], 2u);
  EXPECT_FALSE(core.IsPending(DeletionSeq(1)));
  EXPECT_TRUE(core.IsPending(DeletionSeq(2)));
  EXPECT_TRUE(core.IsPending(DeletionSeq(3)));
  EXPECT_THAT(core.PendingSamples(ShardId(3)), ElementsAre(SampleId(201)));
  EXPECT_THAT(core.AffectedShards(), ElementsAre(ShardId(3), ShardId(5)));
  // Completed by another engine's model after the 30 s deadline: the Core
  // counts the miss, as for a local retraining.
  clock_.Advance(seconds(30));
  const auto late =
      core.OnReplaced(ShardId(3), 3, {SampleId(201)}, clock_.Now());
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].seq, DeletionSeq(2));
  EXPECT_TRUE(late[0].late);
  EXPECT_EQ(core.deadline_misses(), 1u);
}

}  // namespace
}  // namespace eraser::scheduler

namespace eraser::scheduler {
namespace {

// A model `factor` times costlier than the default MLP, whose cost per
// sample-epoch (kFallbackSecondsPerSampleEpoch times `factor`) `eraser
// train` measured and stored, replayed against a simulated executor whose
// retrainings take 0.8 to 1.2 times that. The default ensemble's shape:
// 8 shards of 4 slices of 1,875 samples, epochs 4,4,4,8 (a retraining from
// slice 0 is 105,000 sample-epochs).
struct CostlyRun {
  int misses = 0;     // deletions applied after their deadline
  int announced = 0;  // of those, announced overloaded before their due
  uint64_t deletions = 0;
  int orders = 0;
  int borrowed = 0;
  double seconds = 0;  // retraining, summed
  int polls = 0;       // times the Core was polled
};

CostlyRun RunCostly(const std::string& policy, double factor,
                    double initial_rate, double deletions_per_second,
                    Duration deadline, Duration length, int borrowable = 1,
                    int slots = 1, bool idle_cores = false, uint32_t seed = 7) {
  ManualClock clock;
  const TimePoint t0 = clock.Now();
  CoreOptions o;
  o.policy = *ParsePolicy(policy);
  o.policy.deadline = deadline;
  o.shards = kShards;
  o.classes = 10;
  o.epochs = {4, 4, 4, 8};
  o.slots = slots;
  o.borrowable_slots = borrowable;  // 1: both cores of a 2-core machine
  o.use_idle_cores = idle_cores;
  o.estimates.initial_seconds_per_sample_epoch = initial_rate;
  Core core(
      o, std::vector<std::vector<uint64_t>>(kShards, {1875, 1875, 1875, 1875}),
      std::vector<uint64_t>(kShards, 1), t0);
  core.OnLoad(1, 0.05);
  const double rate = factor * kFallbackSecondsPerSampleEpoch;
  std::mt19937 rng(seed);
  std::mt19937 noise_rng(seed + 4);  // the arrivals do not depend on the plan
  std::uniform_real_distribution<double> noise(0.8, 1.2);
  std::map<uint64_t, TimePoint> arrival;
  std::map<uint64_t, bool> warned;  // overloaded seen before its due
  std::map<TimePoint, std::vector<std::pair<RetrainOrder, double>>> ends;
  CostlyRun run;
  TimePoint next_arrival = t0;
  const TimePoint end = t0 + length;
  while (next_arrival < end || !ends.empty() || !core.Idle()) {
    TimePoint now = TimePoint::max();
    if (next_arrival < end) now = std::min(now, next_arrival);
    if (!ends.empty()) now = std::min(now, ends.begin()->first);
    if (auto w = core.NextWakeup()) now = std::min(now, *w);
    if (now == TimePoint::max()) break;
    clock.AdvanceTo(now);
    if (!ends.empty() && ends.begin()->first <= clock.Now()) {
      for (auto& [order, secs] : ends.begin()->second) {
        core.OnApplied(order, core.PlanApply(order),
                       core.versions()[order.shard.value()] + 1, clock.Now(),
                       Secs(secs), order.predicted_sample_epochs);
        for (DeletionSeq d : order.covers) {
          if (!core.IsPending(d) &&
              clock.Now() > arrival[d.value()] + deadline) {
            ++run.misses;
            run.announced += warned[d.value()];
          }
        }
      }
      ends.erase(ends.begin());
    }
    if (next_arrival < end && next_arrival <= clock.Now()) {
      const uint64_t seq = ++run.deletions;
      const auto shard = static_cast<uint32_t>(rng() % kShards);
      const auto slice = static_cast<uint32_t>(rng() % kSlices);
      core.OnDeletion(DeletionSeq(seq), clock.Now(),
                      {{SampleId(seq), ShardId(shard), slice}});
      arrival[seq] = clock.Now();
      next_arrival = clock.Now() + Secs(std::exponential_distribution<double>(
                                       deletions_per_second)(rng));
    }
    ++run.polls;
    for (const RetrainOrder& order : core.Poll(clock.Now())) {
      ++run.orders;
      run.borrowed += order.borrowed;
      const double secs =
          rate * order.predicted_sample_epochs * noise(noise_rng);
      run.seconds += secs;
      ends[clock.Now() + Secs(secs)].push_back({order, secs});
    }
    if (core.overloaded()) {
      for (const auto& [seq, t] : arrival) {
        if (core.IsPending(DeletionSeq(seq)) && clock.Now() <= t + deadline) {
          warned[seq] = true;
        }
      }
    }
  }
  // A Core that stopped asking to be woken with deletions pending would
  // leave them unapplied, and uncounted as misses.
  EXPECT_TRUE(core.Idle()) << core.pending_deletions() << " left pending";
  return run;
}

// Deadlines kept for models 10 and 50 times costlier than the default MLP
// from the first deletion on, because the plan starts from the model's own
// measured cost: the same runs planned from the default MLP's rate (what
// the Core assumed for every model before it was told the model's cost)
// miss deadlines.
TEST(CoreCostlyModels, DeadlinesHoldFromTheFirstDeletion) {
  struct Profile {
    double factor;
    double per_second;  // deletions offered
    Duration deadline;
    Duration length;  // of the run: about 30 deletions
  };
  // 10x: a retraining from slice 0 takes about 10.5 s; 50x: about 52 s.
  for (const Profile& p : {Profile{10, 0.05, seconds(60), seconds(600)},
                           Profile{50, 0.01, seconds(300), seconds(3000)}}) {
    for (const char* policy :
         {"eraser:lazy,partial", "eraser:lazy,wait", "inference-first",
          "eraser:shards:4,partial", "eraser:batch:8,wait"}) {
      SCOPED_TRACE(std::string(policy) + " at " + std::to_string(p.factor) +
                   "x");
      const CostlyRun learned =
          RunCostly(policy, p.factor, p.factor * kFallbackSecondsPerSampleEpoch,
                    p.per_second, p.deadline, p.length);
      EXPECT_GE(learned.deletions, 20u);
      EXPECT_EQ(learned.misses, 0);
      if (std::string(policy) == "eraser:lazy,partial") {
        // The plant: the default MLP's rate for a costlier model.
        const CostlyRun assumed =
            RunCostly(policy, p.factor, kFallbackSecondsPerSampleEpoch,
                      p.per_second, p.deadline, p.length);
        EXPECT_GT(assumed.misses, 0);
      }
    }
  }
}

// More than both cores can unlearn in time (every shard due every 120 s,
// a retraining from slice 0 of the 50x model taking 52 s): the Core says so
// (overloaded) before each deadline it then misses passes, so the engine
// degrades answers and /readyz says degraded while there is still time;
// the inference core was borrowed first.
TEST(CoreCostlyModels, WhatCannotBeKeptIsAnnouncedBeforeItIsMissed) {
  const CostlyRun run =
      RunCostly("eraser:lazy,partial", 50, 50 * kFallbackSecondsPerSampleEpoch,
                /*deletions_per_second=*/0.2, seconds(120), seconds(600));
  EXPECT_GT(run.misses, 0) << "the load was meant to exceed both cores";
  EXPECT_EQ(run.announced, run.misses);
  EXPECT_GT(run.borrowed, 0);
}

// A model that trains one shard at a time (a TorchScript module: one slot,
// nothing to borrow), 10x the default MLP's cost (10.5 s from slice 0)
// against a 30 s deadline, under Poisson arrivals: bursts leave even
// `immediate`, which never idles, 3 misses at 0.08 deletions/s and 6 at
// 0.1. A lazy plan that idled the slot until each shard's latest start
// missed 1, 8 and 19 (of 32, 52 and 66) at 0.05, 0.08 and 0.1/s; kept busy
// while the work owed and the reserve for arrivals would not fit in a
// deadline, it misses no more than `immediate`.
TEST(CoreCostlyModels, OneSlotLazyPlansMissNoMoreThanImmediate) {
  for (double rate : {0.05, 0.08, 0.1}) {
    const CostlyRun eager =
        RunCostly("immediate", 10, 10 * kFallbackSecondsPerSampleEpoch, rate,
                  seconds(30), seconds(600), /*borrowable=*/0);
    for (const char* policy :
         {"eraser:lazy,partial", "eraser:lazy,wait", "inference-first"}) {
      SCOPED_TRACE(std::string(policy) + " at " + std::to_string(rate) +
                   "/s, immediate missed " + std::to_string(eager.misses));
      const CostlyRun run =
          RunCostly(policy, 10, 10 * kFallbackSecondsPerSampleEpoch, rate,
                    seconds(30), seconds(600), /*borrowable=*/0);
      EXPECT_GE(run.deletions, 30u);
      EXPECT_EQ(run.borrowed, 0);
      EXPECT_LE(run.misses, eager.misses);
      if (rate == 0.05) {
        EXPECT_EQ(run.misses, 0);
      }
    }
  }
}

// The default MLP's cost (a retraining from slice 0 about 1 s): the reserve
// for arrivals never fills a deadline, so the lazy plan keeps batching as
// before the reserve existed (57, 68 and 82 retrainings for 146, 281 and
// 582 deletions at 0.5, 1 and 2 per second; `immediate` 145, 252, 326),
// and keeps every deadline.
TEST(CoreCostlyModels, ACheapModelKeepsItsBatching) {
  for (double rate : {0.5, 1.0, 2.0}) {
    SCOPED_TRACE(std::to_string(rate) + "/s");
    const CostlyRun eager =
        RunCostly("immediate", 1, kFallbackSecondsPerSampleEpoch, rate,
                  seconds(30), seconds(300));
    const CostlyRun lazy =
        RunCostly("eraser:lazy,partial", 1, kFallbackSecondsPerSampleEpoch,
                  rate, seconds(30), seconds(300));
    EXPECT_EQ(lazy.misses, 0);
    EXPECT_LT(2 * lazy.orders, eager.orders);
  }
}

// Issue 23's residual CNN at 1 deletion/s: 60 s of Poisson deletions, a
// 30 s deadline and the shape above, forty traces per case. A cost is
// given in CPU microseconds per sample-epoch (the default MLP's is 10;
// the CNN trained and retrained at 73 to 86 on the 2-core machine of
// docs/perf/zoo.md). "Two cores" is how the engine plans for that
// machine: the unlearning slot, and the inference core lent when idle
// and borrowed by a late deadline; "three" adds a slot. The executor is
// simpler than the engine: a yielding retraining runs at full speed (no
// inference to yield to), interrupts are not carried out, and the load is
// never low enough for `idle` to start anything (it acts as `lazy`).
// Totals over the forty traces of one case.
struct CapacityCase {
  double per_second;
  double micros;  // per sample-epoch
  int cores;      // 2 or 3
};

struct CapacityTotals {
  int misses = 0;
  int announced = 0;
  int traces_missing = 0;
  uint64_t deletions = 0;
  double polls_per_event = 0;  // the most of a trace
  double seconds = 0;          // retraining, per trace
};

CapacityTotals RunCapacity(const std::string& policy, const CapacityCase& c,
                           int traces = 40) {
  CapacityTotals t;
  for (int seed = 1; seed <= traces; ++seed) {
    const CostlyRun run = RunCostly(
        policy, c.micros / 10, c.micros * 1e-6, c.per_second, seconds(30),
        seconds(60), /*borrowable=*/1, /*slots=*/c.cores - 1,
        /*idle_cores=*/true, static_cast<uint32_t>(seed));
    t.misses += run.misses;
    t.announced += run.announced;
    t.traces_missing += run.misses > 0;
    t.deletions += run.deletions;
    t.seconds += run.seconds / traces;
    t.polls_per_event = std::max(
        t.polls_per_event, static_cast<double>(run.polls) /
                               static_cast<double>(run.deletions + run.orders));
  }
  return t;
}

// `eraser replay`'s presets that have a deadline (all but `immediate`),
// by name and policy.
std::vector<std::pair<std::string, std::string>> DeadlinePresets() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& preset : Presets()) {
    if (ParsePolicy(preset.second)->has_deadline()) out.push_back(preset);
  }
  return out;
}

// Whether the CNN keeps every deadline at 1/s is a matter of the cores,
// not of the plan. Where two cores carry the work (56 us per
// sample-epoch), every preset keeps every deadline in forty traces, and a
// third core keeps them at 72 us. At 80 us on two cores, `immediate`
// (every shard at once), `inference-first` and two presets miss in every
// trace, and the Core reported overload before each missed deadline
// passed (a coarse check: at that load the flag is up nearly all the
// time). The sweep between these points is CoreCapacity.DISABLED_Sweep.
TEST(CoreCostlyModels,
     TheResidualCnnsDeadlinesAtOneDeletionPerSecondNeedCores) {
  for (const auto& [name, policy] : DeadlinePresets()) {
    SCOPED_TRACE(name);
    const CapacityTotals carried = RunCapacity(policy, {1.0, 56, 2});
    EXPECT_GT(carried.deletions, 2000u);
    EXPECT_EQ(carried.misses, 0);
    // The Core asks to be woken for events, not in a loop: about one Poll
    // per arrival or retraining in the worst trace (a Core that asked
    // every millisecond while its slots were busy polled hundreds of
    // times per event; a spin of under a tenth of a second per trace
    // would pass).
    EXPECT_LT(carried.polls_per_event, 3);
    EXPECT_EQ(RunCapacity(policy, {1.0, 72, 3}).misses, 0);
    EXPECT_LT(RunCapacity(policy, {1.0, 80, 2}).polls_per_event, 3);
  }
  for (const char* policy : {"immediate", "inference-first",
                             "eraser:lazy,partial", "eraser:shards:4,soft"}) {
    SCOPED_TRACE(policy);
    const CapacityTotals over = RunCapacity(policy, {1.0, 80, 2});
    EXPECT_EQ(over.traces_missing, 40) << "meant to exceed two cores";
    if (std::string(policy) != "immediate") {
      EXPECT_EQ(over.announced, over.misses);
    }
  }
}

// The table of docs/perf/zoo.md ("What two cores carry"): misses per cost,
// rate and cores, for `immediate`, `inference-first`, and the presets'
// fewest and most.
// Run by hand: scheduler_test --gtest_also_run_disabled_tests
// --gtest_filter='CoreCapacity.*'
TEST(CoreCapacity, DISABLED_Sweep) {
  std::printf(
      "| del/s | us per sample-epoch | cores | immediate misses | "
      "inference-first misses | presets' misses (fewest, most) | traces "
      "with a miss (most) | retraining CPU s per trace (immediate / "
      "inference-first) |\n|---|---|---|---|---|---|---|---|\n");
  for (double rate : {0.5, 1.0}) {
    for (int cores : {2, 3}) {
      for (double micros : {56.0, 64.0, 72.0, 80.0, 90.0}) {
        const CapacityCase c{rate, micros, cores};
        const CapacityTotals eager = RunCapacity("immediate", c);
        CapacityTotals first;
        int fewest = INT_MAX;
        int most = 0;
        int most_traces = 0;
        for (const auto& [name, policy] : DeadlinePresets()) {
          const CapacityTotals t = RunCapacity(policy, c);
          if (name == "inference-first") first = t;
          fewest = std::min(fewest, t.misses);
          most = std::max(most, t.misses);
          most_traces = std::max(most_traces, t.traces_missing);
        }
        std::printf(
            "| %.1f | %.0f | %d | %d | %d | %d, %d of %llu | %d of 40 | "
            "%.1f / %.1f |\n",
            rate, micros, cores, eager.misses, first.misses, fewest, most,
            static_cast<unsigned long long>(first.deletions), most_traces,
            eager.seconds, first.seconds);
      }
    }
  }
}

}  // namespace
}  // namespace eraser::scheduler
