#include "eraser/common/sync_point.h"

#include <atomic>
#include <map>

#include "eraser/common/mutex.h"

namespace eraser {
namespace {

struct Registry {
  Mutex mu;
  std::map<std::string, std::function<void()>> callbacks GUARDED_BY(mu);
  std::atomic<bool> any{false};
};

Registry& Get() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

void SyncPoints::Set(const std::string& name, std::function<void()> callback) {
  Registry& r = Get();
  MutexLock lock(&r.mu);
  r.callbacks[name] = std::move(callback);
  r.any.store(true, std::memory_order_release);
}

void SyncPoints::Clear(const std::string& name) {
  Registry& r = Get();
  MutexLock lock(&r.mu);
  r.callbacks.erase(name);
  r.any.store(!r.callbacks.empty(), std::memory_order_release);
}

void SyncPoints::ClearAll() {
  Registry& r = Get();
  MutexLock lock(&r.mu);
  r.callbacks.clear();
  r.any.store(false, std::memory_order_release);
}

void SyncPoints::Run(const char* name) {
  Registry& r = Get();
  if (!r.any.load(std::memory_order_relaxed)) return;
  std::function<void()> callback;
  {
    MutexLock lock(&r.mu);
    auto it = r.callbacks.find(name);
    if (it == r.callbacks.end()) return;
    callback = it->second;
  }
  callback();
}

}  // namespace eraser
