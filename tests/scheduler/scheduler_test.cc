// Each policy's decisions on scripted event sequences, driven by a manual
// clock, and a randomized check that deadlines hold with a simulated
// executor.
#include "eraser/scheduler/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <queue>
#include <random>

namespace eraser::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;

constexpr uint32_t kSlices = 4;

// Retraining from slice r costs (4 - r) * 1000 sample-epochs; with the
// initial estimate of 1 ms per sample-epoch that is 4 s from slice 0 and 1 s
// from slice 3.
uint64_t Cost(ShardId, uint32_t slice) { return (kSlices - slice) * 1000; }

SchedulerOptions Options(int concurrency) {
  SchedulerOptions o;
  o.concurrency = concurrency;
  o.initial_seconds_per_sample_epoch = 1e-3;
  o.deadline_safety = 1.5;
  o.deadline_margin = seconds(1);
  return o;
}

std::vector<uint32_t> ShardsOf(const std::vector<RetrainOrder>& orders) {
  std::vector<uint32_t> shards;
  for (const RetrainOrder& o : orders) shards.push_back(o.shard.value());
  return shards;
}

class SchedulerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Scheduler> Make(const std::string& text,
                                  int concurrency = 2) {
    StatusOr<Policy> policy = ParsePolicy(text);
    EXPECT_TRUE(policy.ok()) << policy.status();
    return std::make_unique<Scheduler>(*policy, Options(concurrency), Cost,
                                       clock_.Now());
  }
  void Delete(Scheduler& s, uint64_t seq, std::vector<ShardHit> hits) {
    s.OnDeletion(DeletionSeq(seq), clock_.Now(), hits);
  }
  static ShardHit Hit(uint32_t shard, uint32_t slice) {
    return {ShardId(shard), slice};
  }
  void Finish(Scheduler& s, uint32_t shard, bool ok = true) {
    s.OnRetrainFinished(ShardId(shard), ok, seconds(1), 1000);
  }

  ManualClock clock_;
};

TEST_F(SchedulerTest, ImmediateRetrainsAtOnceAndBatchesWhatArrivesMeanwhile) {
  auto s = Make("immediate");
  Delete(*s, 1, {Hit(2, 1)});
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(2));
  EXPECT_EQ(orders[0].first_slice, 1u);
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(1)));
  EXPECT_EQ(orders[0].reason, Reason::kImmediate);
  EXPECT_EQ(orders[0].predicted_sample_epochs, 3000u);
  EXPECT_DOUBLE_EQ(orders[0].predicted_seconds, 3.0);

  // Two more arrive while shard 2 retrains: they stay pending, then go
  // together in one retraining from the earliest slice.
  Delete(*s, 2, {Hit(2, 3)});
  Delete(*s, 3, {Hit(2, 0)});
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  EXPECT_THAT(s->AffectedShards(), ElementsAre(ShardId(2)));
  Finish(*s, 2);
  EXPECT_EQ(s->pending_deletions(), 2u);
  orders = s->Poll(clock_.Now());
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].first_slice, 0u);
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(2), DeletionSeq(3)));
  Finish(*s, 2);
  EXPECT_EQ(s->pending_deletions(), 0u);
  EXPECT_TRUE(s->AffectedShards().empty());
}

TEST_F(SchedulerTest, ImmediateRespectsConcurrencyOldestFirst) {
  auto s = Make("immediate", 2);
  Delete(*s, 1, {Hit(5, 0)});
  clock_.Advance(milliseconds(10));
  Delete(*s, 2, {Hit(1, 0)});
  clock_.Advance(milliseconds(10));
  Delete(*s, 3, {Hit(3, 0)});
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(5, 1));
  EXPECT_EQ(s->running(), 2u);
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  Finish(*s, 5);
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(3));
}

TEST_F(SchedulerTest, InferenceFirstWaitsForTheDeadline) {
  auto s = Make("inference-first,deadline=30s");
  const TimePoint t0 = clock_.Now();
  Delete(*s, 1, {Hit(1, 3)});
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  // Predicted 1 s, times 1.5, plus 1 s margin: start 2.5 s before the
  // deadline.
  ASSERT_TRUE(s->NextWakeup().has_value());
  EXPECT_EQ(*s->NextWakeup(), t0 + milliseconds(27500));
  clock_.AdvanceTo(t0 + milliseconds(27400));
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  clock_.AdvanceTo(t0 + milliseconds(27500));
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].reason, Reason::kDeadline);
}

