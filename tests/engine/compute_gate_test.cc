// The compute gate on a ManualClock: a borrowed retraining takes precedence
// over inference, either by pausing it or, in the concurrent context, by
// capping its share of the time; a retraining on an idle inference core
// yields to it; an exclusive context keeps them apart.
#include "compute_gate.h"

#include <gtest/gtest.h>

#include <future>

#include "engine_fixture.h"

namespace eraser::engine::internal {
namespace {

using eraser::testing::Ready;
using std::chrono::milliseconds;
using testing::Eventually;

// One inference batch that computes for `d` of clock time.
void Batch(ComputeGate& gate, ManualClock& clock, Duration d) {
  const TimePoint entered = gate.EnterInference();
  clock.Advance(d);
  gate.ExitInference(entered);
}

TEST(ComputeGate, ABorrowedRetrainingCapsInferenceAtItsShare) {
  ManualClock clock;
  ComputeGate gate(/*exclusive=*/false, 0.25, &clock);
  // Unborrowed retrainings share nothing with inference.
  gate.EnterRetrain(false);
  Batch(gate, clock, milliseconds(50));
  gate.ExitRetrain(false);

  gate.EnterRetrain(true);
  const TimePoint start = clock.Now();
  // The burst: one batch may compute at once...
  Batch(gate, clock, ComputeGate::kBurst);
  // ...and then another 10 ms, since 25% of 10 ms is not yet used up to
  // the burst: inference has used 10 ms at t = 10 ms, allowed from t = 0.
  Batch(gate, clock, milliseconds(10));
  // 20 ms used at t = 20 ms: the next batch may start at t = 40 ms.
  std::future<TimePoint> next =
      std::async(std::launch::async, [&] { return gate.EnterInference(); });
  ASSERT_TRUE(Eventually([&] { return clock.waiters() >= 1; }));
  EXPECT_FALSE(Ready(next));
  clock.AdvanceTo(start + milliseconds(39));
  ASSERT_TRUE(Eventually([&] { return clock.waiters() >= 1; }));
  EXPECT_FALSE(Ready(next));
  clock.AdvanceTo(start + milliseconds(40));
  const TimePoint entered = next.get();
  EXPECT_EQ(entered, start + milliseconds(40));
  clock.Advance(milliseconds(30));
  gate.ExitInference(entered);
  // The retraining ends: inference runs freely again, whatever it used.
  std::future<TimePoint> after =
      std::async(std::launch::async, [&] { return gate.EnterInference(); });
  ASSERT_TRUE(Eventually([&] { return clock.waiters() >= 1; }));
  gate.ExitRetrain(true);
  gate.ExitInference(after.get());
  Batch(gate, clock, milliseconds(100));
}

TEST(ComputeGate, ABorrowingStartsAFreshAccount) {
  ManualClock clock;
  ComputeGate gate(false, 0.5, &clock);
  gate.EnterRetrain(true);
  Batch(gate, clock, milliseconds(200));  // one long batch: far over
  gate.ExitRetrain(true);
  gate.EnterRetrain(true);
  // The next borrowing does not inherit the debt: the burst is free.
  Batch(gate, clock, ComputeGate::kBurst);
  gate.ExitRetrain(true);
}

TEST(ComputeGate, WithNoShareABorrowedRetrainingPausesInference) {
  ManualClock clock;
  ComputeGate gate(false, 0.0, &clock);
  // The retraining waits for the running batch...
  const TimePoint entered = gate.EnterInference();
  std::future<void> retrain =
      std::async(std::launch::async, [&] { gate.EnterRetrain(true); });
  gate.ExitInference(entered);
  retrain.get();
  // ...and the next batch waits for the retraining.
  std::future<TimePoint> next =
      std::async(std::launch::async, [&] { return gate.EnterInference(); });
  EXPECT_FALSE(Ready(next));
  gate.ExitRetrain(true);
  gate.ExitInference(next.get());
  // Unborrowed retrainings still pass beside inference.
  const TimePoint again = gate.EnterInference();
  gate.EnterRetrain(false);
  gate.ExitRetrain(false);
  gate.ExitInference(again);
}

TEST(ComputeGate, AYieldingRetrainingWaitsOutEachInferenceBatch) {
  ManualClock clock;
  ComputeGate gate(/*exclusive=*/false, 0.25, &clock);
  // No batch computes: the retraining goes on at once.
  EXPECT_EQ(gate.YieldToInference(), Duration(0));
  // A batch computes: the retraining's next mini-batch waits for its end,
  // and learns how long it waited.
  const TimePoint entered = gate.EnterInference();
  std::future<Duration> yielded =
      std::async(std::launch::async, [&] { return gate.YieldToInference(); });
  ASSERT_TRUE(Eventually([&] { return gate.yielding() == 1; }));
  clock.Advance(milliseconds(7));
  EXPECT_EQ(yielded.wait_for(std::chrono::seconds(0)),
            std::future_status::timeout);
  gate.ExitInference(entered);
  EXPECT_EQ(yielded.get(), milliseconds(7));
  // It never holds inference back: batches pass as if it were not there.
  Batch(gate, clock, milliseconds(50));
  // Under a saturating load it waits out the batch under way, not the
  // next one: the two alternate instead of the retraining starving.
  TimePoint first = gate.EnterInference();
  yielded =
      std::async(std::launch::async, [&] { return gate.YieldToInference(); });
  ASSERT_TRUE(Eventually([&] { return gate.yielding() == 1; }));
  clock.Advance(milliseconds(3));
  gate.ExitInference(first);
  first = gate.EnterInference();  // the next batch, at once
  EXPECT_EQ(yielded.get(), milliseconds(3));
  gate.ExitInference(first);
}

TEST(ComputeGate, TheExclusiveContextPausesInferenceForEveryRetraining) {
  ManualClock clock;
  ComputeGate gate(/*exclusive=*/true, 0.25, &clock);
  for (bool borrowed : {false, true}) {
    gate.EnterRetrain(borrowed);
    std::future<TimePoint> next =
        std::async(std::launch::async, [&] { return gate.EnterInference(); });
    EXPECT_FALSE(Ready(next));
    gate.ExitRetrain(borrowed);
    gate.ExitInference(next.get());
  }
}

}  // namespace
}  // namespace eraser::engine::internal
