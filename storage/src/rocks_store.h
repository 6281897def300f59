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
#include "eraser/storage/data_dir_lock.h"
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
// default (tests: a file system that injects faults, tests/storage/
// fault_fs.h); it must outlive the store.
StatusOr<std::unique_ptr<Store>> OpenRocksStore(const StoreOptions& options,
                                                rocksdb::Env* env = nullptr);

// Whether writes may go to RocksDB: closed by any RocksDB error, a failed
// write of ours or one RocksDB raises in the background (flush, compaction,
// write-ahead log). Shared by the store and the listener RocksDB reports
// background errors to. Thread-safe; never held across a call into RocksDB.
//
// Two ways to open it again. After a failed compaction only (nothing in
// the log or the memtables was touched), RocksDB's Resume(). After
// anything else (a failed write, flush or log append) only a reopen of the
// database (RocksStore::ReopenIfNeeded): Resume() then flushes memtables a
// failed flush may have left stuck, and waits for ever (Writable).
//
// Each close has a number: a Resume() that succeeded opens the gate only if
// no error closed it again while Resume() ran (an error RocksDB raised then
// would otherwise be forgotten, and the next write would run into it). The
// number also tags the undo of a failed write (RocksStore::RememberUndo).
class WriteGate {
 public:
  // A write of ours failed: closes the gate, counts the write, and needs a
  // reopen. A compaction of ours (erasure) that failed is counted too, but
  // is resumable (`resumable`).
  void WriteFailed(Status why, bool resumable = false);
  // RocksDB raised an error in the background: closes the gate; no write
  // of ours failed, so none is counted (a failed write RocksDB also reports
  // to the listener counts once). Unless `resumable`, needs a reopen.
  void Close(Status why, bool resumable);
  // Whether closed; `*closes` (when not null) is the number of closes so
  // far, to hand to Opened().
  bool closed(uint64_t* closes = nullptr) const;
  // Whether only a reopen opens it (set by any close but a resumable one,
  // until the reopen).
  bool needs_reopen() const;
  // The error that closed it.
  Status last() const;
  // Resume() succeeded after `closes` closes; opens the gate unless it was
  // closed again since. Returns whether it opened.
  bool Opened(uint64_t closes);
  // A write refused while closed.
  void Refused();
  // The database is about to be opened again: opens the gate, so that an
  // error the new database raises while it opens closes it again.
  void Reopening();
  // The database was opened again (counted, as a reopen and a resume).
  void Reopened();
  void Counts(uint64_t* failures, uint64_t* resumes,
              uint64_t* reopens = nullptr) const;

 private:
  mutable Mutex mu_;
  bool failed_ GUARDED_BY(mu_) = false;
  bool reopen_ GUARDED_BY(mu_) = false;
  uint64_t closes_ GUARDED_BY(mu_) = 0;
  uint64_t failures_ GUARDED_BY(mu_) = 0;
  uint64_t resumes_ GUARDED_BY(mu_) = 0;
  uint64_t reopens_ GUARDED_BY(mu_) = 0;
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

  // What opening the database takes; kept to reopen it.
  struct OpenParams {
    std::string path;
    rocksdb::DBOptions options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
  };
  // An open database: its column family handles (by Family) and the
  // last sequence number in its deletion log.
  struct OpenDb {
    std::unique_ptr<rocksdb::DB> db;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    uint64_t last_seq = 0;
  };
  static StatusOr<OpenDb> Open(const OpenParams& params);

  RocksStore(OpenParams params, OpenDb opened, std::shared_ptr<WriteGate> gate);
  ~RocksStore() override;

  // Opens the database at `params` read-only, for a store that could not
  // be opened to write because of `why` (a full disk): reads go on, every
  // write is refused with `why` until one finds the space to reopen it to
  // write (ReopenIfNeeded). Null with the reason when it cannot be opened
  // read-only either, or another process holds it.
  static StatusOr<std::unique_ptr<RocksStore>> OpenReadOnlyAfter(
      Status why, OpenParams params, std::shared_ptr<WriteGate> gate);

  Status InitConfig(const StoreConfig& config) override;
  StatusOr<StoreConfig> ReadConfig() override;
  Status PutMeta(const std::string& key, const std::string& value) override;
  StatusOr<std::string> GetMeta(const std::string& key) override;
  Status EraseInMeta(
      const std::string& key,
      const std::function<StatusOr<std::string>(const std::string&)>& edit)
      override;

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
  StatusOr<DeletionSeq> FindDeletion(const DeletionTarget& target) override;
  Status MarkApplied(const std::vector<DeletionSeq>& seqs,
                     TimePoint applied_at) override;
  Status RecordExclusions(const std::vector<ApplyBatch::Exclusion>& excluded,
                          TimePoint applied_at) override;

