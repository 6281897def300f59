// Applying unlearning: one atomic batch, then compaction of what it touched.
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "coding.h"
#include "eraser/common/sync_point.h"
#include "rocks_store.h"

namespace eraser::storage::internal {
namespace {

// meta keys "erasure/owed/" + family (u8) + shard (u32): a shard's key range
// of the family still holds bytes that an applied deletion erased (for the
// meta family, shard 0 stands for the whole family: EraseInMeta).
constexpr char kOwedPrefix[] = "erasure/owed/";

std::string OwedKey(uint8_t family, ShardId shard) {
  std::string key = kOwedPrefix;
  PutU8(&key, family);
  PutU32(&key, shard.value());
  return key;
}

}  // namespace

Status RocksStore::AddOwed(Family f, const std::vector<ShardId>& shards,
                           rocksdb::WriteBatch* batch) {
  for (ShardId shard : shards) {
    RETURN_IF_ERROR(FromRocks(
        batch->Put(cf(kMeta), OwedKey(static_cast<uint8_t>(f), shard), ""),
        "apply: owed erasure"));
  }
  return OkStatus();
}

Status RocksStore::Apply(const ApplyBatch& batch, bool* committed) {
  if (committed != nullptr) *committed = false;
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  // Not while an erasure runs: it clears the owed keys it read, which this
  // commit would rewrite (same names) for bytes it has not compacted.
  MutexLock erasure(&erasure_mu_);
  std::vector<ShardId> sample_shards;
  std::vector<ShardId> checkpoint_shards;
  {
    MutexLock lock(&apply_mu_);
    rocksdb::WriteBatch writes;
    for (const Checkpoint& c : batch.checkpoints) {
      RETURN_IF_ERROR(CheckNewer(c, [this](ShardId shard, uint32_t slice) {
        db_mu_.AssertReaderHeld();
        return GetCheckpointLocked(shard, slice);
      }));
      RETURN_IF_ERROR(FromRocks(
          writes.Put(cf(kCheckpoints), CheckpointKey(c.shard, c.slice),
                     EncodeCheckpoint(c)),
          "apply: checkpoint"));
      checkpoint_shards.push_back(c.shard);
    }
    ASSIGN_OR_RETURN(sample_shards, AddErase(batch.erase, &writes));
    RETURN_IF_ERROR(AddDeletionUpdates(batch.applied, batch.applied_at,
                                       batch.excluded, &writes));
    std::sort(checkpoint_shards.begin(), checkpoint_shards.end());
    checkpoint_shards.erase(
        std::unique(checkpoint_shards.begin(), checkpoint_shards.end()),
        checkpoint_shards.end());
    // The erasure it owes commits with it: if the process dies before the
    // compaction below, the next open finishes it.
    RETURN_IF_ERROR(AddOwed(kSamples, sample_shards, &writes));
    RETURN_IF_ERROR(AddOwed(kCheckpoints, checkpoint_shards, &writes));
    RETURN_IF_ERROR(Write(&writes, /*sync=*/true, "apply"));
    if (committed != nullptr) *committed = true;
  }
  ERASER_SYNC_POINT("RocksStore::Apply:Committed");
  return FinishErasureLocked();
}

Status RocksStore::EraseInMeta(
    const std::string& key,
    const std::function<StatusOr<std::string>(const std::string&)>& edit) {
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  // One edit at a time: each reads what the last one wrote.
  MutexLock erasure(&erasure_mu_);
  ASSIGN_OR_RETURN(const std::string current, Get(kMeta, key, "meta " + key));
  ASSIGN_OR_RETURN(const std::string edited, edit(current));
  // Nothing to change: an earlier call may have written it and failed to
  // compact (a full disk), and the caller's retry must not succeed before
  // the old value has left the files.
  if (edited == current) return FinishErasureLocked();
  rocksdb::WriteBatch writes;
  RETURN_IF_ERROR(
      FromRocks(writes.Put(cf(kMeta), key, edited), "erase in meta " + key));
  // The old value stays in the table files until the compaction: owed with
  // the write, as an apply's erasure is.
  RETURN_IF_ERROR(AddOwed(kMeta, {ShardId(0)}, &writes));
  RETURN_IF_ERROR(Write(&writes, /*sync=*/true, "erase in meta " + key));
  ERASER_SYNC_POINT("RocksStore::EraseInMeta:Committed");
  return FinishErasureLocked();
}

Status RocksStore::FinishErasure() {
  DbLock db(this, DbLock::kMaybeWrite);
  RETURN_IF_ERROR(db.status());
  MutexLock erasure(&erasure_mu_);
  return FinishErasureLocked();
}

Status RocksStore::FinishErasureLocked() {
  std::vector<std::string> keys;
  std::vector<ShardId> by_family[kNumFamilies];
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(kMeta)));
    for (it->Seek(kOwedPrefix);
         it->Valid() && it->key().starts_with(kOwedPrefix); it->Next()) {
      Decoder d(it->key().ToStringView().substr(sizeof(kOwedPrefix) - 1));
      const uint8_t family = d.U8();
      const uint32_t shard = d.U32();
      if (!d.Finish() || family >= kNumFamilies) {
        return DataLossError("corrupt owed-erasure key");
      }
      by_family[family].push_back(ShardId(shard));
      keys.push_back(it->key().ToString());
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "read owed erasure"));
  }
  if (keys.empty()) return OkStatus();
  RETURN_IF_ERROR(Writable());
  RETURN_IF_ERROR(FlushAll());
  for (int f = 0; f < kNumFamilies; ++f) {
    RETURN_IF_ERROR(CompactShards(static_cast<Family>(f), by_family[f]));
  }
  ERASER_SYNC_POINT("RocksStore::FinishErasure:Compacted");
  // Paid: the debt is cleared (unsynced: a debt found again after a crash
  // only costs another compaction).
  rocksdb::WriteBatch clear;
  for (const std::string& key : keys) {
    RETURN_IF_ERROR(FromRocks(clear.Delete(cf(kMeta), key), "clear owed"));
  }
  return Write(&clear, /*sync=*/false, "clear owed erasure");
}

