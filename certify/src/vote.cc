#include "eraser/certify/vote.h"

#include <vector>

namespace eraser::certify {

int PluralityVote(const int32_t* votes, std::size_t k, int classes) {
  std::vector<int> counts(static_cast<std::size_t>(classes), 0);
  for (std::size_t i = 0; i < k; ++i) {
    if (votes[i] >= 0 && votes[i] < classes) ++counts[votes[i]];
  }
  int best = 0;
  for (int c = 1; c < classes; ++c) {
    if (counts[c] > counts[best]) best = c;
  }
  return best;
}

int SoftVote(const float* probs, std::size_t k, int classes) {
  std::vector<double> sums(static_cast<std::size_t>(classes), 0.0);
  for (std::size_t i = 0; i < k; ++i) {
    for (int c = 0; c < classes; ++c) {
      sums[c] += probs[i * static_cast<std::size_t>(classes) + c];
    }
  }
  int best = 0;
  for (int c = 1; c < classes; ++c) {
    if (sums[c] > sums[best]) best = c;
  }
  return best;
}

}  // namespace eraser::certify
