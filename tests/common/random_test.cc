#include "eraser/common/random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

namespace eraser {
namespace {

TEST(Rng, IsSplitMix64) {
  // Reference outputs of SplitMix64 seeded with 0.
  Rng rng(0);
  EXPECT_EQ(rng.Next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.Next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.Next(), 0x06c45d188009454fULL);
}

TEST(Rng, UniformStaysInRangeAndCoversIt) {
  Rng rng(42);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const uint64_t v = rng.Uniform(7);
    ASSERT_LT(v, 7u);
    ++counts[v];
  }
  for (int c : counts) {
    EXPECT_GT(c, 9500);
    EXPECT_LT(c, 10500);
  }
  for (int i = 0; i < 1000; ++i) {
    const float f = rng.UniformFloat();
    ASSERT_GE(f, 0.0f);
    ASSERT_LT(f, 1.0f);
  }
}

TEST(Rng, ShuffleIsAPermutationFixedBySeed) {
  std::vector<int> a(100);
  std::iota(a.begin(), a.end(), 0);
  std::vector<int> b = a;
  std::vector<int> c = a;
  Rng(5).Shuffle(a.begin(), a.end());
  Rng(5).Shuffle(b.begin(), b.end());
  Rng(6).Shuffle(c.begin(), c.end());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::sort(c.begin(), c.end());
  std::vector<int> sorted(100);
  std::iota(sorted.begin(), sorted.end(), 0);
  EXPECT_EQ(c, sorted);
}

TEST(DeriveSeed, DistinctTuplesGiveDistinctSeeds) {
  std::set<uint64_t> seeds;
  for (uint64_t shard = 0; shard < 8; ++shard) {
    for (uint64_t slice = 0; slice < 8; ++slice) {
      seeds.insert(DeriveSeed(1, {shard, slice}));
    }
  }
  EXPECT_EQ(seeds.size(), 64u);
  EXPECT_NE(DeriveSeed(1, {0, 1}), DeriveSeed(1, {1, 0}));
  EXPECT_NE(DeriveSeed(1, {2}), DeriveSeed(2, {2}));
  EXPECT_EQ(DeriveSeed(9, {3, 4}), DeriveSeed(9, {3, 4}));
}

}  // namespace
}  // namespace eraser
