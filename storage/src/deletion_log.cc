// Deletion log: synced appends, pending listing, state changes.
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include "coding.h"
#include "rocks_store.h"

namespace eraser::storage::internal {
namespace {

// The index of requests by target, in the meta family (which old builds
// ignore): target -> the newest sequence number naming it.
constexpr char kTargetPrefix[] = "deletion/target/";

std::string TargetKey(const DeletionTarget& target) {
  std::string key = kTargetPrefix;
  PutU8(&key, static_cast<uint8_t>(target.kind));
  PutU64(&key, target.id);
  return key;
}

}  // namespace

StatusOr<DeletionSeq> RocksStore::AppendDeletion(
    const DeletionTarget& target, const std::vector<SampleLocation>& samples,
    TimePoint arrival) {
  DeletionRecord record = NewDeletion(target, samples, arrival);
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  // The lock covers allocation and the synced write together, so numbers are
  // issued in the order they become durable and none is skipped or reused.
  // Its cost is one fsync per deletion, which group commit cannot hide here;
  // deletion rates are orders of magnitude below inference rates.
  MutexLock lock(&append_mu_);
  record.seq = DeletionSeq(last_seq_ + 1);
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(
      FromRocks(batch.Put(cf(kDeletions), U64Key(record.seq.value()),
                          EncodeDeletion(record)),
                "append deletion"));
  RETURN_IF_ERROR(FromRocks(
      batch.Put(cf(kMeta), TargetKey(target), U64Key(record.seq.value())),
      "index deletion"));
  RETURN_IF_ERROR(
      Write(&batch, /*sync=*/true, "append deletion " + target.ToString()));
  last_seq_ = record.seq.value();
  return record.seq;
}

StatusOr<std::vector<DeletionRecord>> RocksStore::PendingDeletions() {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  std::vector<DeletionRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(kDeletions)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Decoder key(it->key().ToStringView());
    const DeletionSeq seq(key.U64());
    if (!key.Finish()) return DataLossError("corrupt deletion log key");
    ASSIGN_OR_RETURN(DeletionRecord record,
                     DecodeDeletion(seq, it->value().ToStringView()));
    if (record.state == DeletionState::kPending) {
      out.push_back(std::move(record));
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan deletion log"));
  return out;
}

StatusOr<std::vector<DeletionRecord>> RocksStore::DeletionsAfter(
    DeletionSeq seq) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  std::vector<DeletionRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(kDeletions)));
  for (it->Seek(U64Key(seq.value() + 1)); it->Valid(); it->Next()) {
    Decoder key(it->key().ToStringView());
    const DeletionSeq s(key.U64());
    if (!key.Finish()) return DataLossError("corrupt deletion log key");
    ASSIGN_OR_RETURN(DeletionRecord record,
                     DecodeDeletion(s, it->value().ToStringView()));
    out.push_back(std::move(record));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan deletion log"));
  return out;
}

DeletionSeq RocksStore::LastDeletionSeq() {
  MutexLock lock(&append_mu_);
  return DeletionSeq(last_seq_);
}

StatusOr<DeletionRecord> RocksStore::GetDeletion(DeletionSeq seq) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  return GetDeletionLocked(seq);
}

StatusOr<DeletionRecord> RocksStore::GetDeletionLocked(DeletionSeq seq) {
  ASSIGN_OR_RETURN(std::string value,
                   Get(kDeletions, U64Key(seq.value()),
                       "deletion " + std::to_string(seq.value())));
  return DecodeDeletion(seq, value);
}

StatusOr<DeletionSeq> RocksStore::FindDeletion(const DeletionTarget& target) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  ASSIGN_OR_RETURN(std::string value, Get(kMeta, TargetKey(target),
                                          "deletion of " + target.ToString()));
  Decoder d(value);
  const DeletionSeq seq(d.U64());
  if (!d.Finish()) return DataLossError("corrupt deletion index entry");
  return seq;
}

Status RocksStore::AddDeletionUpdates(
    const std::vector<DeletionSeq>& applied, TimePoint applied_at,
    const std::vector<ApplyBatch::Exclusion>& excluded,
    rocksdb::WriteBatch* batch) {
  ASSIGN_OR_RETURN(
      auto records,
      UpdateDeletions(applied, applied_at, excluded, [this](DeletionSeq seq) {
        db_mu_.AssertReaderHeld();
        return GetDeletionLocked(seq);
      }));
  for (const auto& [seq, r] : records) {
    RETURN_IF_ERROR(FromRocks(
        batch->Put(cf(kDeletions), U64Key(seq.value()), EncodeDeletion(r)),
        "update deletion " + std::to_string(seq.value())));
  }
  return OkStatus();
}

Status RocksStore::MarkApplied(const std::vector<DeletionSeq>& seqs,
                               TimePoint applied_at) {
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  MutexLock lock(&apply_mu_);
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(AddDeletionUpdates(seqs, applied_at, {}, &batch));
  return Write(&batch, /*sync=*/true, "mark deletions applied");
}

Status RocksStore::RecordExclusions(
    const std::vector<ApplyBatch::Exclusion>& excluded, TimePoint applied_at) {
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  MutexLock lock(&apply_mu_);
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(AddDeletionUpdates({}, applied_at, excluded, &batch));
  return Write(&batch, /*sync=*/true, "record exclusions");
}

}  // namespace eraser::storage::internal
