// The inference queue's dynamic batching on a ManualClock: when a batch
// waits for more requests and when it goes at once.
#include "request_queue.h"

#include <gtest/gtest.h>

#include <future>

#include "engine_fixture.h"

namespace eraser::engine::internal {
namespace {

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

  // Pops a batch as the worker does. True if it went at once; false if it
  // waited on the clock for more requests (the clock is then moved past
  // the oldest request's delay to let it go). `size` gets the batch's size.
  bool PopsAtOnce(std::size_t* size = nullptr) {
    std::vector<RequestPtr> batch;
    std::future<bool> popped = std::async(std::launch::async, [&] {
      return queue_.PopBatch(kMaxBatch, kDelay, &batch);
    });
    auto ready = [&] {
      return popped.wait_for(std::chrono::seconds(0)) ==
             std::future_status::ready;
    };
    EXPECT_TRUE(Eventually([&] { return ready() || clock_.waiters() > 0; }));
    // Blocked on the clock, it cannot return until the clock moves.
    const bool at_once = ready();
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
  // load: the first batches wait as they always did (requests 1 and 3 to 5;
  // the second comes 101 ms after the first, beyond the delay).
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

TEST_F(RequestQueueTest, ABatchWaitsToFillWhenArrivalsFindRequestsQueued) {
  // A light phase: ten requests from one client (the share of arrivals
  // that find a request queued falls to 0.26).
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(milliseconds(1));
    Push();
    PopsAtOnce();
  }
  // Then a burst while the worker is busy: eight requests 1 ms apart, seven
  // of them finding others queued (the share is back to 0.70). The batch
  // waits for more, and takes all eight.
  for (int i = 0; i < 8; ++i) {
    clock_.Advance(milliseconds(1));
    Push();
  }
  std::size_t size = 0;
  EXPECT_FALSE(PopsAtOnce(&size));
  EXPECT_EQ(size, 8u);
}

TEST_F(RequestQueueTest, AFewConnectionsInAClosedLoopCloseTheirBatchSoon) {
  // Four connections, each sending its next request once answered: a round
  // of four requests 10 us apart, a millisecond after the last answer. The
  // batch waits for the round (most arrivals find another request queued),
  // then closes four gaps of 10 us after the round's last request, not four
  // mean gaps of every arrival (about 1.1 ms here, set by the time each
  // round took to be answered, which the batch's own wait would feed).
  using std::chrono::microseconds;
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

}  // namespace
}  // namespace eraser::engine::internal
