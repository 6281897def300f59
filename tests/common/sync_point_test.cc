#include "eraser/common/sync_point.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace eraser {
namespace {

// A test clears its points, then lets go of what their callbacks use
// (locals, promises) while an engine's threads may still pass the points:
// a callback one of them was already running must have ended by then. (A
// lease thread still inside a callback after the clear: the likely cause
// of an AddressSanitizer abort in CI, reproduced with a delay planted
// before the callback, as a read of the test's dead frame.)
TEST(SyncPoints, AClearWaitsForTheCallbacksOtherThreadsAreRunning) {
  for (bool all : {false, true}) {
    std::promise<void> entered, release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> ended{false};
    SyncPoints::Set("SyncPointTest:Point", [&entered, released, &ended] {
      entered.set_value();
      released.wait();
      ended = true;
    });
    std::thread passer([] { ERASER_SYNC_POINT("SyncPointTest:Point"); });
    entered.get_future().wait();
    std::future<bool> cleared = std::async(std::launch::async, [&] {
      if (all) {
        SyncPoints::ClearAll();
      } else {
        SyncPoints::Clear("SyncPointTest:Point");
      }
      return ended.load();
    });
    // A clear that does not wait returns now, with the callback held.
    // (Bounded, not a synchronisation: a clear that waits cannot return
    // before the release below, however slow the machine.)
    const bool returned_early =
        cleared.wait_for(std::chrono::milliseconds(200)) ==
        std::future_status::ready;
    release.set_value();
    EXPECT_FALSE(returned_early) << "all: " << all;
    EXPECT_TRUE(cleared.get()) << "all: " << all;
    passer.join();
    // Cleared: the point runs nothing now.
    ERASER_SYNC_POINT("SyncPointTest:Point");
  }
}

// A clear of one point does not wait for another point's callback.
TEST(SyncPoints, AClearOfOnePointDoesNotWaitForAnother) {
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> ended{false};
  SyncPoints::Set("SyncPointTest:Held", [&entered, released, &ended] {
    entered.set_value();
    released.wait();
    ended = true;
  });
  SyncPoints::Set("SyncPointTest:Point", [] {});
  std::thread passer([] { ERASER_SYNC_POINT("SyncPointTest:Held"); });
  entered.get_future().wait();
  SyncPoints::Clear("SyncPointTest:Point");  // returns with Held running
  EXPECT_FALSE(ended.load());
  release.set_value();
  passer.join();
  SyncPoints::ClearAll();
  EXPECT_TRUE(ended.load());
}

// A callback may clear points, its own included, without waiting for
// itself.
TEST(SyncPoints, ACallbackClearsPointsWithoutWaitingForItself) {
  int runs = 0;
  SyncPoints::Set("SyncPointTest:Other", [] {});
  SyncPoints::Set("SyncPointTest:Point", [&runs] {
    ++runs;
    SyncPoints::Clear("SyncPointTest:Other");
    SyncPoints::ClearAll();
  });
  ERASER_SYNC_POINT("SyncPointTest:Point");
  ERASER_SYNC_POINT("SyncPointTest:Point");
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace eraser
