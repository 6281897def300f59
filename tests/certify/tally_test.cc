// Incremental re-certification: after any sequence of swaps (Resolve) and
// new deletions (MarkAffected), the tally agrees with certifying from
// scratch.
#include "eraser/certify/tally.h"

#include <gtest/gtest.h>

#include <random>

namespace eraser::certify {
namespace {

void ExpectSameCertificate(const Certificate& a, const Certificate& b) {
  EXPECT_EQ(a.answer, b.answer);
  EXPECT_EQ(a.certified, b.certified);
  EXPECT_EQ(a.margin, b.margin);
  EXPECT_EQ(a.rival, b.rival);
  EXPECT_EQ(a.affected, b.affected);
}

TEST(VoteTally, AgreesWithFromScratchAfterEveryChange) {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 500; ++trial) {
    const int k = 1 + static_cast<int>(rng() % 16);
    const int classes = 2 + static_cast<int>(rng() % 9);
    std::vector<int32_t> votes(k);
    std::vector<uint8_t> affected(k);
    for (int i = 0; i < k; ++i) {
      votes[i] = static_cast<int32_t>(rng() % classes);
      affected[i] = rng() % 2;
    }
    VoteTally tally(votes.data(), affected.data(), k, classes);
    for (int step = 0; step < 20; ++step) {
      const std::size_t shard = rng() % k;
      if (rng() % 2) {
        tally.Resolve(shard, static_cast<int32_t>(rng() % classes));
      } else {
        tally.MarkAffected(shard);
      }
      const Certificate scratch = CertifyHardVote(
          tally.votes().data(), tally.affected_flags().data(), k, classes);
      ExpectSameCertificate(tally.Certify(), scratch);
      EXPECT_EQ(tally.Partial(),
                PartialVote(tally.votes().data(), tally.affected_flags().data(),
                            k, classes));
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(VoteTally, ResolveOfAParkedRequestCertifiesIt) {
  // 8 shards, answer 4 with 5 votes; 3 affected shards (one of them votes 4):
  // u_4 = 4, u_7 = 1 -> slack 4 - 1 - 3 = 0, rival 7 > 4: certified at 0.
  // With a rival 2 instead, the tie-break fails.
  const std::vector<int32_t> votes = {4, 4, 4, 4, 2, 4, 7, 7};
  const std::vector<uint8_t> affected = {0, 0, 0, 0, 0, 1, 1, 1};
  VoteTally tally(votes.data(), affected.data(), 8, 10);
  EXPECT_FALSE(tally.Certify().certified);
  EXPECT_EQ(tally.Certify().rival, 2);
  EXPECT_EQ(tally.MinShardsToResolve(), 1);
  tally.Resolve(6, 4);  // retrained shard 6 now votes 4
  const Certificate c = tally.Certify();
  EXPECT_TRUE(c.certified);
  EXPECT_EQ(c.answer, 4);
  EXPECT_EQ(c.affected, 2);
  EXPECT_EQ(tally.MinShardsToResolve(), 0);
}

// MinShardsToResolve is the least m such that resolving m affected shards
// in the answer's favour certifies it.
TEST(VoteTally, MinShardsToResolveIsTight) {
  std::mt19937 rng(23);
  for (int trial = 0; trial < 2000; ++trial) {
    const int k = 1 + static_cast<int>(rng() % 12);
    const int classes = 2 + static_cast<int>(rng() % 5);
    std::vector<int32_t> votes(k);
    std::vector<uint8_t> affected(k);
    for (int i = 0; i < k; ++i) {
      votes[i] = static_cast<int32_t>(rng() % classes);
      affected[i] = rng() % 2;
    }
    const VoteTally tally(votes.data(), affected.data(), k, classes);
    const int answer = tally.Certify().answer;
    const int m = tally.MinShardsToResolve();
    ASSERT_GE(m, 0);
    ASSERT_LE(m, tally.affected());
    auto certified_after = [&](int resolved) {
      VoteTally t = tally;
      int done = 0;
      for (int i = 0; i < k && done < resolved; ++i) {
        if (t.is_affected(i)) {
          t.Resolve(i, answer);
          ++done;
        }
      }
      return t.Certify().certified;
    };
    EXPECT_TRUE(certified_after(m)) << "trial " << trial;
    if (m > 0) {
      EXPECT_FALSE(certified_after(m - 1)) << "trial " << trial;
    }
  }
}

}  // namespace
}  // namespace eraser::certify
