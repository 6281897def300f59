// PgStore: the Store on PostgreSQL, shared by several eraser processes
// (docs/scale-out.md). Selected by a StoreOptions path that starts with
// postgresql:// or postgres:// (a libpq connection URI).
//
// Layout (schema version kSchemaVersion, created and migrated by Open under
// an advisory lock): eraser_schema, eraser_meta, eraser_config,
// eraser_sample_index (id -> shard, slice, owner, erased; indexed by owner),
// eraser_log_head (the last sequence number issued), eraser_deletions
// (seq -> record), eraser_audit, eraser_replicas (the replicas' leases and
// what each has registered: PgMembership); and per shard eraser_samples_<shard>
// (features uncompressed, STORAGE EXTERNAL) and eraser_checkpoints_<shard>.
//
// Erasure: an apply rewrites the tables of the shards it touches inside its
// transaction (TRUNCATE, which gives the table a new file, and the kept rows
// copied back), so erased features and replaced checkpoints leave the live
// relation files when it commits; nothing is owed afterwards.
//
// Errors: every libpqxx exception and server error is converted to a Status
// by FromPg and nowhere else: unreachable server, lost connection, shutdown,
// serialization failure and deadlock are kUnavailable (a commit whose
// outcome is unknown says so), a full disk kResourceExhausted, corruption
// kDataLoss, a missing privilege kFailedPrecondition. A URL libpq does not
// accept is kInvalidArgument before any connection (CheckUrl, pg_url.h).
// Connections are pooled; a broken one is dropped and the next call opens a
// new one, so the store reconnects after a server restart by itself.
#ifndef ERASER_STORAGE_PG_STORE_H_
#define ERASER_STORAGE_PG_STORE_H_

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/mutex.h"
#include "eraser/storage/store.h"

namespace pqxx {
class transaction_base;
}  // namespace pqxx

namespace eraser::storage::internal {

// The Status of a libpqxx or server error `e`, its message prefixed with
// `context`.
Status FromPg(const std::exception& e, std::string_view context);

class PgStore final : public Store {
 public:
  static StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);

  ~PgStore() override;

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
  StoreCounters Counters() override;
  StatusOr<std::unique_ptr<ShardClaim>> TryClaimShard(ShardId shard) override;
  StatusOr<std::unique_ptr<Membership>> Join(Duration lease) override;

  Status PutAudit(uint64_t request_id, const std::string& record) override;
  StatusOr<std::string> GetAudit(uint64_t request_id) override;

 private:
  friend class PgMembership;
  class Connection;
  // How a transaction commits.
  enum class Commit {
    // Waits for the commit record to be flushed (and, with a synchronous
    // standby, to reach it): what an acknowledgement needs.
    kDurable,
    // synchronous_commit off: may be lost in a crash of the server, like
    // an unsynced RocksDB write.
    kLazy,
    // A read-only transaction on one snapshot (REPEATABLE READ).
    kSnapshot,
    // One read-only statement outside a transaction block: a single round
    // trip (a statement sees one snapshot anyway). Retried once on a fresh
    // connection if the pooled one is broken, so its body must reset what
    // it fills.
    kStatement,
  };
  using Body = std::function<Status(pqxx::transaction_base&)>;

  explicit PgStore(std::string url);
  // Runs `body` in one transaction on a pooled connection and commits it
  // when it returns OK (otherwise rolls back and returns its error). Every
  // exception is converted here; `context` names the operation. When
  // `committed` is not null it tells whether the commit succeeded.
  Status Transact(std::string_view context, Commit commit, const Body& body,
                  bool* committed = nullptr);
  std::unique_ptr<Connection> Acquire();
  void Release(std::unique_ptr<Connection> connection);
  // Creates the shards' tables (in a transaction of their own) unless this
  // process already knows they exist.
  Status EnsureShardTables(const std::vector<ShardId>& shards);
  // Whether the shard's tables exist (remembered once they do).
  StatusOr<bool> ShardTablesExist(ShardId shard);
  Status Migrate(bool create_if_missing);
  // Raises last_seq_ to `seq` if below; returns the result.
  uint64_t NoteSeq(uint64_t seq);
  // Counts a failed write; returns `status`.
  Status Failed(Status status, bool write);

  const std::string url_;
  Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> idle_ GUARDED_BY(pool_mu_);
  Mutex shards_mu_;
  std::set<uint32_t> shards_with_tables_ GUARDED_BY(shards_mu_);
  std::atomic<uint64_t> last_seq_{0};
  std::atomic<uint64_t> durable_commits_{0};
  std::atomic<uint64_t> failed_writes_{0};
  std::atomic<uint64_t> resumes_{0};
  std::atomic<bool> failing_{false};
  // A member's lease (Join): claims taken afterwards end with it, and so
  // do transactions left open (for no less than 10 s) on connections
  // opened afterwards; connections opened under another lease are not
  // pooled.
  std::atomic<Duration> lease_{Duration(0)};
};

}  // namespace eraser::storage::internal

#endif  // ERASER_STORAGE_PG_STORE_H_
