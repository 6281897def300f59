// The certificate against brute force: for every vote vector with K <= 7
// shards and up to 4 classes, and every affected set, "certified" must hold
// exactly when no reassignment of the affected votes changes the plurality
// answer.
#include "eraser/certify/certificate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace eraser::certify {
namespace {

// Reference plurality, written independently of the code under test.
int Plurality(const std::vector<int32_t>& votes, int classes) {
  std::vector<int> counts(classes, 0);
  for (int32_t v : votes) ++counts[v];
  int best = 0;
  for (int c = 1; c < classes; ++c) {
    if (counts[c] > counts[best]) best = c;
  }
  return best;
}

// Advances `digits` as a base-`base` counter; false after the last value.
bool Next(std::vector<int32_t>& digits, int base) {
  for (int32_t& d : digits) {
    if (++d < base) return true;
    d = 0;
  }
  return false;
}

// True if some reassignment of the affected votes changes the answer.
bool SomeReassignmentChangesAnswer(const std::vector<int32_t>& votes,
                                   const std::vector<uint8_t>& affected,
                                   int classes, int answer) {
  std::vector<std::size_t> slots;
  for (std::size_t k = 0; k < votes.size(); ++k) {
    if (affected[k]) slots.push_back(k);
  }
  std::vector<int32_t> assignment(slots.size(), 0);
  std::vector<int32_t> v = votes;
  do {
    for (std::size_t i = 0; i < slots.size(); ++i) v[slots[i]] = assignment[i];
    if (Plurality(v, classes) != answer) return true;
  } while (Next(assignment, classes));
  return false;
}

TEST(CertifyHardVote, ExactAgainstBruteForce) {
  long cases = 0;
  long certified = 0;
  int failures = 0;
  for (int k = 1; k <= 7; ++k) {
    for (int classes = 1; classes <= 4; ++classes) {
      std::vector<int32_t> votes(k, 0);
      do {
        const int answer = Plurality(votes, classes);
        for (int mask = 0; mask < (1 << k); ++mask) {
          std::vector<uint8_t> affected(k);
          for (int i = 0; i < k; ++i) affected[i] = (mask >> i) & 1;
          const Certificate cert =
              CertifyHardVote(votes.data(), affected.data(), k, classes);
          const bool changes =
              SomeReassignmentChangesAnswer(votes, affected, classes, answer);
          ++cases;
          certified += cert.certified;
          bool ok = cert.answer == answer && cert.certified == !changes &&
                    cert.affected == __builtin_popcount(mask);
          if (classes > 1) {
            // The margin's sign agrees with the decision...
            ok = ok && (cert.margin > 0 ? cert.certified : true) &&
                 (cert.margin < 0 ? !cert.certified : true);
            // ...and when not certified, the rival is a witness: all
            // affected votes to the rival change the answer.
            if (!cert.certified) {
              std::vector<int32_t> v = votes;
              for (int i = 0; i < k; ++i) {
                if (affected[i]) v[i] = cert.rival;
              }
              ok = ok && Plurality(v, classes) != answer;
            }
          }
          if (!ok && ++failures <= 5) {
            ADD_FAILURE() << "k=" << k << " classes=" << classes
                          << " mask=" << mask << " answer=" << answer
                          << " certified=" << cert.certified
                          << " brute-force changes=" << changes
                          << " margin=" << cert.margin
                          << " rival=" << cert.rival;
          }
        }
      } while (Next(votes, classes));
    }
  }
  EXPECT_EQ(failures, 0);
  // Both outcomes occur, so the comparison is not vacuous.
  EXPECT_GT(certified, 0);
  EXPECT_LT(certified, cases);
  RecordProperty("cases", static_cast<int>(cases));
}

TEST(CertifyHardVote, MarginCountsVotesToSpare) {
  // 8 shards: 6 unaffected vote 2, one unaffected votes 0, one affected.
  const std::vector<int32_t> votes = {2, 2, 2, 2, 2, 2, 0, 1};
  const std::vector<uint8_t> affected = {0, 0, 0, 0, 0, 0, 0, 1};
  const Certificate c = CertifyHardVote(votes.data(), affected.data(), 8, 3);
  EXPECT_TRUE(c.certified);
  EXPECT_EQ(c.answer, 2);
  // Slack against label 0 is 6 - 1 - 1 = 4, against label 1 it is 5.
  EXPECT_EQ(c.margin, 4);
  EXPECT_EQ(c.rival, 0);
  EXPECT_EQ(c.affected, 1);
}

TEST(CertifyHardVote, TieBreakDecidesAtZeroMargin) {
  // u_1 = 2, u_0 = 1, a = 1: the rival 0 can tie and wins ties.
  std::vector<int32_t> votes = {1, 1, 0, 1};
  const std::vector<uint8_t> affected = {0, 0, 0, 1};
  Certificate c = CertifyHardVote(votes.data(), affected.data(), 4, 2);
  EXPECT_EQ(c.answer, 1);
  EXPECT_EQ(c.margin, 0);
  EXPECT_EQ(c.rival, 0);
  EXPECT_FALSE(c.certified);
  // Mirror: u_0 = 2, u_1 = 1, a = 1: a tie keeps 0.
  votes = {0, 0, 1, 0};
  c = CertifyHardVote(votes.data(), affected.data(), 4, 2);
  EXPECT_EQ(c.answer, 0);
  EXPECT_EQ(c.margin, 0);
  EXPECT_TRUE(c.certified);
}

TEST(CertifyHardVote, NothingAffectedIsAlwaysCertified) {
  const std::vector<int32_t> votes = {0, 1, 2, 3};
  const std::vector<uint8_t> none(4, 0);
  const Certificate c = CertifyHardVote(votes.data(), none.data(), 4, 4);
  EXPECT_TRUE(c.certified);
  EXPECT_EQ(c.answer, 0);
}

TEST(CertifyHardVote, ManyClassesUseTheHeap) {
  std::vector<int32_t> votes(10, 150);
  std::vector<uint8_t> affected(10, 0);
  affected[0] = 1;
  const Certificate c = CertifyHardVote(votes.data(), affected.data(), 10, 200);
  EXPECT_EQ(c.answer, 150);
  EXPECT_TRUE(c.certified);
  EXPECT_EQ(c.margin, 8);
}

TEST(PartialVote, PluralityOfUnaffectedOnly) {
  const std::vector<int32_t> votes = {3, 3, 3, 1, 1};
  const std::vector<uint8_t> affected = {1, 1, 1, 0, 0};
  EXPECT_EQ(PartialVote(votes.data(), affected.data(), 5, 4), 1);
  const std::vector<uint8_t> all(5, 1);
  EXPECT_EQ(PartialVote(votes.data(), all.data(), 5, 4), std::nullopt);
}

TEST(PartialVote, NeverDependsOnAffectedVotes) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 2000; ++trial) {
    const int k = 1 + static_cast<int>(rng() % 9);
    const int classes = 2 + static_cast<int>(rng() % 4);
    std::vector<int32_t> votes(k);
    std::vector<uint8_t> affected(k);
    for (int i = 0; i < k; ++i) {
      votes[i] = static_cast<int32_t>(rng() % classes);
      affected[i] = rng() % 2;
    }
    const std::optional<int> before =
        PartialVote(votes.data(), affected.data(), k, classes);
    for (int i = 0; i < k; ++i) {
      if (affected[i]) votes[i] = static_cast<int32_t>(rng() % classes);
    }
    EXPECT_EQ(PartialVote(votes.data(), affected.data(), k, classes), before);
  }
}

