// Applying unlearning: one atomic batch, then compaction of what it touched.
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "rocks_store.h"

namespace eraser::storage::internal {

Status RocksStore::Apply(const ApplyBatch& batch, bool* committed) {
  if (committed != nullptr) *committed = false;
  std::vector<ShardId> sample_shards;
  std::vector<ShardId> checkpoint_shards;
  {
    MutexLock lock(&apply_mu_);
    rocksdb::WriteBatch writes;
    for (const Checkpoint& c : batch.checkpoints) {
      RETURN_IF_ERROR(FromRocks(
          writes.Put(cf(kCheckpoints), CheckpointKey(c.shard, c.slice),
                     EncodeCheckpoint(c)),
          "apply: checkpoint"));
      checkpoint_shards.push_back(c.shard);
    }
    ASSIGN_OR_RETURN(sample_shards, AddErase(batch.erase, &writes));
    RETURN_IF_ERROR(AddDeletionUpdates(batch.applied, batch.applied_at,
                                       batch.excluded, &writes));
    rocksdb::WriteOptions synced;
    synced.sync = true;
    RETURN_IF_ERROR(FromRocks(db_->Write(synced, &writes), "apply"));
    if (committed != nullptr) *committed = true;
  }
  std::sort(checkpoint_shards.begin(), checkpoint_shards.end());
  checkpoint_shards.erase(
      std::unique(checkpoint_shards.begin(), checkpoint_shards.end()),
      checkpoint_shards.end());
  RETURN_IF_ERROR(FlushAll());
  RETURN_IF_ERROR(CompactShards(kSamples, sample_shards));
  return CompactShards(kCheckpoints, checkpoint_shards);
}

Status RocksStore::FlushAll() {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  return FromRocks(db_->Flush(flush, handles_), "flush");
}

// Rewrites every table file overlapping the shards' key ranges, down to the
// bottommost level, so deleted values are dropped rather than shadowed by a
// deletion marker. Obsolete files are removed once no iterator pins them.
Status RocksStore::CompactShards(Family f, const std::vector<ShardId>& shards) {
  if (shards.empty()) return OkStatus();
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForce;
  for (ShardId shard : shards) {
    const std::string begin = ShardPrefix(shard);
    const std::string end = ShardPrefix(ShardId(shard.value() + 1));
    rocksdb::Slice b(begin);
    rocksdb::Slice e(end);
    RETURN_IF_ERROR(
        FromRocks(db_->CompactRange(options, cf(f), &b, &e),
                  "compact shard " + std::to_string(shard.value())));
  }
  return OkStatus();
}

}  // namespace eraser::storage::internal
