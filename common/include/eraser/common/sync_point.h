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
  // Once these return, no other thread runs the cleared callbacks (they
  // wait for the runs begun before), so what the callbacks use may go: a
  // thread of an engine still running may have passed the point just
  // before. A callback blocked on the clearing thread holds it up. Called
  // from inside a callback, they do not wait. (A child of fork() inherits
  // the runs of its parent's other threads: it must not clear.)
  static void Clear(const std::string& name);
  static void ClearAll();
  // Called by ERASER_SYNC_POINT; runs the callback, if any, on the calling
  // thread (no lock held; a callback may set or clear points).
  static void Run(const char* name);
};

}  // namespace eraser

#define ERASER_SYNC_POINT(name) ::eraser::SyncPoints::Run(name)

#endif  // ERASER_COMMON_SYNC_POINT_H_