  Status PutCheckpoint(const Checkpoint& checkpoint) override;
  StatusOr<Checkpoint> GetCheckpoint(ShardId shard, uint32_t slice) override;
  Status DeleteCheckpoints(ShardId shard, uint32_t first_slice) override;

  Status Apply(const ApplyBatch& batch, bool* committed) override;
  Status FinishErasure() override;
  bool ErasureOwed() override;
  Status WriteStatus() override;
  StoreCounters Counters() override;
  StatusOr<std::unique_ptr<ShardClaim>> TryClaimShard(ShardId shard) override;

  Status PutAudit(uint64_t request_id, const std::string& record) override;
  StatusOr<std::string> GetAudit(uint64_t request_id) override;

 private:
  // Holds the database for one operation of the store, shared with the
  // others. An operation that may write first reopens it if the gate needs
  // a reopen; a read reopens only when no database is open. kWrite also
  // checks the gate (Writable, which resumes RocksDB after a failed
  // compaction), and if it needs a reopen by then, reopens (unless it just
  // tried) and checks once more, so the write that finds the disk free
  // again is the one that succeeds. status() is not OK when no database is
  // open (both opens failed: the next operation tries again) or, for
  // kWrite, when writes cannot go on yet (counted as refused).
  class SCOPED_CAPABILITY DbLock {
   public:
    // kMaybeWrite: an operation that writes only in some cases (owed
    // erasure, the first configuration); it calls Writable() itself.
    enum Access { kRead, kWrite, kMaybeWrite };
    DbLock(RocksStore* store, Access access) ACQUIRE_SHARED(store->db_mu_);
    ~DbLock() RELEASE_GENERIC();
    DbLock(const DbLock&) = delete;
    DbLock& operator=(const DbLock&) = delete;
    const Status& status() const { return status_; }

   private:
    RocksStore* const store_;
    Status status_;
  };

  // Closes the database and opens it again if the gate needs a reopen
  // (WriteGate::needs_reopen), for an operation that may write
  // (`for_write`) or when no database is open; then writes back the undo
  // of the writes that failed (undo_). If opening fails (a full disk),
  // opens it read-only so that reads go on. Nothing else holds the
  // database meanwhile. Returns whether a reopen was needed (whether or
  // not it happened).
  bool ReopenIfNeeded(bool for_write) EXCLUDES(db_mu_);
  // A logged write failed: records what each key it touched holds now
  // (the write did not reach the memtables), to be written back if a
  // reopen replays the write from the log.
  // `tag` is the gate's close count right after the failure.
  void RememberUndo(const rocksdb::WriteBatch& failed, uint64_t tag)
      REQUIRES_SHARED(db_mu_);
  // Drops the undos tagged `through` or lower, and any such undo recorded
  // later: a write that began after `through` closes succeeded (an undo
  // kept could revert it). (A Resume() drops none: it runs only while no
  // failed write awaits a reopen, and a write that fails meanwhile may be
  // in the log Resume() starts.)
  void ForgetUndo(uint64_t through) EXCLUDES(undo_mu_);
  // Why a reopen is not tried now (under 1 MiB free, or an undo lost).
  Status ReopenDeclined() EXCLUDES(undo_mu_);
  // Opens the database read-only if none is open and no failed write is
  // still to be undone.
  void OpenReadOnly() REQUIRES(db_mu_) EXCLUDES(undo_mu_);
  // Whether a database is open (a failed reopen can leave none); the
  // error if not.
  Status HasDb() const REQUIRES_SHARED(db_mu_);
  // Why the store takes no write after a failed reopen.
  Status ReopenFailed() const REQUIRES_SHARED(db_mu_);

  // The unlocked bodies of public operations that other operations call.
  StatusOr<StoreConfig> ReadConfigLocked() REQUIRES_SHARED(db_mu_);
  Status PutMetaLocked(const std::string& key, const std::string& value)
      REQUIRES_SHARED(db_mu_);
  StatusOr<SampleLocation> LookupSampleLocked(SampleId id)
      REQUIRES_SHARED(db_mu_);
  StatusOr<DeletionRecord> GetDeletionLocked(DeletionSeq seq)
      REQUIRES_SHARED(db_mu_);
  StatusOr<Checkpoint> GetCheckpointLocked(ShardId shard, uint32_t slice)
      REQUIRES_SHARED(db_mu_);
  Status FinishErasureLocked() REQUIRES_SHARED(db_mu_) REQUIRES(erasure_mu_);

