// Per-label counters that live on the stack for up to kMaxInlineClasses
// labels, so a certificate check does not allocate.
#ifndef ERASER_CERTIFY_SRC_COUNTS_H_
#define ERASER_CERTIFY_SRC_COUNTS_H_

#include <algorithm>
#include <vector>

#include "eraser/certify/certificate.h"

namespace eraser::certify::internal {

template <typename T>
class BasicCounts {
 public:
  explicit BasicCounts(int classes) {
    if (classes <= kMaxInlineClasses) {
      data_ = inline_;
      std::fill_n(inline_, classes, T{});
    } else {
      heap_.assign(static_cast<std::size_t>(classes), T{});
      data_ = heap_.data();
    }
  }
  BasicCounts(const BasicCounts&) = delete;
  BasicCounts& operator=(const BasicCounts&) = delete;

  T& operator[](int c) { return data_[c]; }
  const T* data() const { return data_; }

 private:
  T inline_[kMaxInlineClasses];
  std::vector<T> heap_;
  T* data_;
};

using Counts = BasicCounts<int>;

int Argmax(const int* counts, int classes);
// The hard-vote certificate from per-label counts over all shards and over
// the unaffected ones.
Certificate CertifyCounts(const int* all, const int* unaffected, int affected,
                          int classes);

}  // namespace eraser::certify::internal

#endif  // ERASER_CERTIFY_SRC_COUNTS_H_
