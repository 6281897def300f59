// The engine on a ManualClock: its batching delay, its deadlines and its
// latencies come from the injected clock, so tests move time instead of
// sleeping (and a real clock would not pass them: the delays are ten
// seconds and an hour, the tests take milliseconds).
#include <gtest/gtest.h>

#include <thread>

#include "engine_fixture.h"

namespace eraser::engine {
namespace {

using testing::Eventually;

class ClockedEngine : public ::testing::Test {
 protected:
  std::unique_ptr<Engine> Open(const std::string& policy,
                               Duration max_queue_delay) {
    EngineOptions o = testing::Options(testing::CopyTemplate(dir_), policy);
    o.clock = &clock_;
    o.inference.max_batch_size = 64;
    o.inference.max_queue_delay = max_queue_delay;
    StatusOr<std::unique_ptr<Engine>> e = Engine::Open(o);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? std::move(e).value() : nullptr;
  }

  eraser::testing::TempDir dir_;
  ManualClock clock_;
};

TEST_F(ClockedEngine, ABatchWaitsForTheClockNotForRealTime) {
  std::unique_ptr<Engine> engine =
      Open("eraser-lazy-wait", std::chrono::seconds(10));
  ASSERT_NE(engine, nullptr);
  std::future<StatusOr<Prediction>> answer = engine->Infer(testing::Input(0));
  // The worker waits for more requests until the clock passes the oldest
  // one's delay: the control loop and the worker are then both waiting on
  // the clock.
  ASSERT_TRUE(Eventually([&] { return clock_.waiters() >= 2; }));
  clock_.Advance(std::chrono::seconds(10));
  StatusOr<Prediction> p = answer.get();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->decision, Decision::kClean);
  // Latency and queueing are clock time too.
  EXPECT_GE(p->queue_seconds, 10.0);
  EXPECT_GE(p->latency_seconds, 10.0);
  EXPECT_LT(p->latency_seconds, 11.0);
}

TEST_F(ClockedEngine, ALightLoadPaysNoBatchingDelay) {
  std::unique_ptr<Engine> engine =
      Open("eraser-lazy-wait", std::chrono::milliseconds(100));
  ASSERT_NE(engine, nullptr);
  // The first request knows no arrival rate yet: it waits for the batch.
  std::future<StatusOr<Prediction>> first = engine->Infer(testing::Input(0));
  ASSERT_TRUE(Eventually([&] { return clock_.waiters() >= 2; }));
  clock_.Advance(std::chrono::milliseconds(100));
  ASSERT_TRUE(first.get().ok());
  // Requests a second apart: no second request is expected within 100 ms,
  // so each goes at once, with the clock standing still.
  for (int i = 1; i <= 3; ++i) {
    clock_.Advance(std::chrono::seconds(1));
    StatusOr<Prediction> p = engine->Infer(testing::Input(i)).get();
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->queue_seconds, 0.0);
    EXPECT_EQ(p->latency_seconds, 0.0);
  }
}

TEST_F(ClockedEngine, ABatchClosesWhenArrivalsStop) {
  std::unique_ptr<Engine> engine =
      Open("eraser-lazy-wait", std::chrono::milliseconds(100));
  ASSERT_NE(engine, nullptr);
  // Twelve requests 1 ms apart, as a closed-loop client sends them: the
  // queue learns a mean gap of 1 ms, well within the 100 ms delay, so the
  // batch waits for more.
  std::vector<std::future<StatusOr<Prediction>>> answers;
  for (int i = 0; i < 12; ++i) {
    answers.push_back(engine->Infer(testing::Input(i)));
    clock_.Advance(std::chrono::milliseconds(1));
  }
  // Then nothing arrives. Four mean gaps after the last request (t0 + 15
  // ms), the batch closes, long before the oldest request's 100 ms.
  clock_.Advance(std::chrono::milliseconds(5));
  const bool all_answered = Eventually([&] {
    for (auto& a : answers) {
      if (a.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        return false;
      }
    }
    return true;
  });
  clock_.Advance(std::chrono::milliseconds(100));  // never hang on failure
  ASSERT_TRUE(all_answered);
  for (auto& a : answers) {
    StatusOr<Prediction> p = a.get();
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_LT(p->queue_seconds, 0.05);
  }
}

TEST_F(ClockedEngine, ADeadlineRetrainsWhenTheClockReachesIt) {
  std::unique_ptr<Engine> engine =
      Open("eraser:lazy,partial,deadline=1h", std::chrono::milliseconds(0));
  ASSERT_NE(engine, nullptr);
  const TimePoint t0 = clock_.Now();
  StatusOr<DeletionSeq> seq = engine->RequestDeletion(
      storage::DeletionTarget::Sample(testing::SampleIn(1, 1)));
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(engine->Stats().pending_deletions, 1u);
  // An hour of clock time later (a second or so of real time: one
  // retraining), the deadline has been kept.
  clock_.Advance(std::chrono::hours(1));
  ASSERT_TRUE(
      Eventually([&] { return engine->Stats().pending_deletions == 0; }));
  StatusOr<DeletionInfo> info = engine->GetDeletion(*seq);
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(info->applied.has_value());
  EXPECT_EQ(info->arrival, t0);
  EXPECT_GE(*info->applied, t0 + std::chrono::hours(1));
  ASSERT_EQ(info->excluded_from.size(), 1u);
  EXPECT_EQ(info->excluded_from[0].first, ShardId(1));
  EXPECT_EQ(info->excluded_from[0].second, 2u);
  EXPECT_EQ(engine->Stats().deadline_misses, 0u);
}

TEST_F(ClockedEngine, AMissedDeadlineIsCounted) {
  // The retraining only starts when the clock has passed the deadline (it
  // is advanced by two hours in one step): the application is late, and
  // Stats and the metrics say so.
  std::unique_ptr<Engine> engine =
      Open("eraser:lazy,partial,deadline=1h", std::chrono::milliseconds(0));
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine
                  ->RequestDeletion(
                      storage::DeletionTarget::Sample(testing::SampleIn(2, 0)))
                  .ok());
  clock_.Advance(std::chrono::hours(2));
  ASSERT_TRUE(
      Eventually([&] { return engine->Stats().pending_deletions == 0; }));
  EXPECT_EQ(engine->Stats().deadline_misses, 1u);
  EXPECT_NE(engine->metrics()->TextExposition().find(
                "eraser_deadline_misses_total 1"),
            std::string::npos);
}

}  // namespace
}  // namespace eraser::engine
