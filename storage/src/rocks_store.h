// RocksStore: the Store implementation. Split by concern across
// rocks_store.cc (open, meta, audit), samples.cc, deletion_log.cc,
// checkpoints.cc and apply.cc.
#ifndef ERASER_STORAGE_ROCKS_STORE_H_
#define ERASER_STORAGE_ROCKS_STORE_H_

#include <rocksdb/db.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/mutex.h"
#include "eraser/storage/store.h"
#include "records_codec.h"
#include "store_rules.h"

namespace eraser::storage::internal {

// Converts a RocksDB status; `context` names the operation ("put sample 3").
Status FromRocks(const rocksdb::Status& status, std::string_view context);

// Key encodings of this implementation.
std::string SampleKey(ShardId shard, uint32_t slice, SampleId id);
std::string ShardPrefix(ShardId shard);
std::string U64Key(uint64_t v);
std::string OwnerKey(OwnerId owner, SampleId id);
std::string CheckpointKey(ShardId shard, uint32_t slice);

// Opens (or creates) the RocksDB store in the directory options.path.
// `env`, when not null, is the RocksDB environment to use instead of the
// default (tests: a file system that injects faults,
// tests/storage/fault_sweep_test.cc); it must outlive the store.
StatusOr<std::unique_ptr<Store>> OpenRocksStore(const StoreOptions& options,
                                                rocksdb::Env* env = nullptr);

// Whether writes may go to RocksDB: closed by any RocksDB error, a failed
// write of ours or one RocksDB raises in the background (flush, compaction,
// write-ahead log), until Resume() succeeds. Shared by the store and the
// listener RocksDB reports background errors to. Thread-safe; never held
// across a call into RocksDB.
//
// Each close has a number: a Resume() that succeeded opens the gate only if
// no error closed it again while Resume() ran (an error RocksDB raised then
// would otherwise be forgotten, and the next write would run into it).
class WriteGate {
 public:
  // A write of ours failed: closes the gate and counts the write.
  void WriteFailed(Status why);
  // RocksDB raised an error in the background: closes the gate; no write
  // of ours failed, so none is counted (a failed write RocksDB also reports
  // to the listener counts once).
  void Close(Status why);
  // Whether closed; `*closes` (when not null) is the number of closes so
  // far, to hand to Opened().
  bool closed(uint64_t* closes = nullptr) const;
  // The error that closed it.
  Status last() const;
  // Resume() succeeded after `closes` closes; opens the gate unless it was
  // closed again since. Returns whether it opened.
  bool Opened(uint64_t closes);
  // A write refused while closed.
  void Refused();
  void Counts(uint64_t* failures, uint64_t* resumes) const;

 private:
  mutable Mutex mu_;
  bool failed_ GUARDED_BY(mu_) = false;
  uint64_t closes_ GUARDED_BY(mu_) = 0;
  uint64_t failures_ GUARDED_BY(mu_) = 0;
  uint64_t resumes_ GUARDED_BY(mu_) = 0;
  Status last_ GUARDED_BY(mu_);
};

class RocksStore final : public Store {
 public:
  enum Family : int {
    kDefault = 0,
    kSamples,
    kSampleIndex,
    kOwners,
    kDeletions,
    kCheckpoints,
    kMeta,
    kAudit,
    kNumFamilies,
  };

  RocksStore(std::unique_ptr<rocksdb::DB> db,
             std::vector<rocksdb::ColumnFamilyHandle*> handles,
             DeletionSeq last_seq,
             std::shared_ptr<rocksdb::Statistics> statistics,
             std::shared_ptr<WriteGate> gate);
  ~RocksStore() override;

  Status InitConfig(const StoreConfig& config) override;
  StatusOr<StoreConfig> ReadConfig() override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  StatusOr<std::string> GetMeta(const std::string& key) override;

  Status IngestSamples(const std::vector<SampleView>& samples) override;
  Status ScanShard(ShardId shard, uint32_t first_slice, uint32_t end_slice,
                   const std::function<Status(const SampleView&)>& fn) override;
  StatusOr<SampleLocation> LookupSample(SampleId id) override;
  StatusOr<std::vector<SampleLocation>> OwnerSamples(OwnerId owner) override;
  StatusOr<uint64_t> CountSamples(ShardId shard) override;

