// VoteTally: a hard-vote certificate kept up to date as shards change, so a
// parked request is re-certified in O(C) when one affected shard's retrained
// model is swapped in, without re-running the other shards.
#ifndef ERASER_CERTIFY_TALLY_H_
#define ERASER_CERTIFY_TALLY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "eraser/certify/certificate.h"

namespace eraser::certify {

class VoteTally {
 public:
  // The current votes of all shards and which are affected.
  VoteTally(const int32_t* votes, const uint8_t* affected, std::size_t n,
            int classes);

  // Shard k's model was replaced by one without pending deletions: its vote
  // becomes `vote` and it leaves the affected set.
  void Resolve(std::size_t shard, int32_t vote);
  // Shard k gained a pending deletion: it joins the affected set (its vote,
  // from the model that still holds the data, is unchanged).
  void MarkAffected(std::size_t shard);

  // Same result as CertifyHardVote on the current votes and affected set.
  Certificate Certify() const;
  // Same result as PartialVote on the current votes and affected set.
  std::optional<int> Partial() const;
  // The fewest affected shards that must be resolved before the current
  // answer could be certified (optimistically, if each resolved shard votes
  // for it). 0 when certified now; at most affected().
  int MinShardsToResolve() const;

  int affected() const { return affected_count_; }
  bool is_affected(std::size_t shard) const { return affected_[shard] != 0; }
  const std::vector<int32_t>& votes() const { return votes_; }
  const std::vector<uint8_t>& affected_flags() const { return affected_; }

 private:
  int classes_;
  std::vector<int32_t> votes_;
  std::vector<uint8_t> affected_;
  std::vector<int> all_counts_;         // per label, over all shards
  std::vector<int> unaffected_counts_;  // per label, over unaffected shards
  int affected_count_ = 0;
};

}  // namespace eraser::certify

#endif  // ERASER_CERTIFY_TALLY_H_
