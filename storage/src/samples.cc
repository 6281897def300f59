// Sample store: ingest, ordered shard scans, index and owner lookups.
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <optional>

#include "coding.h"
#include "rocks_store.h"

namespace eraser::storage::internal {
namespace {

constexpr uint8_t kSampleVersion = 1;
constexpr std::size_t kIngestBatch = 4096;

std::string EncodeSample(const SampleView& s) {
  std::string v;
  v.reserve(1 + 4 + 8 + s.feature_size);
  PutU8(&v, kSampleVersion);
  PutU32(&v, s.label);
  PutU64(&v, s.owner.value());
  v.append(reinterpret_cast<const char*>(s.features), s.feature_size);
  return v;
}

}  // namespace

Status RocksStore::IngestSamples(const std::vector<SampleView>& samples) {
  DbLock db(this, DbLock::kWrite);
  RETURN_IF_ERROR(db.status());
  // Validate everything before writing anything.
  ASSIGN_OR_RETURN(
      std::vector<bool> skip,
      PlanIngest(
          samples,
          [this](SampleId id) -> StatusOr<std::optional<SampleLocation>> {
            db_mu_.AssertReaderHeld();
            StatusOr<SampleLocation> stored = LookupSampleLocked(id);
            if (stored.ok()) return std::optional(*stored);
            if (stored.status().code() == StatusCode::kNotFound) {
              return std::optional<SampleLocation>();
            }
            return stored.status();
          }));

  for (std::size_t begin = 0; begin < samples.size(); begin += kIngestBatch) {
    const std::size_t end = std::min(samples.size(), begin + kIngestBatch);
    rocksdb::WriteBatch batch;
    for (std::size_t i = begin; i < end; ++i) {
      if (skip[i]) continue;
      const SampleView& s = samples[i];
      const SampleLocation location{s.id, s.shard, s.slice, s.owner, false};
      RETURN_IF_ERROR(
          FromRocks(batch.Put(cf(kSamples), SampleKey(s.shard, s.slice, s.id),
                              EncodeSample(s)),
                    "ingest"));
      RETURN_IF_ERROR(
          FromRocks(batch.Put(cf(kSampleIndex), U64Key(s.id.value()),
                              EncodeLocation(location)),
                    "ingest"));
      RETURN_IF_ERROR(FromRocks(
          batch.Put(cf(kOwners), OwnerKey(s.owner, s.id), rocksdb::Slice()),
          "ingest"));
    }
    RETURN_IF_ERROR(Write(&batch, /*sync=*/false, "ingest"));
  }
  // Erasure later only has table files to rewrite.
  return FlushAll();
}

Status RocksStore::ScanShard(
    ShardId shard, uint32_t first_slice, uint32_t end_slice,
    const std::function<Status(const SampleView&)>& fn) {
  if (first_slice >= end_slice) return OkStatus();
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  const std::string begin = SampleKey(shard, first_slice, SampleId(0));
  const std::string end = SampleKey(shard, end_slice, SampleId(0));
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kSamples)));
  for (it->Seek(begin); it->Valid(); it->Next()) {
    Decoder key(it->key().ToStringView());
    SampleView view;
    view.shard = ShardId(key.U32());
    view.slice = key.U32();
    view.id = SampleId(key.U64());
    Decoder value(it->value().ToStringView());
    const uint8_t version = value.U8();
    view.label = value.U32();
    view.owner = OwnerId(value.U64());
    const std::string_view features = value.Rest();
    if (!key.Finish() || !value.Finish() || version != kSampleVersion) {
      return DataLossError("corrupt sample record in shard " +
                           std::to_string(shard.value()));
    }
    view.features = reinterpret_cast<const uint8_t*>(features.data());
    view.feature_size = features.size();
    RETURN_IF_ERROR(fn(view));
  }
  return FromRocks(it->status(), "scan shard " + std::to_string(shard.value()));
}

StatusOr<SampleLocation> RocksStore::LookupSample(SampleId id) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  return LookupSampleLocked(id);
}

StatusOr<SampleLocation> RocksStore::LookupSampleLocked(SampleId id) {
  ASSIGN_OR_RETURN(std::string value,
                   Get(kSampleIndex, U64Key(id.value()), SampleName(id)));
  return DecodeLocation(id, value);
}

StatusOr<std::vector<SampleLocation>> RocksStore::OwnerSamples(OwnerId owner) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  const std::string prefix = U64Key(owner.value());
  std::vector<SampleId> ids;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(kOwners)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      Decoder key(it->key().ToStringView());
      key.U64();
      ids.emplace_back(key.U64());
      if (!key.Finish()) return DataLossError("corrupt owner index entry");
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scan owner index"));
  }
  if (ids.empty()) {
    return NotFoundError("owner " + std::to_string(owner.value()) +
                         " owns no samples");
  }
  std::vector<SampleLocation> out;
  out.reserve(ids.size());
  for (SampleId id : ids) {
    ASSIGN_OR_RETURN(SampleLocation location, LookupSampleLocked(id));
    out.push_back(location);
  }
  return out;
}

StatusOr<uint64_t> RocksStore::CountSamples(ShardId shard) {
  DbLock db(this, DbLock::kRead);
  RETURN_IF_ERROR(db.status());
  const std::string end = ShardPrefix(ShardId(shard.value() + 1));
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(kSamples)));
  uint64_t count = 0;
  for (it->Seek(ShardPrefix(shard)); it->Valid(); it->Next()) ++count;
  RETURN_IF_ERROR(FromRocks(it->status(), "count samples"));
  return count;
}

StatusOr<std::vector<ShardId>> RocksStore::AddErase(
    const std::vector<SampleId>& ids, rocksdb::WriteBatch* batch) {
  std::vector<ShardId> shards;
  for (SampleId id : ids) {
    ASSIGN_OR_RETURN(SampleLocation location, LookupSampleLocked(id));
    if (location.erased) continue;
    RETURN_IF_ERROR(FromRocks(
        batch->Delete(cf(kSamples),
                      SampleKey(location.shard, location.slice, location.id)),
        "erase " + SampleName(id)));
    location.erased = true;
    RETURN_IF_ERROR(FromRocks(batch->Put(cf(kSampleIndex), U64Key(id.value()),
                                         EncodeLocation(location)),
                              "erase " + SampleName(id)));
    shards.push_back(location.shard);
  }
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  return shards;
}

}  // namespace eraser::storage::internal
