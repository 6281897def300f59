#include "eraser/certify/vote.h"

#include <gtest/gtest.h>

#include <vector>

namespace eraser::certify {
namespace {

TEST(PluralityVote, MostVotesWin) {
  const std::vector<int32_t> votes = {3, 1, 3, 2, 3, 1};
  EXPECT_EQ(PluralityVote(votes.data(), votes.size(), 4), 3);
}

TEST(PluralityVote, TiesGoToTheSmallestLabel) {
  const std::vector<int32_t> votes = {2, 1, 2, 1};
  EXPECT_EQ(PluralityVote(votes.data(), votes.size(), 3), 1);
  const std::vector<int32_t> all_different = {3, 2, 1};
  EXPECT_EQ(PluralityVote(all_different.data(), 3, 4), 1);
}

TEST(PluralityVote, IgnoresOutOfRangeVotes) {
  const std::vector<int32_t> votes = {9, 9, 9, 2, -1};
  EXPECT_EQ(PluralityVote(votes.data(), votes.size(), 3), 2);
  EXPECT_EQ(PluralityVote(votes.data(), 0, 3), 0);
}

TEST(SoftVote, SumsProbabilities) {
  // Two models prefer 0 weakly, one prefers 1 strongly: the sum picks 1.
  const std::vector<float> probs = {0.6f, 0.4f, 0.6f, 0.4f, 0.0f, 1.0f};
  EXPECT_EQ(SoftVote(probs.data(), 3, 2), 1);
  // Hard vote on the same models picks 0.
  const std::vector<int32_t> votes = {0, 0, 1};
  EXPECT_EQ(PluralityVote(votes.data(), 3, 2), 0);
}

TEST(SoftVote, TiesGoToTheSmallestLabel) {
  const std::vector<float> probs = {0.25f, 0.5f, 0.25f, 0.25f, 0.25f, 0.5f};
  EXPECT_EQ(SoftVote(probs.data(), 2, 3), 1);  // sums 0.5, 0.75, 0.75
}

}  // namespace
}  // namespace eraser::certify