TEST_F(SchedulerTest, LazyWaitRetrainsCheapestNeededShardOnly) {
  auto s = Make("eraser:lazy,wait");
  Delete(*s, 1, {Hit(0, 0)});                  // 4 s to retrain
  Delete(*s, 2, {Hit(5, 3)});                  // 1 s to retrain
  Delete(*s, 3, {Hit(6, 2)});                  // not needed by the request
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());  // lazy: nothing yet

  s->OnParked(7, {ShardId(0), ShardId(5)}, 1);
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(5));
  EXPECT_EQ(orders[0].reason, Reason::kWait);
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());  // one is on its way

  // After the swap the engine re-certifies; still short: it re-parks.
  Finish(*s, 5);
  s->OnParked(7, {ShardId(0)}, 1);
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(0));
  Finish(*s, 0);
  s->OnUnparked(7);
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  EXPECT_EQ(s->pending_deletions(), 1u);  // seq 3 waits for its deadline
}

TEST_F(SchedulerTest, WaitStopsAsSoonAsTheRequestIsCertified) {
  auto s = Make("eraser:lazy,wait");
  Delete(*s, 1, {Hit(0, 0)});
  Delete(*s, 2, {Hit(5, 3)});
  s->OnParked(7, {ShardId(0), ShardId(5)}, 1);
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(5));
  Finish(*s, 5);
  s->OnUnparked(7);  // certified after the first swap
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
}

TEST_F(SchedulerTest, WaitStartsSeveralWhenOneCannotSuffice) {
  auto s = Make("eraser:lazy,wait", 2);
  Delete(*s, 1, {Hit(0, 0)});
  Delete(*s, 2, {Hit(5, 3)});
  Delete(*s, 3, {Hit(6, 1)});
  s->OnParked(7, {ShardId(0), ShardId(5), ShardId(6)}, 2);
  // The two cheapest: shard 5 (1 s), then shard 6 (3 s).
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(5, 6));
}

TEST_F(SchedulerTest, PartialAndRejectNeverRetrainForARequest) {
  for (const char* policy : {"eraser:lazy,partial", "eraser:lazy,reject"}) {
    auto s = Make(policy);
    Delete(*s, 1, {Hit(0, 0)});
    s->OnParked(7, {ShardId(0)}, 1);
    EXPECT_TRUE(s->Poll(clock_.Now()).empty()) << policy;
  }
}

TEST_F(SchedulerTest, BatchStartsWhenNDeletionsWait) {
  auto s = Make("eraser:batch:3,partial", 2);
  Delete(*s, 1, {Hit(0, 2)});
  Delete(*s, 2, {Hit(4, 1)});
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  Delete(*s, 3, {Hit(0, 3), Hit(7, 0)});
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  // Three shards wait; two slots. Each order covers its shard's deletions.
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[0].reason, Reason::kBatch);
  EXPECT_EQ(orders[0].shard, ShardId(0));
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(1), DeletionSeq(3)));
  EXPECT_EQ(orders[0].first_slice, 2u);
  // The batch is armed: the third shard starts when a slot frees up.
  Finish(*s, 0);
  EXPECT_EQ(ShardsOf(s->Poll(clock_.Now())).size(), 1u);
}

TEST_F(SchedulerTest, PeriodicTicks) {
  auto s = Make("eraser:periodic:10s,partial");
  const TimePoint t0 = clock_.Now();
  Delete(*s, 1, {Hit(3, 1)});
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  EXPECT_EQ(*s->NextWakeup(), t0 + seconds(10));
  clock_.AdvanceTo(t0 + seconds(10));
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].reason, Reason::kPeriodic);
  Finish(*s, 3);
  clock_.Advance(seconds(1));
  Delete(*s, 2, {Hit(3, 2)});
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());  // waits for the next tick
  EXPECT_EQ(*s->NextWakeup(), t0 + seconds(20));
}