TEST(SoftPartialVote, SumsTheUnaffectedShardsProbabilities) {
  // Three classes; shards 0 and 1 affected. The unaffected shards 2-4 vote
  // 0, 0 and 2 (a plurality for 0), but their probabilities sum highest
  // for 2: 0.45 + 0.45 + 0.9 = 1.8 against 0.5 + 0.5 + 0.05 = 1.05.
  const std::vector<float> probs = {
      0.0f,  0.0f,  1.0f,   // shard 0 (affected)
      0.0f,  0.0f,  1.0f,   // shard 1 (affected)
      0.5f,  0.05f, 0.45f,  // shard 2
      0.5f,  0.05f, 0.45f,  // shard 3
      0.05f, 0.05f, 0.9f,   // shard 4
  };
  const std::vector<uint8_t> affected = {1, 1, 0, 0, 0};
  EXPECT_EQ(SoftPartialVote(probs.data(), affected.data(), 5, 3), 2);
  // The affected shards' rows are never read: with 2 and 4 affected as
  // well, shard 3 alone decides.
  const std::vector<uint8_t> most = {1, 1, 1, 0, 1};
  EXPECT_EQ(SoftPartialVote(probs.data(), most.data(), 5, 3), 0);
  const std::vector<uint8_t> all(5, 1);
  EXPECT_EQ(SoftPartialVote(probs.data(), all.data(), 5, 3), std::nullopt);
  // A tie goes to the lowest label.
  const std::vector<float> even = {0.5f, 0.5f};
  const std::vector<uint8_t> none = {0};
  EXPECT_EQ(SoftPartialVote(even.data(), none.data(), 1, 2), 0);
}

