#include "eraser/common/sync_point.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <thread>
#include <vector>

#include "eraser/common/mutex.h"

namespace eraser {
namespace {

struct Registry {
  Mutex mu;
  std::map<std::string, std::function<void()>> callbacks GUARDED_BY(mu);
  std::atomic<bool> any{false};
  // The callbacks running now, numbered in the order they began.
  struct Run {
    uint64_t number;
    std::string name;
    std::thread::id thread;
  };
  std::vector<Run> running GUARDED_BY(mu);
  uint64_t runs GUARDED_BY(mu) = 0;  // begun so far
  CondVar done;                      // signalled as each ends
};

// Waits until the callbacks `named` (any, for nullptr) that other threads
// began before this call have ended. Called from inside a callback, it does
// not wait: two threads clearing from their callbacks would wait for each
// other.
void AwaitOthers(Registry& r, const std::string* named) REQUIRES(r.mu) {
  const std::thread::id self = std::this_thread::get_id();
  const uint64_t begun = r.runs;
  auto inside = [&](const Registry::Run& e) { return e.thread == self; };
  if (std::any_of(r.running.begin(), r.running.end(), inside)) return;
  auto waited = [&](const Registry::Run& e) {
    return e.number <= begun && (named == nullptr || e.name == *named);
  };
  while (std::any_of(r.running.begin(), r.running.end(), waited)) {
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
  uint64_t number = 0;
  {
    MutexLock lock(&r.mu);
    auto it = r.callbacks.find(name);
    if (it == r.callbacks.end()) return;
    callback = it->second;
    number = ++r.runs;
    r.running.push_back({number, name, std::this_thread::get_id()});
  }
  // Ended however the callback ends; its copy, and what it captured by
  // value, go first.
  struct Ended {
    Registry& r;
    std::function<void()>& callback;
    const uint64_t number;
    ~Ended() {
      callback = nullptr;
      {
        MutexLock lock(&r.mu);
        r.running.erase(std::find_if(
            r.running.begin(), r.running.end(),
            [&](const Registry::Run& e) { return e.number == number; }));
      }
      r.done.SignalAll();
    }
  } ended{r, callback, number};
  callback();
}

}  // namespace eraser
