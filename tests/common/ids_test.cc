#include "eraser/common/ids.h"

#include <gtest/gtest.h>

#include <sstream>
#include <type_traits>
#include <unordered_set>

namespace eraser {
namespace {

TEST(StrongId, ComparesAndHashes) {
  EXPECT_EQ(SampleId(3), SampleId(3));
  EXPECT_LT(SampleId(2), SampleId(3));
  EXPECT_GE(ShardId(4), ShardId(4));
  std::unordered_set<OwnerId> owners = {OwnerId(1), OwnerId(2), OwnerId(1)};
  EXPECT_EQ(owners.size(), 2u);
}

TEST(StrongId, PrintsItsValue) {
  std::ostringstream os;
  os << ShardId(7) << "/" << DeletionSeq(12);
  EXPECT_EQ(os.str(), "7/12");
}

TEST(StrongId, DistinctTypesDoNotConvert) {
  static_assert(!std::is_convertible_v<SampleId, OwnerId>);
  static_assert(!std::is_convertible_v<uint64_t, SampleId>);
  static_assert(!std::is_convertible_v<ShardId, uint32_t>);
  EXPECT_EQ(SampleId().value(), 0u);
}

}  // namespace
}  // namespace eraser
