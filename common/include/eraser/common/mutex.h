// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable
// wrapped once with clang's capability annotations, so that -Wthread-safety
// checks every GUARDED_BY and REQUIRES in the code that uses them (as
// leveldb's port/port_stdcxx.h does). Every lock in eraser is one of these.
//
// CondVar waits take time from a Clock: with a ManualClock, a timed wait
// ends when a test advances the clock past its deadline, never by real time
// passing, so tests synchronise on events instead of sleeping.
#ifndef ERASER_COMMON_MUTEX_H_
#define ERASER_COMMON_MUTEX_H_

#include <pthread.h>

#include <condition_variable>
#include <mutex>

#include "eraser/common/clock.h"
#include "eraser/common/thread_annotations.h"

namespace eraser {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // Tells the analysis the caller holds the lock (it checks nothing at run
  // time): for callbacks the analysis cannot follow.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A reader-writer lock: many holders share it, or one holds it alone. A
// writer waiting keeps new readers out (glibc's default read-preferring
// lock would let a stream of overlapping readers starve it). Not
// reentrant: a holder must not take it again, shared or not.
class CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex();
  ~SharedMutex();
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ACQUIRE();
  void Unlock() RELEASE();
  void ReaderLock() ACQUIRE_SHARED();
  void ReaderUnlock() RELEASE_SHARED();
  // As Mutex::AssertHeld, for a shared hold (checks nothing at run time).
  void AssertReaderHeld() const ASSERT_SHARED_CAPABILITY(this) {}

 private:
  pthread_rwlock_t rw_;
};

// Holds `mu` alone for its scope.
class SCOPED_CAPABILITY WriterMutexLock {
 public:
  explicit WriterMutexLock(SharedMutex* mu) ACQUIRE(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~WriterMutexLock() RELEASE() { mu_->Unlock(); }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// A condition variable. As with abseil's, each wait names the Mutex it
// releases, so the analysis checks that the caller holds it; one CondVar is
// always used with the same Mutex.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu`, waits for a Signal, reacquires `mu`. May wake
  // spuriously: wait in a loop on the condition.
  void Wait(Mutex* mu) REQUIRES(mu);
  // The same, but also returns once `clock` reaches `deadline`. Returns
  // false if the deadline had passed (the caller rechecks its condition
  // either way).
  bool WaitUntil(Mutex* mu, const Clock& clock, TimePoint deadline)
      REQUIRES(mu);
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace eraser

#endif  // ERASER_COMMON_MUTEX_H_
