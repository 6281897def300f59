// The inference queue with dynamic batching: a worker takes up to
// max_batch requests, waiting at most max_delay (on the engine's clock)
// after the oldest one entered the queue for more to arrive.
#ifndef ERASER_ENGINE_SRC_REQUEST_QUEUE_H_
#define ERASER_ENGINE_SRC_REQUEST_QUEUE_H_

#include <deque>
#include <vector>

#include "eraser/common/mutex.h"
#include "request.h"

namespace eraser::engine::internal {

class RequestQueue {
 public:
  // `clock` must outlive the queue.
  explicit RequestQueue(const Clock* clock) : clock_(clock) {}

  // Appends; false (and the request is handed back) once closed.
  bool Push(RequestPtr& request) EXCLUDES(mu_);
  // Puts requests back at the front, ahead of newer ones, even when closed
  // (they were admitted before).
  void PushFront(std::vector<RequestPtr> requests) EXCLUDES(mu_);
  // Blocks until a batch is ready; false when closed and empty.
  bool PopBatch(std::size_t max_batch, Duration max_delay,
                std::vector<RequestPtr>* batch) EXCLUDES(mu_);
  // No more Push; PopBatch drains what is left, then returns false.
  void Close() EXCLUDES(mu_);
  std::size_t size() const EXCLUDES(mu_);

 private:
  const Clock* const clock_;
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<RequestPtr> queue_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
};

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_REQUEST_QUEUE_H_
