#include "eraser/common/sync_point.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

namespace eraser {
namespace {

// A callback at `point` that another thread enters and that holds it
// there until Release().
class HeldCallback {
 public:
  explicit HeldCallback(const std::string& point)
      : released_(release_.get_future().share()) {
    SyncPoints::Set(point, [this, released = released_] {
      entered_.set_value();
      released.wait();
      ended_ = true;
    });
    passer_ = std::thread([point] { SyncPoints::Run(point.c_str()); });
    entered_.get_future().wait();
  }
  ~HeldCallback() {
    Release();
    passer_.join();
  }
  void Release() {
    if (!released_flag_.exchange(true)) release_.set_value();
  }
  bool ended() const { return ended_.load(); }

 private:
  std::promise<void> entered_, release_;
  std::shared_future<void> released_;
  std::atomic<bool> released_flag_{false};
  std::atomic<bool> ended_{false};
  std::thread passer_;
};

// Runs `fn` on a thread of its own and reports whether it returned within
// a minute: a bound only a deadlock reaches, so that a clear waiting for
// what it must not wait for fails the test instead of hanging it until
// ctest's timeout (the thread is then abandoned, blocked).
bool ReturnsWithinAMinute(std::function<void()> fn) {
  auto returned = std::make_shared<std::promise<void>>();
  std::future<void> done = returned->get_future();
  std::thread([fn = std::move(fn), returned] {
    fn();
    returned->set_value();
  }).detach();
  return done.wait_for(std::chrono::minutes(1)) == std::future_status::ready;
}

// A test clears its points, then lets go of what their callbacks use
// (locals, promises) while an engine's threads may still pass the points:
// a callback one of them was already running must have ended by then. (A
// lease thread still inside a callback after the clear: the likely cause
// of an AddressSanitizer abort in CI, reproduced with a delay planted
// before the callback, as a read of the test's dead frame.)
TEST(SyncPoints, AClearWaitsForTheCallbacksOtherThreadsAreRunning) {
  for (bool all : {false, true}) {
    HeldCallback held("SyncPointTest:Point");
    std::future<bool> cleared = std::async(std::launch::async, [&] {
      if (all) {
        SyncPoints::ClearAll();
      } else {
        SyncPoints::Clear("SyncPointTest:Point");
      }
      return held.ended();
    });
    // A clear that does not wait returns now, with the callback held.
    // (Bounded, not a synchronisation: a clear that waits cannot return
    // before the release below, however slow the machine.)
    const bool returned_early =
        cleared.wait_for(std::chrono::milliseconds(200)) ==
        std::future_status::ready;
    held.Release();
    EXPECT_FALSE(returned_early) << "all: " << all;
    EXPECT_TRUE(cleared.get()) << "all: " << all;
    // Cleared: the point runs nothing now.
    ERASER_SYNC_POINT("SyncPointTest:Point");
  }
}

// A clear of one point does not wait for another point's callback.
TEST(SyncPoints, AClearOfOnePointDoesNotWaitForAnother) {
  SyncPoints::Set("SyncPointTest:Point", [] {});
  HeldCallback held("SyncPointTest:Held");
  // Returns with Held running.
  ASSERT_TRUE(
      ReturnsWithinAMinute([] { SyncPoints::Clear("SyncPointTest:Point"); }));
  EXPECT_FALSE(held.ended());
  held.Release();
  SyncPoints::ClearAll();
  EXPECT_TRUE(held.ended());
}

// A callback may clear points, its own included, without waiting for
// itself.
TEST(SyncPoints, ACallbackClearsPointsWithoutWaitingForItself) {
  auto runs = std::make_shared<std::atomic<int>>(0);
  SyncPoints::Set("SyncPointTest:Other", [] {});
  SyncPoints::Set("SyncPointTest:Point", [runs] {
    ++*runs;
    SyncPoints::Clear("SyncPointTest:Other");
    SyncPoints::ClearAll();
  });
  ASSERT_TRUE(ReturnsWithinAMinute([] {
    ERASER_SYNC_POINT("SyncPointTest:Point");
    ERASER_SYNC_POINT("SyncPointTest:Point");
  }));
  EXPECT_EQ(runs->load(), 1);
}

}  // namespace
}  // namespace eraser