  rocksdb::ColumnFamilyHandle* cf(Family f) const REQUIRES_SHARED(db_mu_) {
    return handles_[f];
  }
  // Every write goes through here: refused (and counted) while the gate
  // is closed, and a failure closes it.
  Status Write(rocksdb::WriteBatch* batch, bool sync, std::string_view context)
      REQUIRES_SHARED(db_mu_);
  // Marks the store failed after `status` (a write, flush or compaction
  // error; `resumable` for a compaction's) and returns it converted.
  Status Failed(const rocksdb::Status& status, std::string_view context,
                bool resumable = false);
  // OK when writes may go on: the gate is open, or only compactions
  // failed and RocksDB's Resume() succeeds. Otherwise why not.
  Status Writable() REQUIRES_SHARED(db_mu_);
  // The owed-erasure keys of `shards` in family `f`, added to `batch`.
  Status AddOwed(Family f, const std::vector<ShardId>& shards,
                 rocksdb::WriteBatch* batch) REQUIRES_SHARED(db_mu_);
  // Reads a value; kNotFound carries `what` in its message.
  StatusOr<std::string> Get(Family f, std::string_view key,
                            std::string_view what) REQUIRES_SHARED(db_mu_);
  // Adds to `batch` the writes that mark `applied` applied and record
  // `excluded`. kNotFound for an unknown sequence number.
  Status AddDeletionUpdates(const std::vector<DeletionSeq>& applied,
                            TimePoint applied_at,
                            const std::vector<ApplyBatch::Exclusion>& excluded,
                            rocksdb::WriteBatch* batch) REQUIRES(apply_mu_)
      REQUIRES_SHARED(db_mu_);
  // Adds to `batch` the writes that erase `ids`; returns their shards.
  StatusOr<std::vector<ShardId>> AddErase(const std::vector<SampleId>& ids,
                                          rocksdb::WriteBatch* batch)
      REQUIRES_SHARED(db_mu_);
  Status CompactShards(Family f, const std::vector<ShardId>& shards)
      REQUIRES_SHARED(db_mu_);
  // Flushes every column family's memtable to table files. Afterwards no
  // write-ahead log file is needed any more, so RocksDB deletes them: data
  // that was only in an old log (ingested samples, replaced checkpoints)
  // leaves the disk with it.
  Status FlushAll() REQUIRES_SHARED(db_mu_);

  const OpenParams params_;
  // Every operation holds db_mu_ shared while it uses the database;
  // reopening it holds db_mu_ alone. Taken before every other lock here.
  mutable SharedMutex db_mu_;
  // Null only after a reopen failed.
  std::unique_ptr<rocksdb::DB> db_ GUARDED_BY(db_mu_);
  std::vector<rocksdb::ColumnFamilyHandle*> handles_ GUARDED_BY(db_mu_);
  Status reopen_error_ GUARDED_BY(db_mu_);
  // The database is open read-only: a reopen failed, or the open at start.
  bool read_only_ GUARDED_BY(db_mu_) = false;
  // Held while the database is open read-only, which takes no lock of its
  // own: no other process opens the store to write meanwhile, whose
  // deletions this one would not see.
  std::unique_ptr<DataDirLock> read_only_lock_ GUARDED_BY(db_mu_);
  // A write that fails may still have reached the write-ahead log (its
  // append succeeded, its sync did not): RocksDB does not apply it, but
  // reopening the database replays it. That would resurrect a deletion the
  // caller was told failed, or an apply reported as not committed, under a
  // number the store hands out again. So each failed logged write leaves
  // the batch that undoes it (WriteBatch::Data()), until a write that
  // began after it succeeds or a reopen writes them back, newest first.
  Mutex undo_mu_ ACQUIRED_AFTER(db_mu_);
  // (tag, batch): the tag is the gate's close count after the failure.
  std::vector<std::pair<uint64_t, std::string>> undo_ GUARDED_BY(undo_mu_);
  uint64_t undo_forgotten_through_ GUARDED_BY(undo_mu_) = 0;
  // The tag of a failed write whose undo could not be read (0: none): the
  // store is not reopened in place (a restart replays the write, as after
  // a crash).
  uint64_t undo_lost_tag_ GUARDED_BY(undo_mu_) = 0;
  const std::shared_ptr<rocksdb::Statistics> statistics_;
  const std::shared_ptr<WriteGate> gate_;
  // One Resume() at a time: a second one while RocksDB recovers fails
  // ("recovery in progress"), which two writers arriving as space returns
  // would otherwise answer as a full disk. Held across Resume(); the
  // listener that closes the gate never takes it.
  Mutex resume_mu_;
  // Serialises erasure (compaction and clearing the debt) with the applies
  // that write the debt: an erasure clears the owed keys it read once it
  // has compacted their ranges, and an apply committing in between would
  // have rewritten the same keys for its own bytes. Taken before
  // apply_mu_.
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