namespace {

// One process owns a RocksDB store: nobody else can retrain a shard.
class LocalClaim final : public Store::ShardClaim {};

}  // namespace

StatusOr<std::unique_ptr<Store::ShardClaim>> RocksStore::TryClaimShard(
    ShardId) {
  return std::unique_ptr<ShardClaim>(std::make_unique<LocalClaim>());
}

bool RocksStore::ErasureOwed() {
  DbLock db(this, DbLock::kRead);
  // Without a database, nothing says the debt was paid.
  if (!db.status().ok()) return true;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(kMeta)));
  it->Seek(kOwedPrefix);
  return it->Valid() && it->key().starts_with(kOwedPrefix);
}

Status RocksStore::FlushAll() {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  const rocksdb::Status s = db_->Flush(flush, handles_);
  return s.ok() ? OkStatus() : Failed(s, "flush");
}

// Rewrites every table file overlapping the shards' key ranges, down to the
// bottommost level, so deleted values are dropped rather than shadowed by a
// deletion marker. Obsolete files are removed once no iterator pins them.
Status RocksStore::CompactShards(Family f, const std::vector<ShardId>& shards) {
  if (shards.empty()) return OkStatus();
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForce;
  if (f == kMeta) {
    // Not sharded: the whole family (small: markers, the test split).
    const rocksdb::Status s =
        db_->CompactRange(options, cf(f), nullptr, nullptr);
    return s.ok() ? OkStatus()
                  : Failed(s, "compact the meta family", /*resumable=*/true);
  }
  for (ShardId shard : shards) {
    const std::string begin = ShardPrefix(shard);
    const std::string end = ShardPrefix(ShardId(shard.value() + 1));
    rocksdb::Slice b(begin);
    rocksdb::Slice e(end);
    const rocksdb::Status s = db_->CompactRange(options, cf(f), &b, &e);
    if (!s.ok()) {
      // The memtables were flushed first (FlushAll): only the compaction
      // failed, which Resume() recovers from. (A flush inside CompactRange
      // that failed is reported to GateListener, which asks for a reopen.)
      return Failed(s, "compact shard " + std::to_string(shard.value()),
                    /*resumable=*/true);
    }
  }
  return OkStatus();
}

}  // namespace eraser::storage::internal
