// Clears every sync point when it goes, however the test ends (a failed
// ASSERT included): declared after what the callbacks use, it goes before
// that does. `first` runs before the clearing (the join of a thread whose
// callbacks may still run).
//
//   std::thread other;
//   eraser::testing::SyncPointsCleared cleared([&] {
//     if (other.joinable()) other.join();
//   });
//   SyncPoints::Set("RocksStore::Apply:Committed", [&] { ... });
#ifndef ERASER_TESTS_TESTING_SYNC_POINTS_H_
#define ERASER_TESTS_TESTING_SYNC_POINTS_H_

#include <functional>
#include <utility>

#include "eraser/common/sync_point.h"

namespace eraser::testing {

class SyncPointsCleared {
 public:
  SyncPointsCleared() = default;
  explicit SyncPointsCleared(std::function<void()> first)
      : first_(std::move(first)) {}
  ~SyncPointsCleared() {
    if (first_) first_();
    SyncPoints::ClearAll();
  }
  SyncPointsCleared(const SyncPointsCleared&) = delete;
  SyncPointsCleared& operator=(const SyncPointsCleared&) = delete;

 private:
  std::function<void()> first_;
};

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_SYNC_POINTS_H_
