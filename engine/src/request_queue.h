// The inference queue with dynamic batching: a worker takes up to
// max_batch requests, waiting at most max_delay (on the engine's clock)
// after the oldest one entered the queue for more to arrive. The wait is
// adaptive: when requests arrive further apart than max_delay (a moving
// average of the gaps between arrivals), no more is expected within the
// budget and the batch goes at once, so a light load pays no batching
// delay; nor does it wait when arrivals seldom find another request queued
// (a moving share of arrivals): one client that sends its next request
// only once answered arrives often, but never while a request waits, so
// waiting would only add to its every answer. Under load the batch waits to
// fill, but closes early once no request has arrived for kQuietGaps mean
// gaps between requests arriving together (closed-loop clients).
#ifndef ERASER_ENGINE_SRC_REQUEST_QUEUE_H_
#define ERASER_ENGINE_SRC_REQUEST_QUEUE_H_

#include <deque>
#include <optional>
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
  // Blocks until a batch is ready (never empty); false when closed and
  // empty.
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
  // Arrivals: the last one, and the moving averages of the gaps between
  // them, all of them (none until two have been seen, which makes the
  // first batches wait as before) and those ending on a queued request
  // (until one has been seen, the batch closes by the former).
  std::optional<TimePoint> last_arrival_ GUARDED_BY(mu_);
  std::optional<double> mean_gap_seconds_ GUARDED_BY(mu_);
  std::optional<double> queued_gap_seconds_ GUARDED_BY(mu_);
  // The moving share of arrivals that found a request already queued,
  // over about the last 8 (one until arrivals say otherwise, which makes
  // the first batches wait as before); the batch waits only from
  // kQueuedShare on.
  double queued_share_ GUARDED_BY(mu_) = 1;
  static constexpr double kQueuedShare = 0.5;
  // Poisson arrivals leave a gap this many times the mean with probability
  // e^-4 (1.8%): an open-loop stream rarely closes a batch early (a little
  // more often than that: a long gap is likelier to span the worker taking
  // the queue, and so to be left out of the mean).
  static constexpr double kQuietGaps = 4;
};

}  // namespace eraser::engine::internal

#endif  // ERASER_ENGINE_SRC_REQUEST_QUEUE_H_
