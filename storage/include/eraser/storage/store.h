// Store: the durable state of an eraser deployment, on one of two backends
// chosen by StoreOptions::path:
//  - a directory: one RocksDB database (the embedded default, one process);
//  - a postgresql:// (or postgres://) URL: a PostgreSQL database that several
//    eraser processes share (docs/scale-out.md).
//
// RocksDB column families (DESIGN section 6): samples (shard|slice|sample ->
// label, owner, features), sample_index (sample -> location), owners
// (owner|sample), deletions (seq -> request), checkpoints (shard|slice ->
// model blob), meta (configuration), audit (request id -> certificate
// record). Keys are big-endian so prefix scans come out ordered. The
// PostgreSQL tables are described in storage/src/pg_store.h.
//
// Thread safety: every method may be called concurrently from any thread.
// Errors: backend failures surface as eraser::Status (kDataLoss for
// corruption, kFailedPrecondition when the directory is locked by another
// process, kResourceExhausted when the disk is full, kUnavailable when
// PostgreSQL cannot be reached or the outcome of a commit is unknown,
// kInternal for other I/O failures). A failed call changes nothing unless its
// comment says otherwise. After a failed write the RocksDB store writes
// nothing more until RocksDB has resumed from the error (Resume() is tried
// before each later write): a write made while RocksDB holds a background
// error could abort the process in Debian's build, which has assertions on.
// An error RocksDB cannot resume from (a fatal one) makes the next write
// close and reopen the database in place, after writing back what every
// failed write found (a failed write may be in the log the reopen replays;
// docs/storage.md); while it cannot reopen (a full disk) the database is
// open read-only, reads go on and writes are refused.
// The PostgreSQL store drops a broken connection and opens a new one at the
// next call.
#ifndef ERASER_STORAGE_STORE_H_
#define ERASER_STORAGE_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eraser/common/status.h"
#include "eraser/common/statusor.h"
#include "eraser/storage/records.h"

namespace eraser::storage {

// What the store has done, for tests and monitoring.
struct StoreCounters {
  // Write-ahead log syncs (RocksDB's WAL_FILE_SYNCED ticker): every
  // acknowledged deletion and every apply costs one.
  uint64_t wal_syncs = 0;
  // Writes refused or failed since open, and the times the store took
  // writes again after failures (RocksDB: each Resume() or reopen;
  // PostgreSQL: a write that succeeded after failed ones).
  uint64_t failed_writes = 0;
  uint64_t resumes = 0;
  // Times the store closed and opened its RocksDB database again after an
  // error (how it recovers; docs/storage.md).
  uint64_t reopens = 0;
};

struct StoreOptions {
  // The data directory, or a PostgreSQL connection URI
  // (postgresql://user@host/db, postgresql:///db?host=/socket/dir). Required.
  std::string path;
  // Create the directory and database (or the schema) when missing
  // (default). When false, opening a missing directory, or a database
  // without an eraser schema, fails with kNotFound.
  bool create_if_missing = true;
};

// Whether `path` names a PostgreSQL database (postgresql:// or postgres://,
// the scheme in any case; Store::Open refuses all but lower case) rather
// than a data directory.
bool IsPostgresLocation(const std::string& path);
// `path` as it may be printed: a URL's password (in its authority or a
// password parameter) replaced by ***; a URL where a password's end is
// uncertain (a raw '@' after its user information, a raw '?' in it, a
// bracketed host without its ']' or holding a '?') shown as its scheme and
// ***.
std::string PrintableLocation(const std::string& path);

// PostgreSQL stores only (the replay's scratch copies):
// The URL of database `database` (percent-encoded into it) on the server
// (and with the parameters) of `url`; kInvalidArgument when `url` names no
// database in its path, has a dbname parameter, or is not a URL the store
// would open (the reasons of Store::Open's check).
StatusOr<std::string> PostgresSiblingUrl(const std::string& url,
                                         const std::string& database);
// Creates the database of `to` with the database of `from` as its template
// (a copy; nobody may be connected to `from` meanwhile); kInvalidArgument
// unless the two URLs differ in their database only (PostgresSiblingUrl).
Status CopyPostgresDatabase(const std::string& from, const std::string& to);
// Drops the database of `url`, closing its sessions.
Status DropPostgresDatabase(const std::string& url);

class Store {
 public:
  // Opens (or creates) the store options.path names.
  static StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);

  // Flushes and closes the database.
  virtual ~Store() = default;

