// Checkpoints: one model blob per (shard, slice).
#include <rocksdb/write_batch.h>

#include "rocks_store.h"

namespace eraser::storage::internal {

Status RocksStore::PutCheckpoint(const Checkpoint& checkpoint) {
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(
      FromRocks(batch.Put(cf(kCheckpoints),
                          CheckpointKey(checkpoint.shard, checkpoint.slice),
                          EncodeCheckpoint(checkpoint)),
                "put checkpoint"));
  return Write(&batch, /*sync=*/false,
               "put " + CheckpointName(checkpoint.shard, checkpoint.slice));
}

StatusOr<Checkpoint> RocksStore::GetCheckpoint(ShardId shard, uint32_t slice) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  return GetCheckpointLocked(shard, slice);
}

StatusOr<Checkpoint> RocksStore::GetCheckpointLocked(ShardId shard,
                                                     uint32_t slice) {
  ASSIGN_OR_RETURN(std::string value,
                   Get(kCheckpoints, CheckpointKey(shard, slice),
                       CheckpointName(shard, slice)));
  return DecodeCheckpoint(shard, slice, value);
}

Status RocksStore::DeleteCheckpoints(ShardId shard, uint32_t first_slice) {
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  const std::string begin = CheckpointKey(shard, first_slice);
  const std::string end = ShardPrefix(ShardId(shard.value() + 1));
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(FromRocks(batch.DeleteRange(cf(kCheckpoints), begin, end),
                            "delete checkpoints"));
  return Write(&batch, /*sync=*/false,
               "delete checkpoints of shard " + std::to_string(shard.value()));
}

}  // namespace eraser::storage::internal
