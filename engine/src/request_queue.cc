#include "request_queue.h"

namespace eraser::engine::internal {

bool RequestQueue::Push(RequestPtr& request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    request->queued = std::chrono::steady_clock::now();
    queue_.push_back(std::move(request));
  }
  cv_.notify_one();
  return true;
}

void RequestQueue::PushFront(std::vector<RequestPtr> requests) {
  if (requests.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const SteadyTime now = std::chrono::steady_clock::now();
    for (auto it = requests.rbegin(); it != requests.rend(); ++it) {
      (*it)->queued = now;
      queue_.push_front(std::move(*it));
    }
  }
  cv_.notify_all();
}

bool RequestQueue::PopBatch(std::size_t max_batch, Duration max_delay,
                            std::vector<RequestPtr>* batch) {
  batch->clear();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) return false;  // closed and drained
  // Wait for a full batch, but not past the oldest request's delay budget.
  const SteadyTime deadline = queue_.front()->queued + max_delay;
  cv_.wait_until(lock, deadline, [this, max_batch] {
    return closed_ || queue_.size() >= max_batch;
  });
  while (!queue_.empty() && batch->size() < max_batch) {
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return true;
}

void RequestQueue::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::size_t RequestQueue::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

}  // namespace eraser::engine::internal