  // ---- meta ---------------------------------------------------------------
  // First call on an empty directory stores `config`. Later calls succeed if
  // `config` equals the stored one, and otherwise fail with
  // kFailedPrecondition naming every key that differs.
  virtual Status InitConfig(const StoreConfig& config) = 0;
  // The stored configuration; kNotFound when none was stored yet.
  virtual StatusOr<StoreConfig> ReadConfig() = 0;
  // Small named values (markers such as "ingest complete"); synced writes.
  virtual Status PutMeta(const std::string& key, const std::string& value) = 0;
  // kNotFound when absent.
  virtual StatusOr<std::string> GetMeta(const std::string& key) = 0;
  // Replaces meta `key`'s value by `edit` of it, atomically with every
  // other process sharing the store, and leaves no copy of the value it
  // replaced in the store's files (as Apply leaves no erased sample):
  // for erasing a person's rows from a stored value (the test split).
  // Nothing is written when `edit` returns the value unchanged; an error
  // from `edit` is returned and changes nothing. kNotFound when absent.
  virtual Status EraseInMeta(
      const std::string& key,
      const std::function<StatusOr<std::string>(const std::string&)>& edit) = 0;

  // ---- sample store -------------------------------------------------------
  // Stores samples with their index and owner entries. Writing the same
  // sample twice is harmless. Not atomic across calls: on a crash a prefix
  // may be stored, so callers record completion with PutMeta afterwards.
  // Data reaches disk files (not only the write-ahead log) before return.
  virtual Status IngestSamples(const std::vector<SampleView>& samples) = 0;
  // Calls fn for every stored (not erased) sample of `shard` in slices
  // [first_slice, end_slice), ordered by slice then sample id, on a
  // consistent snapshot. Stops at, and returns, the first error fn returns.
  // fn must not call the store (the RocksDB store holds its database lock
  // while it runs).
  virtual Status ScanShard(
      ShardId shard, uint32_t first_slice, uint32_t end_slice,
      const std::function<Status(const SampleView&)>& fn) = 0;
  // The sample's location; kNotFound for an id never ingested.
  virtual StatusOr<SampleLocation> LookupSample(SampleId id) = 0;
  // The owner's samples (erased ones included), by id; kNotFound for an
  // owner that owns nothing.
  virtual StatusOr<std::vector<SampleLocation>> OwnerSamples(OwnerId owner) = 0;
  // Number of stored (not erased) samples in a shard.
  virtual StatusOr<uint64_t> CountSamples(ShardId shard) = 0;

  // ---- deletion log -------------------------------------------------------
  // Appends a pending request with a synced write and returns its sequence
  // number (1, 2, ... in order of durability) only once it is on disk.
  virtual StatusOr<DeletionSeq> AppendDeletion(
      const DeletionTarget& target, const std::vector<SampleLocation>& samples,
      TimePoint arrival) = 0;
  // All pending requests, by sequence number.
  virtual StatusOr<std::vector<DeletionRecord>> PendingDeletions() = 0;
  // The last sequence number issued; 0 when the log is empty. (On
  // PostgreSQL, when the server cannot be reached: the last one this
  // process has seen.)
  virtual DeletionSeq LastDeletionSeq() = 0;
  // Every request after `seq`, pending or applied, by sequence number: what
  // an engine sharing the store with others reads before it decides
  // answers, to learn of the deletions they acknowledged.
  virtual StatusOr<std::vector<DeletionRecord>> DeletionsAfter(
      DeletionSeq seq) = 0;
  // One request; kNotFound for a sequence number never issued.
  virtual StatusOr<DeletionRecord> GetDeletion(DeletionSeq seq) = 0;
  // The newest request naming `target`, kNotFound if none does. (On
  // RocksDB, requests appended by a build before 2026-12-06 are not found:
  // they were not indexed.)
  virtual StatusOr<DeletionSeq> FindDeletion(const DeletionTarget& target) = 0;
  // Marks requests applied (synced). kNotFound, and nothing changes, if any
  // sequence number is unknown; already-applied ones keep their first time.
  virtual Status MarkApplied(const std::vector<DeletionSeq>& seqs,
                             TimePoint applied_at) = 0;
  // Records in each request's excluded_from that model `version` of
  // `shard` leaves its samples there out, as an apply would, and marks
  // applied (at `applied_at`) those every shard holding them has left
  // (synced). Writes no checkpoint and erases nothing. kNotFound, and
  // nothing changes, if a sequence number is unknown.
  virtual Status RecordExclusions(
      const std::vector<ApplyBatch::Exclusion>& excluded,
      TimePoint applied_at) = 0;

  // ---- checkpoints --------------------------------------------------------
  // Stores the checkpoint for (shard, slice), replacing the previous one.
  virtual Status PutCheckpoint(const Checkpoint& checkpoint) = 0;
  // kNotFound when none is stored.
  virtual StatusOr<Checkpoint> GetCheckpoint(ShardId shard, uint32_t slice) = 0;
  // Deletes the shard's checkpoints for slices >= first_slice.
  virtual Status DeleteCheckpoints(ShardId shard, uint32_t first_slice) = 0;

