// Clang thread-safety annotations (-Wthread-safety). They document which
// lock guards which member; with GCC they expand to nothing.
#ifndef ERASER_COMMON_THREAD_ANNOTATIONS_H_
#define ERASER_COMMON_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define ERASER_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define ERASER_THREAD_ANNOTATION_(x)
#endif

#define GUARDED_BY(x) ERASER_THREAD_ANNOTATION_(guarded_by(x))
#define PT_GUARDED_BY(x) ERASER_THREAD_ANNOTATION_(pt_guarded_by(x))
#define EXCLUSIVE_LOCKS_REQUIRED(...) \
  ERASER_THREAD_ANNOTATION_(exclusive_locks_required(__VA_ARGS__))
#define LOCKS_EXCLUDED(...) \
  ERASER_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS \
  ERASER_THREAD_ANNOTATION_(no_thread_safety_analysis)

#endif  // ERASER_COMMON_THREAD_ANNOTATIONS_H_
