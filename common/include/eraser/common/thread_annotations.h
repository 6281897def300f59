// Clang thread-safety annotations (-Wthread-safety), as in abseil and
// leveldb. They state which lock guards which member and which functions
// need it held; clang checks them (the `make clang` build, run by CI, turns
// every violation into an error). With GCC they expand to nothing.
#ifndef ERASER_COMMON_THREAD_ANNOTATIONS_H_
#define ERASER_COMMON_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define ERASER_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define ERASER_THREAD_ANNOTATION_(x)
#endif

// gRPC's headers bring abseil's legacy macros of the same names and the
// same expansions: included after them, these replace them without a
// redefinition warning; included before, abseil's (equal) ones replace
// these.
#undef CAPABILITY
#undef SCOPED_CAPABILITY
#undef GUARDED_BY
#undef PT_GUARDED_BY
#undef ACQUIRED_BEFORE
#undef ACQUIRED_AFTER
#undef REQUIRES
#undef EXCLUSIVE_LOCKS_REQUIRED
#undef REQUIRES_SHARED
#undef ACQUIRE
#undef ACQUIRE_SHARED
#undef RELEASE
#undef RELEASE_SHARED
#undef RELEASE_GENERIC
#undef EXCLUDES
#undef LOCKS_EXCLUDED
#undef ASSERT_CAPABILITY
#undef ASSERT_SHARED_CAPABILITY
#undef RETURN_CAPABILITY
#undef NO_THREAD_SAFETY_ANALYSIS

#define CAPABILITY(x) ERASER_THREAD_ANNOTATION_(capability(x))
#define SCOPED_CAPABILITY ERASER_THREAD_ANNOTATION_(scoped_lockable)
#define GUARDED_BY(x) ERASER_THREAD_ANNOTATION_(guarded_by(x))
#define PT_GUARDED_BY(x) ERASER_THREAD_ANNOTATION_(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) \
  ERASER_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) \
  ERASER_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#define REQUIRES(...) \
  ERASER_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define EXCLUSIVE_LOCKS_REQUIRED(...) REQUIRES(__VA_ARGS__)
#define REQUIRES_SHARED(...) \
  ERASER_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) ERASER_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) \
  ERASER_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) ERASER_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) \
  ERASER_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) \
  ERASER_THREAD_ANNOTATION_(release_generic_capability(__VA_ARGS__))
#define EXCLUDES(...) ERASER_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define LOCKS_EXCLUDED(...) EXCLUDES(__VA_ARGS__)
#define ASSERT_CAPABILITY(x) ERASER_THREAD_ANNOTATION_(assert_capability(x))
#define ASSERT_SHARED_CAPABILITY(x) \
  ERASER_THREAD_ANNOTATION_(assert_shared_capability(x))
#define RETURN_CAPABILITY(x) ERASER_THREAD_ANNOTATION_(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS \
  ERASER_THREAD_ANNOTATION_(no_thread_safety_analysis)

#endif  // ERASER_COMMON_THREAD_ANNOTATIONS_H_
