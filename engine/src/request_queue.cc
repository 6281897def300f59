#include "request_queue.h"

#include <algorithm>

namespace eraser::engine::internal {

namespace {

// Exponential moving averages over about the last 8 values.
double Blend(double mean, double value) { return 0.875 * mean + 0.125 * value; }

void Average(double value, std::optional<double>* mean) {
  *mean = mean->has_value() ? Blend(**mean, value) : value;
}

}  // namespace

bool RequestQueue::Push(RequestPtr& request) {
  {
    MutexLock lock(&mu_);
    if (closed_) return false;
    const TimePoint now = clock_->Now();
    request->queued = now;
    const bool found_queued = !queue_.empty();
    queued_share_ = Blend(queued_share_, found_queued ? 1.0 : 0.0);
    if (last_arrival_) {
      // A gap is capped at a second so that one pause does not take long
      // to forget.
      const double gap = std::min(
          1.0, std::chrono::duration<double>(now - *last_arrival_).count());
      Average(gap, &mean_gap_seconds_);
      if (found_queued) Average(gap, &queued_gap_seconds_);
    }
    last_arrival_ = now;
    queue_.push_back(std::move(request));
  }
  cv_.SignalAll();
  return true;
}

void RequestQueue::PushFront(std::vector<RequestPtr> requests) {
  if (requests.empty()) return;
  {
    MutexLock lock(&mu_);
    const TimePoint now = clock_->Now();
    for (auto it = requests.rbegin(); it != requests.rend(); ++it) {
      (*it)->queued = now;
      queue_.push_front(std::move(*it));
    }
  }
  cv_.SignalAll();
}

bool RequestQueue::PopBatch(std::size_t max_batch, Duration max_delay,
                            std::vector<RequestPtr>* batch) {
  batch->clear();
  MutexLock lock(&mu_);
  // With several workers, another one may take what this one waited for:
  // it then waits again rather than return an empty batch.
  while (batch->empty()) {
    while (!closed_ && queue_.empty()) cv_.Wait(&mu_);
    if (queue_.empty()) return false;  // closed and drained
    // Wait for a full batch, but not past the oldest request's delay
    // budget, not at all when the next request is not expected within it
    // or would not come while this one waits (most arrivals found nothing
    // queued: a light load, or one client waiting for each answer before
    // it sends the next), and no longer once arrivals stop: after
    // kQuietGaps mean gaps without a request, what was coming has come (a
    // closed-loop client, such as a fixed set of HTTP connections, sends
    // nothing more until this batch is answered). That mean gap is taken
    // between arrivals that found a request queued: a gap that ends on an
    // empty queue spans the time the engine took to answer, and would make
    // a batch of a few closed-loop connections wait for as long as their
    // last round took.
    const TimePoint deadline = queue_.front()->queued + max_delay;
    const bool expect_more =
        queued_share_ >= kQueuedShare &&
        mean_gap_seconds_.value_or(0) <
            std::chrono::duration<double>(max_delay).count();
    // Another worker may take the queue meanwhile: this one then starts
    // over, with the deadline of whatever comes next.
    while (!closed_ && expect_more && !queue_.empty() &&
           queue_.size() < max_batch) {
      TimePoint until = deadline;
      const std::optional<double> gap =
          queued_gap_seconds_ ? queued_gap_seconds_ : mean_gap_seconds_;
      if (gap && last_arrival_) {
        until = std::min(
            until, *last_arrival_ +
                       std::chrono::duration_cast<Duration>(
                           std::chrono::duration<double>(kQuietGaps * *gap)));
      }
      if (clock_->Now() >= until) break;
      cv_.WaitUntil(&mu_, *clock_, until);
    }
    while (!queue_.empty() && batch->size() < max_batch) {
      batch->push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  return true;
}

void RequestQueue::Close() {
  {
    MutexLock lock(&mu_);
    closed_ = true;
  }
  cv_.SignalAll();
}

std::size_t RequestQueue::size() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

}  // namespace eraser::engine::internal
