// The SISA partition: which shard and slice each training sample belongs to,
// and which data owner it belongs to. Fixed by a seed; stored with the data
// directory and never changed for its life.
#ifndef ERASER_UNLEARNING_PARTITION_H_
#define ERASER_UNLEARNING_PARTITION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eraser/common/ids.h"
#include "eraser/common/statusor.h"

namespace eraser::unlearning {

struct PartitionOptions {
  uint32_t shards = 8;  // K
  uint32_t slices = 4;  // R, per shard
  // Samples per data owner. 1 (default): every sample is its own owner, with
  // owner id = sample id. M > 1: owners of M samples each (the last may have
  // fewer), drawn at random, so an owner's samples spread over shards.
  uint32_t samples_per_owner = 1;
  uint64_t seed = 1;
};

struct Placement {
  ShardId shard;
  uint32_t slice = 0;
  OwnerId owner;
};

// The placement of samples 0..n-1 (index = sample id). Shards differ in size
// by at most one sample, and so do the slices of a shard.
// kInvalidArgument for zero shards or slices, samples_per_owner == 0, or
// fewer samples than shards * slices.
StatusOr<std::vector<Placement>> MakePartition(std::size_t n,
                                               const PartitionOptions& options);
// kInvalidArgument, as MakePartition, for n samples that cannot fill
// `shards` shards of `slices` slices (checked before anything is written).
Status CheckPartitionFits(std::size_t n, uint32_t shards, uint32_t slices);

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_PARTITION_H_
