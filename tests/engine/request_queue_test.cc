// The inference queue's dynamic batching on a ManualClock: when a batch
// waits for more requests and when it goes at once.
#include "request_queue.h"

#include <gtest/gtest.h>

#include <future>

#include "engine_fixture.h"

namespace eraser::engine::internal {
namespace {

using eraser::testing::Ready;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using testing::Eventually;

constexpr Duration kDelay = milliseconds(100);
constexpr std::size_t kMaxBatch = 64;

class RequestQueueTest : public ::testing::Test {
 protected:
  void Push() {
    auto request = std::make_unique<Request>();
    ASSERT_TRUE(queue_.Push(request));
  }

  // A worker taking a batch, on its own thread.
  std::future<bool> StartPop(std::vector<RequestPtr>* batch) {
    return std::async(std::launch::async, [this, batch] {
      return queue_.PopBatch(kMaxBatch, kDelay, batch);
    });
  }

  // True once the worker waits on the clock for more requests; false if it
  // returned without waiting. With requests queued it does one or the
  // other, and once waiting it cannot return until the clock moves.
  bool WaitsForMore(const std::future<bool>& popped) {
    EXPECT_TRUE(
        Eventually([&] { return Ready(popped) || clock_.waiters() > 0; }));
    return !Ready(popped);
  }

  // Pops a batch as the worker does. True if it went at once; false if it
  // waited on the clock for more requests (the clock is then moved past
  // the oldest request's delay to let it go). `size` gets the batch's size.
  bool PopsAtOnce(std::size_t* size = nullptr) {
    if (queue_.size() == 0) {
      ADD_FAILURE() << "nothing queued: the worker would wait for a push";
      return false;
    }
    std::vector<RequestPtr> batch;
    std::future<bool> popped = StartPop(&batch);
    const bool at_once = !WaitsForMore(popped);
    if (!at_once) clock_.Advance(kDelay);
    EXPECT_TRUE(popped.get());
    if (size != nullptr) *size = batch.size();
    return at_once;
  }

  ManualClock clock_;
  RequestQueue queue_{&clock_};
};

TEST_F(RequestQueueTest, OneClientWaitingForEachAnswerPaysNoBatchingDelay) {
  // One client sends a request 1 ms after each answer: arrivals 1 ms apart,
  // well within the delay, but none ever finds another request queued, so
  // no batch fills by waiting. Until arrivals say so the queue assumes a
  // load: the first batches wait as they always did (requests 1 and 3 to
  // 5; the second comes 101 ms after the first, since this test lets a
  // waiting batch go by moving the clock by the delay, and so goes at once).
  int waited = 0;
  for (int i = 1; i <= 25; ++i) {
    if (i > 1) clock_.Advance(milliseconds(1));
    Push();
    const bool at_once = PopsAtOnce();
    if (i >= 6) {
      EXPECT_TRUE(at_once) << "request " << i << " waited for a batch";
    }
    waited += at_once ? 0 : 1;
  }
  EXPECT_EQ(waited, 4);
}

TEST_F(RequestQueueTest, ABurstFillsABatchAgainAfterALightPhase) {
  // A light phase: ten requests from one client (the share of arrivals
  // that find a request queued falls to 0.26).
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(milliseconds(1));
    Push();
    PopsAtOnce();
  }
  // Then a burst while the worker is busy: five requests 1 ms apart, four
  // of them finding others queued (the share is back to 0.55). The worker
  // waits for more, and takes the four that come while it waits too.
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(milliseconds(1));
    Push();
  }
  std::vector<RequestPtr> batch;
  std::future<bool> popped = StartPop(&batch);
  ASSERT_TRUE(WaitsForMore(popped));
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(milliseconds(1));
    Push();
  }
  clock_.Advance(kDelay);
  EXPECT_TRUE(popped.get());
  EXPECT_EQ(batch.size(), 9u);
}

TEST_F(RequestQueueTest, AFewConnectionsInAClosedLoopCloseTheirBatchSoon) {
  // Four connections, each sending its next request once answered: a round
  // of four requests 10 us apart, a millisecond after the last answer. The
  // batch waits for the round (most arrivals find another request queued),
  // then closes four gaps of 10 us after the round's last request, not four
  // mean gaps of every arrival (about 0.9 ms here, set by the time each
  // round took to be answered, which the batch's own wait would feed).
  for (int round = 0; round < 10; ++round) {
    clock_.Advance(milliseconds(1));
    for (int i = 0; i < 4; ++i) {
      if (i > 0) clock_.Advance(microseconds(10));
      Push();
    }
    clock_.Advance(microseconds(50));
    std::size_t size = 0;
    EXPECT_TRUE(PopsAtOnce(&size)) << "round " << round;
    EXPECT_EQ(size, 4u);
  }
  // Without the quiet 50 us, it waits for more.
  clock_.Advance(milliseconds(1));
  for (int i = 0; i < 4; ++i) {
    if (i > 0) clock_.Advance(microseconds(10));
    Push();
  }
  EXPECT_FALSE(PopsAtOnce());
}

TEST_F(RequestQueueTest, AZeroGapIsAGap) {
  // Four requests at one instant: the gaps between them are zero, and four
  // of them have passed at once, so the batch goes without waiting for the
  // delay.
  for (int i = 0; i < 4; ++i) Push();
  std::size_t size = 0;
  EXPECT_TRUE(PopsAtOnce(&size));
  EXPECT_EQ(size, 4u);
}

TEST_F(RequestQueueTest, AWorkerNeverTakesAnEmptyBatch) {
  // Two workers wait for more on one request; the first to wake takes it,
  // and the other waits again (for a push, or the close), not returning an
  // empty batch.
  Push();
  std::vector<RequestPtr> first;
  std::vector<RequestPtr> second;
  std::future<bool> a = StartPop(&first);
  std::future<bool> b = StartPop(&second);
  // Destroyed before the futures, which wait for their workers: a failed
  // assertion does not leave one blocked on the queue.
  struct CloseOnExit {
    RequestQueue& queue;
    ~CloseOnExit() { queue.Close(); }
  } close_on_exit{queue_};
  ASSERT_TRUE(Eventually([&] { return clock_.waiters() == 2; }));
  clock_.Advance(kDelay);
  ASSERT_TRUE(Eventually([&] { return Ready(a) || Ready(b); }));
  queue_.Close();
  const bool got_a = a.get();
  const bool got_b = b.get();
  EXPECT_NE(got_a, got_b) << "exactly one worker gets the batch";
  EXPECT_EQ(first.size() + second.size(), 1u);
}

}  // namespace
}  // namespace eraser::engine::internal