TEST(SoftPartialVote, NeverDependsOnAffectedProbabilities) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int trial = 0; trial < 2000; ++trial) {
    const int k = 1 + static_cast<int>(rng() % 9);
    const int classes = 2 + static_cast<int>(rng() % 4);
    std::vector<float> probs(k * classes);
    std::vector<uint8_t> affected(k);
    for (float& p : probs) p = u(rng);
    for (int i = 0; i < k; ++i) affected[i] = rng() % 2;
    const std::optional<int> before =
        SoftPartialVote(probs.data(), affected.data(), k, classes);
    for (int i = 0; i < k; ++i) {
      if (!affected[i]) continue;
      for (int c = 0; c < classes; ++c) probs[i * classes + c] = u(rng);
    }
    EXPECT_EQ(SoftPartialVote(probs.data(), affected.data(), k, classes),
              before);
  }
}

TEST(TieBreakVote, BreaksOnlyATieAmongTheUnaffectedShards) {
  // Shards 0-2 affected; 3-6 vote 1, 1, 2, 2: a tie between 1 and 2.
  const std::vector<int32_t> votes = {0, 0, 0, 1, 1, 2, 2};
  const std::vector<uint8_t> affected = {1, 1, 1, 0, 0, 0, 0};
  std::vector<uint8_t> counted(7, 9);
  auto vote = [&](const std::vector<int32_t>& breakers) {
    return TieBreakVote(votes.data(), affected.data(), breakers.data(), 7, 4,
                        counted.data());
  };
  // Two breakers for 2, one for 0 (outside the tie, not counted); the
  // unaffected shards' own breaker entries are ignored.
  EXPECT_EQ(vote({2, 0, 2, 1, 1, 1, 1}), 2);
  EXPECT_EQ(counted, (std::vector<uint8_t>{1, 0, 1, 0, 0, 0, 0}));
  // One each: the lowest tied label. None, or out of range: no answer.
  EXPECT_EQ(vote({2, 1, -1, 0, 0, 0, 0}), 1);
  EXPECT_EQ(vote({-1, 3, 4, 1, 1, 1, 1}), std::nullopt);
  EXPECT_EQ(counted, std::vector<uint8_t>(7, 0));
  // A leader among the unaffected shards: no tie to break.
  const std::vector<int32_t> led = {0, 0, 0, 1, 1, 1, 2};
  const std::vector<int32_t> breakers = {2, 2, 2, 0, 0, 0, 0};
  EXPECT_EQ(TieBreakVote(led.data(), affected.data(), breakers.data(), 7, 4,
                         counted.data()),
            std::nullopt);
  // Every shard affected: the breakers decide among all labels.
  const std::vector<uint8_t> all(7, 1);
  const std::vector<int32_t> alone = {3, 3, 0, -1, 0, 3, -1};
  EXPECT_EQ(TieBreakVote(votes.data(), all.data(), alone.data(), 7, 4,
                         counted.data()),
            3);
  EXPECT_EQ(counted, (std::vector<uint8_t>{1, 1, 1, 0, 1, 1, 0}));
}

