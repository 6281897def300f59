// Ensemble votes: pure functions, no I/O.
#ifndef ERASER_CERTIFY_VOTE_H_
#define ERASER_CERTIFY_VOTE_H_

#include <cstddef>
#include <cstdint>

namespace eraser::certify {

// The plurality label of k votes, each in [0, classes); ties go to the
// smallest label. Votes outside the range are ignored. With no valid vote
// the answer is 0.
int PluralityVote(const int32_t* votes, std::size_t k, int classes);

// The soft-vote label: argmax over c of the sum of probs[i * classes + c]
// for i in [0, k); ties go to the smallest label.
int SoftVote(const float* probs, std::size_t k, int classes);

}  // namespace eraser::certify

#endif  // ERASER_CERTIFY_VOTE_H_
