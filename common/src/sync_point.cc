#include "eraser/common/sync_point.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "eraser/common/mutex.h"

namespace eraser {
namespace {

struct Registry {
  Mutex mu;
  std::map<std::string, std::function<void()>> callbacks GUARDED_BY(mu);
  std::atomic<bool> any{false};
  // The callbacks running now: the point's name and the thread running it.
  std::vector<std::pair<std::string, std::thread::id>> running GUARDED_BY(mu);
  CondVar done;  // signalled as each ends
};

// Waits until no thread but this one runs a callback `named` (any, for
// nullptr): one running on this thread is the caller's own frame.
void AwaitOthers(Registry& r, const std::string* named) REQUIRES(r.mu) {
  const std::thread::id self = std::this_thread::get_id();
  auto other = [&](const std::pair<std::string, std::thread::id>& e) {
    return e.second != self && (named == nullptr || e.first == *named);
  };
  while (std::any_of(r.running.begin(), r.running.end(), other)) {
    r.done.Wait(&r.mu);
  }
}

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
  AwaitOthers(r, &name);
}

void SyncPoints::ClearAll() {
  Registry& r = Get();
  MutexLock lock(&r.mu);
  r.callbacks.clear();
  r.any.store(false, std::memory_order_release);
  AwaitOthers(r, nullptr);
}

void SyncPoints::Run(const char* name) {
  Registry& r = Get();
  if (!r.any.load(std::memory_order_relaxed)) return;
  std::function<void()> callback;
  const std::pair<std::string, std::thread::id> entry(
      name, std::this_thread::get_id());
  {
    MutexLock lock(&r.mu);
    auto it = r.callbacks.find(name);
    if (it == r.callbacks.end()) return;
    callback = it->second;
    r.running.push_back(entry);
  }
  // Ended however the callback ends.
  struct Ended {
    Registry& r;
    const std::pair<std::string, std::thread::id>& entry;
    ~Ended() {
      {
        MutexLock lock(&r.mu);
        r.running.erase(std::find(r.running.begin(), r.running.end(), entry));
      }
      r.done.SignalAll();
    }
  } ended{r, entry};
  callback();
}

}  // namespace eraser
