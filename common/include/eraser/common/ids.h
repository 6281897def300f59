// Strong id types. Each wraps an integer and converts to nothing else, so a
// shard id cannot be passed where a sample id is expected.
#ifndef ERASER_COMMON_IDS_H_
#define ERASER_COMMON_IDS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>

namespace eraser {

template <typename Tag, typename Rep>
class StrongId {
 public:
  using rep_type = Rep;

  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep value) : value_(value) {}

  constexpr Rep value() const { return value_; }

  friend constexpr bool operator==(StrongId a, StrongId b) {
    return a.value_ == b.value_;
  }
  friend constexpr bool operator!=(StrongId a, StrongId b) {
    return a.value_ != b.value_;
  }
  friend constexpr bool operator<(StrongId a, StrongId b) {
    return a.value_ < b.value_;
  }
  friend constexpr bool operator<=(StrongId a, StrongId b) {
    return a.value_ <= b.value_;
  }
  friend constexpr bool operator>(StrongId a, StrongId b) {
    return a.value_ > b.value_;
  }
  friend constexpr bool operator>=(StrongId a, StrongId b) {
    return a.value_ >= b.value_;
  }
  friend std::ostream& operator<<(std::ostream& os, StrongId id) {
    return os << +id.value_;
  }

 private:
  Rep value_{};
};

// A training sample: its index in the training split of the dataset.
using SampleId = StrongId<struct SampleIdTag, uint64_t>;
// A data owner: the unit a person's deletion request names.
using OwnerId = StrongId<struct OwnerIdTag, uint64_t>;
// A shard of the SISA partition, in [0, K).
using ShardId = StrongId<struct ShardIdTag, uint32_t>;
// A deletion request's sequence number in the deletion log, from 1.
using DeletionSeq = StrongId<struct DeletionSeqTag, uint64_t>;

}  // namespace eraser

template <typename Tag, typename Rep>
struct std::hash<eraser::StrongId<Tag, Rep>> {
  std::size_t operator()(eraser::StrongId<Tag, Rep> id) const noexcept {
    return std::hash<Rep>()(id.value());
  }
};

#endif  // ERASER_COMMON_IDS_H_