  // ---- unlearning ---------------------------------------------------------
  // Writes the whole batch atomically with a synced write: checkpoints put,
  // samples erased, requests marked applied and their exclusions recorded,
  // and the erasure it owes (its shards' key ranges). Then flushes and
  // compacts those ranges so that erased samples and replaced checkpoints
  // leave the files on disk, and clears the debt. Fails with kNotFound, and
  // changes nothing, when a sample or a sequence number is unknown, and with
  // kAlreadyExists when a checkpoint's version is not above the stored one
  // for its (shard, slice): another engine sharing the store committed a
  // newer model of the shard first. A
  // failure after the commit is returned as an error, but the batch stays
  // applied and the erasure stays owed (FinishErasure): `committed`, when
  // not null, tells whether the batch was written.
  virtual Status Apply(const ApplyBatch& batch, bool* committed = nullptr) = 0;
  // Compacts what committed applies still owe (after a crash between an
  // apply's commit and its compaction, or a failed compaction) and clears
  // the debt; Open calls it. OK when nothing is owed.
  virtual Status FinishErasure() = 0;
  // Whether an erasure is owed.
  virtual bool ErasureOwed() = 0;
  // Why writes are refused now (the disk filled and the store has not
  // reopened since, or it opened read-only on a full disk), or OK when
  // the next write is tried. No I/O: what the store last saw.
  virtual Status WriteStatus() { return OkStatus(); }

  // ---- retraining jobs ----------------------------------------------------
  // A shard claimed for retraining, until the claim is destroyed. Engines
  // sharing a PostgreSQL store take one before they retrain a shard, so that
  // one engine at a time retrains it; the claim ends with its holder's
  // session, so the claim of a process that died is free again, and, once
  // the store has joined the replicas (Join), with its lease: a holder
  // paused or cut off for a lease loses it.
  class ShardClaim {
   public:
    virtual ~ShardClaim() = default;
  };
  // The claim, or null when another engine holds it. (RocksDB: the store
  // has one process, which always gets it.)
  virtual StatusOr<std::unique_ptr<ShardClaim>> TryClaimShard(
      ShardId shard) = 0;

  // ---- replicas -----------------------------------------------------------
  // An engine's membership among the engines sharing a store
  // (docs/scale-out.md): a lease in the database that the engine renews,
  // the sequence number up to which it has registered the log's deletions,
  // and the notification of new ones. A deletion is acknowledged once every
  // other member with a live lease has registered it, or its lease has run
  // out; a member answers only while it holds its lease. Every method but
  // AwaitRegistered is called by one thread (the engine's lease thread).
  class Membership {
   public:
    // Destroying a membership ends it (Leave).
    virtual ~Membership() = default;
    // Ends the membership: the database forgets the lease, so no
    // acknowledgement waits for it any more. Best effort (otherwise the
    // lease runs out); a later Renew joins again.
    virtual void Leave() = 0;

    struct Renewal {
      // The lease was live in the database when it was renewed: no
      // acknowledgement can have skipped this member since the last
      // renewal. False for the first one and after a lapse.
      bool continued = false;
      // The log's last sequence number, read with the renewal.
      DeletionSeq log_head;
    };
    // Renews the lease for the membership's duration from the database's
    // clock at the renewal (durable commit), recording `registered`; the
    // first call joins. A caller that measures its own lease from before
    // the call holds it for less than the database does.
    virtual StatusOr<Renewal> Renew(DeletionSeq registered) = 0;
    // Records that every deletion up to `registered` is registered, and
    // wakes the members waiting for it.
    virtual Status Report(DeletionSeq registered) = 0;
    // Waits up to `timeout` for a notification of new deletions; true when
    // one came, or when the notifications may have been missed (a new
    // connection): the caller reads the log. An error: the database cannot
    // be reached (the wait took no longer than `timeout`).
    virtual StatusOr<bool> AwaitDeletions(Duration timeout) = 0;
    // Waits until every other member with a live lease has registered
    // `seq` (or its lease has run out), at most `timeout`; kUnavailable
    // when a member still holds its lease without having registered it by
    // then, or when the database cannot be reached. Any thread may call
    // it.
    virtual Status AwaitRegistered(DeletionSeq seq, Duration timeout) = 0;
    // Live members (leases not run out), this one included, as the last
    // renewal or wait saw them.
    virtual int live_members() const = 0;
  };
  // Joins the engines sharing the store with a lease of `lease`; the lease
  // starts with the first Renew. Null for a store of one process (RocksDB).
  virtual StatusOr<std::unique_ptr<Membership>> Join(Duration lease) {
    (void)lease;
    return std::unique_ptr<Membership>();
  }

  // ---- audit --------------------------------------------------------------
  // Stores an answer's certificate record under a request id (unsynced: an
  // audit record is evidence, not a promise made to a client).
  virtual Status PutAudit(uint64_t request_id, const std::string& record) = 0;
  virtual StatusOr<std::string> GetAudit(uint64_t request_id) = 0;

  virtual StoreCounters Counters() = 0;
};

}  // namespace eraser::storage

#endif  // ERASER_STORAGE_STORE_H_
