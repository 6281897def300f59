// Named points in production code where a test can run a callback, as
// RocksDB's SyncPoint does: to kill a process between two steps, or to
// inject a fault at a precise moment. With no callback set (always, outside
// tests), a point costs one relaxed atomic load.
//
//   ERASER_SYNC_POINT("RocksStore::Apply:Committed");
//   ...
//   SyncPoints::Set("RocksStore::Apply:Committed", [] { raise(SIGKILL); });
#ifndef ERASER_COMMON_SYNC_POINT_H_
#define ERASER_COMMON_SYNC_POINT_H_

#include <functional>
#include <string>

namespace eraser {

class SyncPoints {
 public:
  // Runs `callback` each time a thread passes `name`, until cleared.
  static void Set(const std::string& name, std::function<void()> callback);
  static void Clear(const std::string& name);
  static void ClearAll();
  // Called by ERASER_SYNC_POINT; runs the callback, if any, on the calling
  // thread (no lock held).
  static void Run(const char* name);
};

}  // namespace eraser

#define ERASER_SYNC_POINT(name) ::eraser::SyncPoints::Run(name)

#endif  // ERASER_COMMON_SYNC_POINT_H_