TEST(TieBreakVote, AnswersOnlyATieWithATiedLabelOnSamples) {
  std::mt19937 rng(12);
  for (int trial = 0; trial < 2000; ++trial) {
    const int k = 1 + static_cast<int>(rng() % 9);
    const int classes = 2 + static_cast<int>(rng() % 4);
    std::vector<int32_t> votes(k), breakers(k);
    std::vector<uint8_t> affected(k), counted(k);
    for (int i = 0; i < k; ++i) {
      // Now and then a vote out of range (a failed model's), not counted.
      votes[i] = static_cast<int32_t>(rng() % (classes + 1)) -
                 static_cast<int32_t>(rng() % 8 == 0);
      breakers[i] = static_cast<int32_t>(rng() % (classes + 2)) - 1;
      affected[i] = rng() % 2;
    }
    const std::optional<int> broken =
        TieBreakVote(votes.data(), affected.data(), breakers.data(), k, classes,
                     counted.data());
    std::vector<int> unaffected(classes, 0);
    for (int i = 0; i < k; ++i) {
      if (!affected[i] && votes[i] >= 0 && votes[i] < classes) {
        ++unaffected[votes[i]];
      }
    }
    const int lead = *std::max_element(unaffected.begin(), unaffected.end());
    const bool tie = std::count(unaffected.begin(), unaffected.end(), lead) > 1;
    EXPECT_EQ(UnaffectedShardsTie(votes.data(), affected.data(), k, classes),
              tie);
    // The breakers that may count: affected shards voting a tied label.
    std::vector<int> breaks(classes, 0);
    for (int i = 0; i < k; ++i) {
      const bool counts = affected[i] && breakers[i] >= 0 &&
                          breakers[i] < classes &&
                          unaffected[breakers[i]] == lead;
      EXPECT_EQ(counted[i], counts && tie && broken ? 1 : 0) << i;
      if (counts) ++breaks[breakers[i]];
    }
    const int most = *std::max_element(breaks.begin(), breaks.end());
    // An answer exactly where a tie meets a breaker for a tied label: the
    // lowest tied label with the most breakers.
    ASSERT_EQ(broken.has_value(), tie && most > 0);
    if (!broken) continue;
    EXPECT_EQ(unaffected[*broken], lead);
    EXPECT_EQ(breaks[*broken], most);
    for (int c = 0; c < *broken; ++c) {
      EXPECT_FALSE(unaffected[c] == lead && breaks[c] == most) << c;
    }
  }
}

// Soft vote, sampled: a certified answer survives every sampled change of
// the affected models (random points and all vertices of the simplex); a
// clearly uncertified one is overturned by moving all affected mass to the
// rival.
int SoftAnswer(const std::vector<float>& probs, int k, int classes) {
  std::vector<double> sums(classes, 0.0);
  for (int i = 0; i < k; ++i) {
    for (int c = 0; c < classes; ++c) sums[c] += probs[i * classes + c];
  }
  int best = 0;
  for (int c = 1; c < classes; ++c) {
    if (sums[c] > sums[best]) best = c;
  }
  return best;
}