  StatusOr<DeletionSeq> AppendDeletion(
      const DeletionTarget& target, const std::vector<SampleLocation>& samples,
      TimePoint arrival) override;
  StatusOr<std::vector<DeletionRecord>> PendingDeletions() override;
  DeletionSeq LastDeletionSeq() override;
  StatusOr<std::vector<DeletionRecord>> DeletionsAfter(
      DeletionSeq seq) override;
  StatusOr<DeletionRecord> GetDeletion(DeletionSeq seq) override;
  Status MarkApplied(const std::vector<DeletionSeq>& seqs,
                     TimePoint applied_at) override;

  Status PutCheckpoint(const Checkpoint& checkpoint) override;
  StatusOr<Checkpoint> GetCheckpoint(ShardId shard, uint32_t slice) override;
  Status DeleteCheckpoints(ShardId shard, uint32_t first_slice) override;

  Status Apply(const ApplyBatch& batch, bool* committed) override;
  Status FinishErasure() override;
  bool ErasureOwed() override;
  StoreCounters Counters() override;
  StatusOr<std::unique_ptr<ShardClaim>> TryClaimShard(ShardId shard) override;

  Status PutAudit(uint64_t request_id, const std::string& record) override;
  StatusOr<std::string> GetAudit(uint64_t request_id) override;

 private:
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return handles_[f]; }
  // Every write goes through here: refused while a failed earlier write
  // has not been resumed from (Resume() is tried first), and a failure
  // marks the store failed.
  Status Write(rocksdb::WriteBatch* batch, bool sync, std::string_view context);
  // Marks the store failed after `status` (a write, flush or compaction
  // error) and returns it converted.
  Status Failed(const rocksdb::Status& status, std::string_view context);
  // Tries RocksDB's Resume() if a write failed; OK when writes may go on.
  Status Writable();
  // The owed-erasure keys of `shards` in family `f`, added to `batch`.
  Status AddOwed(Family f, const std::vector<ShardId>& shards,
                 rocksdb::WriteBatch* batch);
  // Reads a value; kNotFound carries `what` in its message.
  StatusOr<std::string> Get(Family f, std::string_view key,
                            std::string_view what);
  // Adds to `batch` the writes that mark `applied` applied and record
  // `excluded`. kNotFound for an unknown sequence number.
  Status AddDeletionUpdates(const std::vector<DeletionSeq>& applied,
                            TimePoint applied_at,
                            const std::vector<ApplyBatch::Exclusion>& excluded,
                            rocksdb::WriteBatch* batch) REQUIRES(apply_mu_);
  // Adds to `batch` the writes that erase `ids`; returns their shards.
  StatusOr<std::vector<ShardId>> AddErase(const std::vector<SampleId>& ids,
                                          rocksdb::WriteBatch* batch);
  Status CompactShards(Family f, const std::vector<ShardId>& shards);
  // Flushes every column family's memtable to table files. Afterwards no
  // write-ahead log file is needed any more, so RocksDB deletes them: data
  // that was only in an old log (ingested samples, replaced checkpoints)
  // leaves the disk with it.
  Status FlushAll();

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  const std::shared_ptr<rocksdb::Statistics> statistics_;
  const std::shared_ptr<WriteGate> gate_;
  // One Resume() at a time: a second one while RocksDB recovers fails
  // ("recovery in progress"), which two writers arriving as space returns
  // would otherwise answer as a full disk. Held across Resume(); the
  // listener that closes the gate never takes it.
  Mutex resume_mu_;
  // Serialises erasure (compaction and clearing the debt).
  Mutex erasure_mu_;

  // Serialises sequence allocation with the synced write that makes it
  // durable, so sequence numbers are issued in order of durability.
  Mutex append_mu_;
  uint64_t last_seq_ GUARDED_BY(append_mu_);
  // Serialises read-modify-write of deletion records and index entries.
  Mutex apply_mu_;
};

}  // namespace eraser::storage::internal

#endif  // ERASER_STORAGE_ROCKS_STORE_H_
