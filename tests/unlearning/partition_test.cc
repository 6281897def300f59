#include "eraser/unlearning/partition.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace eraser::unlearning {
namespace {

TEST(Partition, BalancedShardsAndSlices) {
  PartitionOptions o;
  o.shards = 8;
  o.slices = 4;
  StatusOr<std::vector<Placement>> p = MakePartition(60003, o);
  ASSERT_TRUE(p.ok());
  std::map<uint32_t, int> shard_sizes;
  std::map<std::pair<uint32_t, uint32_t>, int> slice_sizes;
  for (const Placement& x : *p) {
    ASSERT_LT(x.shard.value(), 8u);
    ASSERT_LT(x.slice, 4u);
    ++shard_sizes[x.shard.value()];
    ++slice_sizes[{x.shard.value(), x.slice}];
  }
  for (const auto& [shard, size] : shard_sizes) {
    EXPECT_TRUE(size == 7500 || size == 7501) << shard;
  }
  for (const auto& [key, size] : slice_sizes) {
    EXPECT_GE(size, 1875);
    EXPECT_LE(size, 1876);
  }
}

TEST(Partition, FixedBySeed) {
  PartitionOptions o;
  StatusOr<std::vector<Placement>> a = MakePartition(1000, o);
  StatusOr<std::vector<Placement>> b = MakePartition(1000, o);
  o.seed = 2;
  StatusOr<std::vector<Placement>> c = MakePartition(1000, o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  int same_ab = 0;
  int same_ac = 0;
  for (std::size_t i = 0; i < 1000; ++i) {
    same_ab += (*a)[i].shard == (*b)[i].shard && (*a)[i].slice == (*b)[i].slice;
    same_ac += (*a)[i].shard == (*c)[i].shard && (*a)[i].slice == (*c)[i].slice;
  }
  EXPECT_EQ(same_ab, 1000);
  EXPECT_LT(same_ac, 200);  // about 1 in 32 by chance
}

TEST(Partition, DefaultOwnerIsTheSample) {
  StatusOr<std::vector<Placement>> p = MakePartition(100, PartitionOptions());
  ASSERT_TRUE(p.ok());
  for (std::size_t i = 0; i < 100; ++i) EXPECT_EQ((*p)[i].owner, OwnerId(i));
}

TEST(Partition, GroupedOwnersSpreadOverShards) {
  PartitionOptions o;
  o.samples_per_owner = 10;
  StatusOr<std::vector<Placement>> p = MakePartition(10005, o);
  ASSERT_TRUE(p.ok());
  std::map<uint64_t, std::set<ShardId>> shards_of;
  std::map<uint64_t, int> size_of;
  for (const Placement& x : *p) {
    shards_of[x.owner.value()].insert(x.shard);
    ++size_of[x.owner.value()];
  }
  EXPECT_EQ(size_of.size(), 1001u);
  int spanning = 0;
  for (const auto& [owner, size] : size_of) {
    EXPECT_EQ(size, owner == 1000 ? 5 : 10);
    spanning += shards_of[owner].size() > 1;
  }
  EXPECT_GT(spanning, 990);
}

TEST(Partition, BadOptions) {
  PartitionOptions o;
  o.shards = 0;
  EXPECT_EQ(MakePartition(100, o).status().code(),
            StatusCode::kInvalidArgument);
  o = PartitionOptions();
  o.samples_per_owner = 0;
  EXPECT_EQ(MakePartition(100, o).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MakePartition(31, PartitionOptions()).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eraser::unlearning