TEST(CertifySoftVote, SoundAndTightOnSamples) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  int certified = 0;
  int refuted = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int k = 1 + static_cast<int>(rng() % 7);
    const int classes = 2 + static_cast<int>(rng() % 3);
    std::vector<float> probs(k * classes);
    std::vector<uint8_t> affected(k);
    for (int i = 0; i < k; ++i) {
      // Peaked distributions, as trained models produce.
      float sum = 0;
      const int peak = static_cast<int>(rng() % classes);
      for (int c = 0; c < classes; ++c) {
        probs[i * classes + c] = uniform(rng) + (c == peak ? 4.0f : 0.0f);
        sum += probs[i * classes + c];
      }
      for (int c = 0; c < classes; ++c) probs[i * classes + c] /= sum;
      affected[i] = rng() % 3 == 0;
    }
    const SoftCertificate cert =
        CertifySoftVote(probs.data(), affected.data(), k, classes);
    ASSERT_EQ(cert.answer, SoftAnswer(probs, k, classes));
    std::vector<int> slots;
    for (int i = 0; i < k; ++i) {
      if (affected[i]) slots.push_back(i);
    }
    if (cert.certified) {
      ++certified;
      // Every vertex assignment, then random points.
      std::vector<int32_t> vertex(slots.size(), 0);
      std::vector<float> p = probs;
      do {
        for (std::size_t s = 0; s < slots.size(); ++s) {
          for (int c = 0; c < classes; ++c) {
            p[slots[s] * classes + c] = c == vertex[s] ? 1.0f : 0.0f;
          }
        }
        ASSERT_EQ(SoftAnswer(p, k, classes), cert.answer) << "trial " << trial;
      } while (Next(vertex, classes));
      for (int sample = 0; sample < 20; ++sample) {
        for (int slot : slots) {
          float sum = 0;
          for (int c = 0; c < classes; ++c) {
            p[slot * classes + c] = uniform(rng);
            sum += p[slot * classes + c];
          }
          for (int c = 0; c < classes; ++c) p[slot * classes + c] /= sum;
        }
        ASSERT_EQ(SoftAnswer(p, k, classes), cert.answer) << "trial " << trial;
      }
    } else if (cert.margin < -1e-3) {
      ++refuted;
      std::vector<float> p = probs;
      for (int slot : slots) {
        for (int c = 0; c < classes; ++c) {
          p[slot * classes + c] = c == cert.rival ? 1.0f : 0.0f;
        }
      }
      EXPECT_NE(SoftAnswer(p, k, classes), cert.answer) << "trial " << trial;
    }
  }
  EXPECT_GT(certified, 100);
  EXPECT_GT(refuted, 100);
}

TEST(CertifySoftVote, EpsilonGuardsRounding) {
  // Unaffected rows (0.8, 0.2), (0.6, 0.4), (0.6, 0.4): s_0 - s_1 is exactly
  // 1 in reals, and one model is affected, so s_0 - s_1 - a = 0 and the
  // affected model could tie the vote: not certified. In floats 0.8f - 0.2f
  // and 0.6f - 0.4f each round up, and the computed slack is 4.5e-8 > 0.
  const std::vector<float> probs = {0.8f, 0.2f, 0.6f, 0.4f,
                                    0.6f, 0.4f, 0.5f, 0.5f};
  const std::vector<uint8_t> affected = {0, 0, 0, 1};
  const SoftCertificate c =
      CertifySoftVote(probs.data(), affected.data(), 4, 2);
  EXPECT_EQ(c.answer, 0);
  EXPECT_GT(c.margin, 0.0);  // the rounding the epsilon is for
  EXPECT_LT(c.margin, 1e-6);
  EXPECT_FALSE(c.certified);
  // Without the epsilon the rounding would certify it.
  EXPECT_TRUE(CertifySoftVote(probs.data(), affected.data(), 4, 2,
                              /*epsilon=*/0.0)
                  .certified);
  // A real margin passes it.
  const std::vector<float> clear = {1.0f, 0.0f, 1.0f, 0.0f, 0.5f, 0.5f};
  const std::vector<uint8_t> one = {0, 0, 1};
  EXPECT_TRUE(CertifySoftVote(clear.data(), one.data(), 3, 2).certified);
}

TEST(CertifySoftVote, NothingAffectedIsCleanEvenOnATie) {
  const std::vector<float> probs = {0.5f, 0.5f, 0.5f, 0.5f};
  const std::vector<uint8_t> none = {0, 0};
  const SoftCertificate c = CertifySoftVote(probs.data(), none.data(), 2, 2);
  EXPECT_EQ(c.affected, 0);
  EXPECT_EQ(c.answer, 0);  // ties go to the smallest label
  EXPECT_TRUE(c.certified);
}

}  // namespace
}  // namespace eraser::certify
