#include "eraser/unlearning/partition.h"

#include <numeric>

#include "eraser/common/random.h"

namespace eraser::unlearning {

Status CheckPartitionFits(std::size_t n, uint32_t shards, uint32_t slices) {
  if (n < static_cast<std::size_t>(shards) * slices) {
    return InvalidArgumentError("partition: " + std::to_string(n) +
                                " samples cannot fill " +
                                std::to_string(shards) + " shards of " +
                                std::to_string(slices) + " slices");
  }
  return OkStatus();
}

StatusOr<std::vector<Placement>> MakePartition(
    std::size_t n, const PartitionOptions& options) {
  if (options.shards == 0 || options.slices == 0) {
    return InvalidArgumentError("partition: shards and slices must be > 0");
  }
  if (options.samples_per_owner == 0) {
    return InvalidArgumentError("partition: samples_per_owner must be > 0");
  }
  RETURN_IF_ERROR(CheckPartitionFits(n, options.shards, options.slices));
  // A random permutation deals samples to shards round-robin, so shard sizes
  // differ by at most one. Within a shard, the k-th dealt sample goes to
  // slice floor(k * R / size): slices differ by at most one too.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  Rng(DeriveSeed(options.seed, {0x5a4d})).Shuffle(order.begin(), order.end());
  const std::size_t k = options.shards;
  std::vector<Placement> placement(n);
  for (std::size_t pos = 0; pos < n; ++pos) {
    const std::size_t shard = pos % k;
    const std::size_t shard_size = n / k + (shard < n % k ? 1 : 0);
    const std::size_t index_in_shard = pos / k;
    Placement& p = placement[order[pos]];
    p.shard = ShardId(static_cast<uint32_t>(shard));
    p.slice =
        static_cast<uint32_t>(index_in_shard * options.slices / shard_size);
  }
  // Owners: an independent permutation cut into runs of samples_per_owner.
  if (options.samples_per_owner == 1) {
    for (std::size_t i = 0; i < n; ++i) placement[i].owner = OwnerId(i);
  } else {
    std::iota(order.begin(), order.end(), 0u);
    Rng(DeriveSeed(options.seed, {0x0e4e})).Shuffle(order.begin(), order.end());
    for (std::size_t pos = 0; pos < n; ++pos) {
      placement[order[pos]].owner = OwnerId(pos / options.samples_per_owner);
    }
  }
  return placement;
}

}  // namespace eraser::unlearning