TEST_F(SchedulerTest, IdleStartsCheapestWhenTheQueueIsEmptyAndLoadLow) {
  auto s = Make("eraser:idle:0.25,partial", 1);
  Delete(*s, 1, {Hit(0, 0)});
  Delete(*s, 2, {Hit(1, 3)});
  s->OnLoad(3, 0.1);
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  s->OnLoad(0, 0.5);
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  s->OnLoad(0, 0.1);
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].shard, ShardId(1));  // the cheaper one first
  EXPECT_EQ(orders[0].reason, Reason::kIdle);
}

TEST_F(SchedulerTest, ShardsKeepsAtMostAShardsAffectedOldestRetrainedFirst) {
  auto s = Make("eraser:shards:2,partial", 4);
  Delete(*s, 1, {Hit(0, 1)});
  Delete(*s, 2, {Hit(0, 2)});
  clock_.Advance(seconds(1));
  Delete(*s, 3, {Hit(6, 0)});
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());  // two shards affected
  clock_.Advance(seconds(1));
  Delete(*s, 4, {Hit(3, 3)});
  // Three: the oldest shard goes, with both its deletions; the others keep
  // batching.
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  EXPECT_THAT(ShardsOf(orders), ElementsAre(0));
  EXPECT_EQ(orders[0].reason, Reason::kShards);
  EXPECT_THAT(orders[0].covers, ElementsAre(DeletionSeq(1), DeletionSeq(2)));
  Delete(*s, 5, {Hit(6, 1)});  // batched on an affected shard
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  // A deletion on the running shard keeps it affected after its swap:
  // the next oldest goes once that is known.
  Delete(*s, 6, {Hit(0, 3)});
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(6));
  Finish(*s, 0);
  Finish(*s, 6);
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  EXPECT_THAT(s->AffectedShards(), ElementsAre(ShardId(0), ShardId(3)));
}

TEST_F(SchedulerTest, LaterMeasurementsBlendIntoTheEstimate) {
  auto s = Make("eraser:batch:1,partial,deadline=30s");
  Delete(*s, 1, {Hit(2, 3)});
  ASSERT_EQ(s->Poll(clock_.Now()).size(), 1u);
  s->OnRetrainFinished(ShardId(2), true, seconds(2), 1000);  // 2 ms each
  EXPECT_NEAR(s->seconds_per_sample_epoch(), 2e-3, 1e-12);
  Delete(*s, 2, {Hit(2, 3)});
  ASSERT_EQ(s->Poll(clock_.Now()).size(), 1u);
  s->OnRetrainFinished(ShardId(2), true, seconds(4), 1000);  // 4 ms each
  EXPECT_NEAR(s->seconds_per_sample_epoch(), 0.7 * 2e-3 + 0.3 * 4e-3, 1e-12);
  // A failed retraining measures nothing.
  Delete(*s, 3, {Hit(2, 3)});
  ASSERT_EQ(s->Poll(clock_.Now()).size(), 1u);
  s->OnRetrainFinished(ShardId(2), false, seconds(100), 0);
  EXPECT_NEAR(s->seconds_per_sample_epoch(), 0.7 * 2e-3 + 0.3 * 4e-3, 1e-12);
}

TEST_F(SchedulerTest, DeadlineStartsEarlierOnceRetrainingIsMeasuredSlower) {
  auto s = Make("inference-first,deadline=30s");
  Delete(*s, 1, {Hit(2, 3)});
  clock_.Advance(seconds(28));
  ASSERT_EQ(s->Poll(clock_.Now()).size(), 1u);
  // It took 10 s for 1000 sample-epochs: 10 ms each, against 1 ms assumed.
  // The first measurement replaces the assumption.
  s->OnRetrainFinished(ShardId(2), true, seconds(10), 1000);
  const double rate = 1e-2;
  EXPECT_NEAR(s->seconds_per_sample_epoch(), rate, 1e-12);
  const TimePoint t1 = clock_.Now();
  Delete(*s, 2, {Hit(1, 3)});
  s->Poll(clock_.Now());
  const double reserve = 1000 * rate * 1.5 + 1.0;
  const auto expected = t1 + seconds(30) -
                        std::chrono::duration_cast<Duration>(
                            std::chrono::duration<double>(reserve));
  ASSERT_TRUE(s->NextWakeup().has_value());
  EXPECT_NEAR(
      std::chrono::duration<double>(*s->NextWakeup() - expected).count(), 0.0,
      1e-6);
}

