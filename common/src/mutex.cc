#include "eraser/common/mutex.h"

#include <cstdlib>

namespace eraser {

SharedMutex::SharedMutex() {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr,
                                PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  if (pthread_rwlock_init(&rw_, &attr) != 0) std::abort();
  pthread_rwlockattr_destroy(&attr);
}

SharedMutex::~SharedMutex() { pthread_rwlock_destroy(&rw_); }

// A failure here is a bug (a lock taken twice, or a deadlock the library
// detected): nothing can go on safely.
void SharedMutex::Lock() NO_THREAD_SAFETY_ANALYSIS {
  if (pthread_rwlock_wrlock(&rw_) != 0) std::abort();
}
void SharedMutex::Unlock() NO_THREAD_SAFETY_ANALYSIS {
  if (pthread_rwlock_unlock(&rw_) != 0) std::abort();
}
void SharedMutex::ReaderLock() NO_THREAD_SAFETY_ANALYSIS {
  if (pthread_rwlock_rdlock(&rw_) != 0) std::abort();
}
void SharedMutex::ReaderUnlock() NO_THREAD_SAFETY_ANALYSIS {
  if (pthread_rwlock_unlock(&rw_) != 0) std::abort();
}

void CondVar::Wait(Mutex* mu) {
  std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
  cv_.wait(lock);
  lock.release();
}

bool CondVar::WaitUntil(Mutex* mu, const Clock& clock, TimePoint deadline) {
  if (clock.Now() >= deadline) return false;
  std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
  clock.WaitUntil(cv_, lock, deadline);
  lock.release();
  return clock.Now() < deadline;
}

}  // namespace eraser
