// The certificate (DESIGN section 2): does an answer provably equal the
// answer of the fully unlearned ensemble? Pure functions, O(K + C), no I/O
// and no allocation for up to kMaxInlineClasses labels.
//
// Inputs for one inference: the K constituent votes (or probability vectors)
// and the affected set A: shards whose served model still contains a sample
// with a pending deletion, a = |A|. After unlearning, unaffected votes stay
// as they are and each affected vote may become anything.
#ifndef ERASER_CERTIFY_CERTIFICATE_H_
#define ERASER_CERTIFY_CERTIFICATE_H_

#include <cstddef>
#include <cstdint>
#include <optional>

namespace eraser::certify {

// Up to this many classes the functions work on the stack.
inline constexpr int kMaxInlineClasses = 64;

struct Certificate {
  // The plurality of all K current votes (ties to the smallest label).
  int answer = 0;
  // True iff no reassignment of the affected votes changes `answer`.
  bool certified = false;
  // min over c != answer of (u_answer - u_c - a): the votes to spare against
  // the strongest rival. Certified iff margin > 0, or margin == 0 and every
  // rival at slack 0 has a larger label than the answer (the tie-break keeps
  // the answer). With a single class there is no rival: certified,
  // margin 0.
  int margin = 0;
  // The label attaining the margin (on equal slack: the one that would win a
  // tie, i.e. a smaller label than the answer first, then the smallest);
  // -1 with a single class. When not certified, giving all affected votes to
  // the rival changes the answer.
  int rival = -1;
  // a, the number of affected shards.
  int affected = 0;
};

// Hard-vote certificate. votes[k] in [0, classes) for k < n; affected[k] is
// nonzero when shard k is in A. Votes out of range count for no label.
Certificate CertifyHardVote(const int32_t* votes, const uint8_t* affected,
                            std::size_t n, int classes);

// The epsilon of the soft-vote certificate: a margin must exceed it. Each
// probability is a float32 (relative error below 6e-8) and at most a few
// thousand are summed in double, so rounding stays far below 1e-4.
inline constexpr double kSoftVoteEpsilon = 1e-4;

struct SoftCertificate {
  int answer = 0;  // argmax of the summed probabilities of all K models
  bool certified = false;
  // min over c != answer of (s_answer - s_c - a), where s sums the
  // unaffected models' probabilities; certified iff margin > epsilon.
  double margin = 0;
  int rival = -1;
  int affected = 0;
};

// Soft-vote certificate. probs holds n rows of `classes` probabilities.
// Each affected model can move at most one unit of probability, so the
// answer is certified iff s_answer > s_c + a + epsilon for every c; with no
// model affected it is always certified (clean). epsilon absorbs float
// rounding: a row of float probabilities may sum to slightly more than 1.
SoftCertificate CertifySoftVote(const float* probs, const uint8_t* affected,
                                std::size_t n, int classes,
                                double epsilon = kSoftVoteEpsilon);

// The partial-ensemble answer: the plurality of the unaffected shards only,
// which depends on no pending deletion. nullopt when every shard is
// affected.
std::optional<int> PartialVote(const int32_t* votes, const uint8_t* affected,
                               std::size_t n, int classes);

// The rule `soft`'s answer: the label with the largest sum of the
// unaffected shards' probabilities (probs holds n rows of `classes`, shard
// k's at probs[k * classes]), the lowest on a tie; like PartialVote, it
// depends on no pending deletion. nullopt when every shard is affected.
std::optional<int> SoftPartialVote(const float* probs, const uint8_t* affected,
                                   std::size_t n, int classes);

// Whether the unaffected shards' votes tie between several leading labels
// (every label when none of them votes): where TieBreakVote may answer.
bool UnaffectedShardsTie(const int32_t* votes, const uint8_t* affected,
                         std::size_t n, int classes);

// The tie break of the rule `prefix`: where the unaffected shards' votes
// tie between several leading labels (every label when no unaffected shard
// votes), the tied label most `breakers` vote for, the lowest on a
// remaining tie. breakers[k] is a vote that holds no pending deletion for
// an affected shard k (its clean prefix's), negative where there is none.
// Sets counted[k] (n entries) for each breaker that voted for a tied label.
// nullopt, with nothing counted, when the unaffected shards lead with one
// label or no breaker votes for a tied one: PartialVote's answer stands.
std::optional<int> TieBreakVote(const int32_t* votes, const uint8_t* affected,
                                const int32_t* breakers, std::size_t n,
                                int classes, uint8_t* counted);

}  // namespace eraser::certify

#endif  // ERASER_CERTIFY_CERTIFICATE_H_