TEST_F(SchedulerTest, QueuedWorkMovesDeadlineStartsForward) {
  // One slot, three shards due together, 4 s each (6 s with the safety
  // factor): the last in line must start 12 s earlier than alone, so the
  // line starts then, head first.
  auto s = Make("inference-first,deadline=30s", 1);
  const TimePoint t0 = clock_.Now();
  Delete(*s, 1, {Hit(0, 0)});
  Delete(*s, 2, {Hit(1, 0)});
  Delete(*s, 3, {Hit(2, 0)});
  s->Poll(clock_.Now());
  EXPECT_EQ(*s->NextWakeup(), t0 + seconds(30 - 1 - 6 - 12));
  clock_.AdvanceTo(t0 + seconds(11));
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(0));
}

TEST_F(SchedulerTest, DeadlinesRunEarliestDueFirst) {
  // One slot. Shard 0 is due at 30 s and costs 1 s (1.5 s reserved);
  // shard 1 is due at 31 s and costs 4 s (6 s reserved), behind shard 0:
  // it must start by 31 - 1 - 6 - 1.5 = 22.5 s. Then shard 0, due first,
  // starts first; starting shard 1 would leave shard 0 behind 6 s of work,
  // 1 s before its deadline.
  auto s = Make("eraser:lazy,partial,deadline=30s", 1);
  const TimePoint t0 = clock_.Now();
  Delete(*s, 1, {Hit(0, 3)});
  clock_.Advance(seconds(1));
  Delete(*s, 2, {Hit(1, 0)});
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  EXPECT_EQ(*s->NextWakeup(), t0 + milliseconds(22'500));
  clock_.AdvanceTo(t0 + milliseconds(22'500));
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  EXPECT_THAT(ShardsOf(orders), ElementsAre(0));
  EXPECT_EQ(orders[0].reason, Reason::kDeadline);
  // When it finishes (1.5 s, as reserved), shard 1 follows at once.
  clock_.Advance(milliseconds(1'500));
  s->OnRetrainFinished(ShardId(0), true, milliseconds(1'500), 1000);
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(1));
}

TEST_F(SchedulerTest, DrainingRetrainsEverythingWhateverThePolicy) {
  auto s = Make("eraser:lazy,partial,deadline=1h", 2);
  Delete(*s, 1, {Hit(0, 1)});
  Delete(*s, 2, {Hit(3, 2)});
  Delete(*s, 3, {Hit(5, 0)});
  EXPECT_TRUE(s->Poll(clock_.Now()).empty());
  s->SetDraining(true);
  std::vector<RetrainOrder> orders = s->Poll(clock_.Now());
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[0].reason, Reason::kDrain);
  Finish(*s, orders[0].shard.value());
  EXPECT_EQ(s->Poll(clock_.Now()).size(), 1u);
  s->SetDraining(false);
}

TEST_F(SchedulerTest, FailedRetrainingReturnsItsDeletions) {
  auto s = Make("immediate");
  Delete(*s, 1, {Hit(4, 2)});
  ASSERT_EQ(s->Poll(clock_.Now()).size(), 1u);
  Finish(*s, 4, /*ok=*/false);
  EXPECT_EQ(s->pending_deletions(), 1u);
  std::vector<RetrainOrder> again = s->Poll(clock_.Now());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].first_slice, 2u);
  EXPECT_THAT(again[0].covers, ElementsAre(DeletionSeq(1)));
}

TEST_F(SchedulerTest, OwnerDeletionIsDoneWhenEveryShardIsRetrained) {
  auto s = Make("immediate", 2);
  Delete(*s, 1, {Hit(0, 1), Hit(3, 2)});
  Delete(*s, 1, {Hit(0, 1), Hit(3, 2)});  // repeated: ignored
  EXPECT_THAT(ShardsOf(s->Poll(clock_.Now())), ElementsAre(0, 3));
  Finish(*s, 0);
  EXPECT_EQ(s->pending_deletions(), 1u);
  EXPECT_THAT(s->AffectedShards(), ElementsAre(ShardId(3)));
  Finish(*s, 3);
  EXPECT_EQ(s->pending_deletions(), 0u);
}

// Random deletions for two minutes against a simulated executor whose
// retrainings take 0.8 to 1.2 times the prediction, with one or two
// retraining slots: every deletion is applied within its deadline, under
// every policy that postpones.
class SchedulerDeadlines : public ::testing::TestWithParam<int> {};

TEST_P(SchedulerDeadlines, HoldUnderRandomLoad) {
  const int slots = GetParam();
  for (const char* text :
       {"inference-first,deadline=20s", "eraser:lazy,partial,deadline=20s",
        "eraser:batch:5,partial,deadline=20s",
        "eraser:periodic:7s,reject,deadline=20s",
        "eraser:idle,partial,deadline=20s",
        "eraser:shards:2,partial,deadline=20s"}) {
    SCOPED_TRACE(text);
    StatusOr<Policy> policy = ParsePolicy(text);
    ASSERT_TRUE(policy.ok());
    ManualClock clock;
    const TimePoint t0 = clock.Now();
    Scheduler s(*policy, Options(slots), Cost, t0);
    s.OnLoad(5, 0.9);  // never idle: idle falls back on deadlines
    std::mt19937 rng(99);
    // Deletions per second: 0.5 with two slots, 0.25 with one.
    std::exponential_distribution<double> gap(0.25 * slots);
    std::uniform_real_distribution<double> noise(0.8, 1.2);
    std::map<uint64_t, TimePoint> arrival;
    std::map<uint64_t, int> shards_left;
    std::map<TimePoint, std::vector<std::pair<uint32_t, double>>> finishes;
    TimePoint next_arrival = t0;
    uint64_t seq = 0;
    const TimePoint end = t0 + seconds(120);
    while (next_arrival < end || !finishes.empty() ||
           s.pending_deletions() > 0) {
      TimePoint now = TimePoint::max();
      if (next_arrival < end) now = std::min(now, next_arrival);
      if (!finishes.empty()) now = std::min(now, finishes.begin()->first);
      if (auto w = s.NextWakeup()) now = std::min(now, *w);
      ASSERT_NE(now, TimePoint::max());
      clock.AdvanceTo(now);
      if (!finishes.empty() && finishes.begin()->first <= clock.Now()) {
        for (auto [shard, secs] : finishes.begin()->second) {
          s.OnRetrainFinished(ShardId(shard), true,
                              std::chrono::duration_cast<Duration>(
                                  std::chrono::duration<double>(secs)),
                              Cost(ShardId(shard), 0));
        }
        finishes.erase(finishes.begin());
      }
      if (next_arrival < end && next_arrival <= clock.Now()) {
        ++seq;
        const auto shard = static_cast<uint32_t>(rng() % 8);
        const auto slice = static_cast<uint32_t>(rng() % kSlices);
        std::vector<ShardHit> hits = {{ShardId(shard), slice}};
        s.OnDeletion(DeletionSeq(seq), clock.Now(), hits);
        arrival[seq] = clock.Now();
        next_arrival =
            clock.Now() + std::chrono::duration_cast<Duration>(
                              std::chrono::duration<double>(gap(rng)));
      }
      for (const RetrainOrder& o : s.Poll(clock.Now())) {
        const double secs = o.predicted_seconds * noise(rng);
        const TimePoint done =
            clock.Now() + std::chrono::duration_cast<Duration>(
                              std::chrono::duration<double>(secs));
        finishes[done].push_back({o.shard.value(), secs});
        for (DeletionSeq d : o.covers) {
          EXPECT_LE(done, arrival[d.value()] + seconds(20))
              << "deletion " << d << " misses its deadline";
        }
      }
    }
    EXPECT_GT(seq, 20u);
  }
}

INSTANTIATE_TEST_SUITE_P(Slots, SchedulerDeadlines, ::testing::Values(1, 2));

}  // namespace
}  // namespace eraser::scheduler
