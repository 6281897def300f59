#include "eraser/certify/tally.h"

#include <algorithm>

#include "counts.h"

namespace eraser::certify {

VoteTally::VoteTally(const int32_t* votes, const uint8_t* affected,
                     std::size_t n, int classes)
    : classes_(classes),
      votes_(votes, votes + n),
      affected_(n),
      all_counts_(static_cast<std::size_t>(classes), 0),
      unaffected_counts_(static_cast<std::size_t>(classes), 0) {
  for (std::size_t k = 0; k < n; ++k) {
    affected_[k] = affected[k] != 0 ? 1 : 0;
    affected_count_ += affected_[k];
    const int32_t v = votes_[k];
    if (v < 0 || v >= classes_) continue;
    ++all_counts_[v];
    if (affected_[k] == 0) ++unaffected_counts_[v];
  }
}

void VoteTally::Resolve(std::size_t shard, int32_t vote) {
  const int32_t old = votes_[shard];
  if (old >= 0 && old < classes_) {
    --all_counts_[old];
    if (affected_[shard] == 0) --unaffected_counts_[old];
  }
  if (affected_[shard] != 0) {
    affected_[shard] = 0;
    --affected_count_;
  }
  votes_[shard] = vote;
  if (vote >= 0 && vote < classes_) {
    ++all_counts_[vote];
    ++unaffected_counts_[vote];
  }
}

void VoteTally::MarkAffected(std::size_t shard) {
  if (affected_[shard] != 0) return;
  affected_[shard] = 1;
  ++affected_count_;
  const int32_t v = votes_[shard];
  if (v >= 0 && v < classes_) --unaffected_counts_[v];
}

Certificate VoteTally::Certify() const {
  return internal::CertifyCounts(all_counts_.data(), unaffected_counts_.data(),
                                 affected_count_, classes_);
}

std::optional<int> VoteTally::Partial() const {
  if (affected_count_ == static_cast<int>(votes_.size())) return std::nullopt;
  return internal::Argmax(unaffected_counts_.data(), classes_);
}

int VoteTally::MinShardsToResolve() const {
  const int y = internal::Argmax(all_counts_.data(), classes_);
  int needed = 0;
  for (int c = 0; c < classes_; ++c) {
    if (c == y) continue;
    // Resolving m shards that vote y raises the slack against c by 2m; it
    // must reach 1 if c would win a tie, else 0.
    const int slack =
        unaffected_counts_[y] - unaffected_counts_[c] - affected_count_;
    const int target = c < y ? 1 : 0;
    if (slack < target) needed = std::max(needed, (target - slack + 1) / 2);
  }
  return std::min(needed, affected_count_);
}

}  // namespace eraser::certify
