// Happens-before annotations for ThreadSanitizer. oneTBB is not built with
// TSan, so the ordering its task scheduler provides (work submitted before a
// task runs; a task finished before wait() returns) is invisible to TSan and
// every access across that edge would be reported. These macros state the
// edge explicitly at the point where our code relies on it. They compile to
// nothing in builds without -fsanitize=thread.
#ifndef ERASER_COMMON_TSAN_H_
#define ERASER_COMMON_TSAN_H_

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
// Everything this thread did before is visible to a later
// ERASER_HAPPENS_AFTER(addr) in any thread.
#define ERASER_HAPPENS_BEFORE(addr) \
  __tsan_release(const_cast<void*>(static_cast<const volatile void*>(addr)))
#define ERASER_HAPPENS_AFTER(addr) \
  __tsan_acquire(const_cast<void*>(static_cast<const volatile void*>(addr)))
#else
#define ERASER_HAPPENS_BEFORE(addr) static_cast<void>(addr)
#define ERASER_HAPPENS_AFTER(addr) static_cast<void>(addr)
#endif

#endif  // ERASER_COMMON_TSAN_H_
