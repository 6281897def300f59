// Waiting in tests for state that another thread or process reaches on its
// own (a retraining, a server start, a replay). One bound for the whole
// suite: a test fails because the condition never holds, never because the
// machine is slow. The slowest stage of CI (ThreadSanitizer on a slow
// 2-core machine) runs the engine 10 to 20 times slower than a plain build
// on a fast one; kPatience leaves room for that several times over, and is
// only ever reached by a test that is failing anyway.
#ifndef ERASER_TESTS_TESTING_WAIT_H_
#define ERASER_TESTS_TESTING_WAIT_H_

#include <chrono>
#include <future>
#include <thread>

namespace eraser::testing {

inline constexpr std::chrono::minutes kPatience{5};

// Polls `done` until it holds or `limit` passes; returns its last value.
// Sleeps `poll` between polls rather than spinning: on two cores a spinning
// waiter takes a core from the threads it waits for.
template <typename Predicate>
bool Eventually(Predicate done,
                std::chrono::steady_clock::duration limit = kPatience,
                std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(poll);
  }
  return true;
}

// Whether `f` has its value now, without waiting.
template <typename T>
bool Ready(const std::future<T>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_WAIT_H_
