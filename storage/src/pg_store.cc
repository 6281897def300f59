// The Store on PostgreSQL (pg_store.h). libpqxx appears in this file only.
#include "pg_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <thread>
#include <unordered_map>

#include "eraser/common/duration.h"
#include "pg_url.h"
#include "records_codec.h"
#include "store_rules.h"

namespace eraser::storage::internal {
namespace {

// Version of the layout in pg_store.h. kMigrations[v - 1] takes a database
// from version v - 1 to v; Open applies the missing ones in order.
constexpr int kSchemaVersion = 4;
constexpr const char* kMigrations[kSchemaVersion] = {
    // 1: the initial layout (per-shard tables are created on demand).
    R"sql(
CREATE TABLE eraser_schema (version integer NOT NULL);
INSERT INTO eraser_schema VALUES (0);
CREATE TABLE eraser_meta (key text PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE eraser_config (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE eraser_sample_index (
  id bigint PRIMARY KEY, shard integer NOT NULL, slice integer NOT NULL,
  owner bigint NOT NULL, erased boolean NOT NULL);
CREATE INDEX eraser_sample_owner ON eraser_sample_index (owner, id);
CREATE TABLE eraser_log_head (last bigint NOT NULL);
INSERT INTO eraser_log_head VALUES (0);
CREATE TABLE eraser_deletions (
  seq bigint PRIMARY KEY, pending boolean NOT NULL, target text NOT NULL,
  record bytea NOT NULL);
CREATE INDEX eraser_deletions_pending ON eraser_deletions (seq) WHERE pending;
CREATE TABLE eraser_audit (request_id bigint PRIMARY KEY, record bytea NOT NULL);
)sql",
    // 2: replicas' leases (Store::Membership).
    R"sql(
CREATE TABLE eraser_replicas (
  id bigserial PRIMARY KEY, lease_until timestamptz NOT NULL,
  registered bigint NOT NULL, host text NOT NULL, pid integer NOT NULL,
  joined timestamptz NOT NULL DEFAULT clock_timestamp());
)sql",
    // 3: no planner statistics of what an apply erases (ANALYZE would copy
    // sample values into pg_statistic, which no apply rewrites).
    R"sql(
DO $$
DECLARE t text;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind = 'r'
             AND c.relname ~ '^eraser_samples_[0-9]+$' LOOP
    EXECUTE format('ALTER TABLE %I ALTER COLUMN features SET STATISTICS 0, '
                   'ALTER COLUMN label SET STATISTICS 0', t);
  END LOOP;
  FOR t IN SELECT c.relname FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind = 'r'
             AND c.relname ~ '^eraser_checkpoints_[0-9]+$' LOOP
    EXECUTE format('ALTER TABLE %I ALTER COLUMN blob SET STATISTICS 0', t);
  END LOOP;
END $$;
)sql",
    // 4: requests by target (Store::FindDeletion).
    R"sql(
CREATE INDEX IF NOT EXISTS eraser_deletions_target
  ON eraser_deletions (target, seq);
)sql",
};

// The oldest server the store runs on: claims set idle_session_timeout
// (PostgreSQL 14).
constexpr int kMinServerVersion = 140000;

// Notification channels: a deletion was appended (payload: its sequence
// number); a replica registered deletions (payload: its id).
constexpr const char* kDeletionsChannel = "eraser_deletions";
constexpr const char* kRegisteredChannel = "eraser_registered";

// Advisory lock keys (pg_advisory_xact_lock) that serialise schema changes
// among the processes sharing a database.
constexpr int64_t kSchemaLock = 0x6572617365720001;  // "eraser" 1
// Shard claims: pg_try_advisory_lock(kClaimSpace, shard).
constexpr int32_t kClaimSpace = 0x65726173;  // "eras"

std::string SamplesTable(ShardId shard) {
  return "eraser_samples_" + std::to_string(shard.value());
}

std::string CheckpointsTable(ShardId shard) {
  return "eraser_checkpoints_" + std::to_string(shard.value());
}

// Unsigned 64-bit values are stored in bigint columns bit for bit.
int64_t Signed(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t Unsigned(const pqxx::field& f) {
  return static_cast<uint64_t>(f.as<int64_t>());
}

// A bigint[] literal of numbers only, for statements built as text.
std::string IdArray(const std::vector<uint64_t>& ids) {
  std::string out = "'{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(Signed(ids[i]));
  }
  return out + "}'::bigint[]";
}

// A sample's rows for one shard, as array literals passed as parameters
// (never in the statement's text: a failed statement's text goes to the
// server's log, which no apply erases).
struct SampleRows {
  std::string slices = "{", ids = "{", labels = "{", owners = "{",
              features = "{";  // hex, decoded by the statement

  void Add(const SampleView& s) {
    static constexpr char kHex[] = "0123456789abcdef";
    const char* sep = slices.size() > 1 ? "," : "";
    slices += sep + std::to_string(s.slice);
    ids += sep + std::to_string(Signed(s.id.value()));
    labels += sep + std::to_string(s.label);
    owners += sep + std::to_string(Signed(s.owner.value()));
    features += sep;
    features += '"';
    for (std::size_t i = 0; i < s.feature_size; ++i) {
      features += kHex[s.features[i] >> 4];
      features += kHex[s.features[i] & 15];
    }
    features += '"';
  }
  void Insert(pqxx::transaction_base& txn, const std::string& table) {
    txn.exec_params0(
        "INSERT INTO " + table +
            " (slice, id, label, owner, features) SELECT s, i, l, o, "
            "decode(f, 'hex') FROM unnest($1::integer[], $2::bigint[], "
            "$3::integer[], $4::bigint[], $5::text[]) AS u(s, i, l, o, f) "
            "ON CONFLICT (slice, id) DO NOTHING",
        slices + "}", ids + "}", labels + "}", owners + "}", features + "}");
  }
};

std::string Bytes(const pqxx::field& f) { return pqxx::binarystring(f).str(); }

std::string Trimmed(const char* what) {
  std::string s(what);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The shortest time the server lets a member's transaction stay idle
// between two statements (PgStore::Acquire).
constexpr Duration kMinIdleInTransaction = std::chrono::seconds(10);

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

Status FromPg(const std::exception& e, std::string_view context) {
  std::string message = std::string(context) + ": " + Trimmed(e.what());
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return UnavailableError(message +
                            " (the connection was lost while committing; "
                            "whether the transaction committed is unknown)");
  }
  // libpqxx 6 throws a few server errors as classes of their own without
  // their SQLSTATE (sqlstate() is empty): a role without a privilege
  // (42501), and the transaction rollbacks of class 40 (serialization
  // failure, deadlock, a statement whose completion is unknown), which do
  // not even derive from sql_error.
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
    return UnavailableError(message +
                            " (whether the statement completed is unknown)");
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return UnavailableError(message);
  }
  if (dynamic_cast<const pqxx::insufficient_privilege*>(&e) != nullptr) {
    return FailedPreconditionError(
        message + " (the role lacks a privilege: docs/scale-out.md)");
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    if (state == "53100") {
      return ResourceExhaustedError(message + " (the database's disk is full)");
    }
    if (StartsWith(state, "53")) return ResourceExhaustedError(message);
    // Connection exceptions, shutdown or crash of the server, a
    // transaction to retry (class 40 reaches here only for the codes
    // libpqxx has no class for), a read-only server (a standby): the caller
    // may try again later.
    // 25P03: the server ended a transaction left idle (Acquire). 55P03: a
    // lock was not granted within lock_timeout.
    if (StartsWith(state, "08") || StartsWith(state, "57P") ||
        StartsWith(state, "40") || state == "25006" || state == "25P03" ||
        state == "55P03") {
      return UnavailableError(message);
    }
    if (state == "XX001" || state == "XX002") {
      return DataLossError(message);
    }
    // An error of libpq's own has no SQLSTATE.
    if (state.empty()) return InternalError(message);
    return InternalError(message + " (SQLSTATE " + state + ")");
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    // A server that answered with FATAL (no such database or role, a
    // refused password) was reached.
    return UnavailableError(message +
                            (message.find("FATAL:") != std::string::npos
                                 ? " (PostgreSQL refused the connection)"
                                 : " (PostgreSQL cannot be reached with "
                                   "this URL)"));
  }
  return InternalError(message);
}

namespace {

bool TableMissing(pqxx::transaction_base& txn, const std::string& table) {
  return txn.exec_params1("SELECT to_regclass($1) IS NULL", table)[0]
      .as<bool>();
}

// Rewrites `table` into a new relation file with only the rows `keep`
// selects: TRUNCATE gives the table (and its TOAST table and indexes) new
// files, the old ones are cut to zero length when the transaction commits,
// and the kept rows are copied back. Rows deleted in place would stay in the
// file until VACUUM reused the space.
void Rewrite(pqxx::transaction_base& txn, const std::string& table,
             const std::string& keep) {
  txn.exec0("CREATE TEMP TABLE eraser_keep ON COMMIT DROP AS SELECT * FROM " +
            table + " WHERE " + keep);
  txn.exec0("TRUNCATE " + table);
  txn.exec0("INSERT INTO " + table + " SELECT * FROM eraser_keep");
  txn.exec0("DROP TABLE eraser_keep");
}

// A reader of a per-shard table takes its lock first: TRUNCATE is not
// MVCC-safe, so a snapshot taken before an apply's rewrite committed would
// see the table empty. With the lock, the reader waits for the apply and its
// statements then see the rewritten table.
void LockForRead(pqxx::transaction_base& txn, const std::string& table) {
  txn.exec0("LOCK TABLE " + table + " IN ACCESS SHARE MODE");
}

// Stores `c`, replacing the checkpoint of its (shard, slice).
void UpsertCheckpoint(pqxx::transaction_base& txn, const Checkpoint& c) {
  txn.exec_params0("INSERT INTO " + CheckpointsTable(c.shard) +
                       " VALUES ($1, $2, $3, $4) ON CONFLICT (slice) DO "
                       "UPDATE SET version = EXCLUDED.version, "
                       "fingerprint = EXCLUDED.fingerprint, "
                       "blob = EXCLUDED.blob",
                   static_cast<int64_t>(c.slice), Signed(c.version),
                   Signed(c.data_fingerprint), pqxx::binarystring(c.blob));
}

// Decodes rows of (seq, record) into `out`.
Status DecodeDeletions(const pqxx::result& rows,
                       std::vector<DeletionRecord>* out) {
  out->clear();
  for (const pqxx::row& row : rows) {
    ASSIGN_OR_RETURN(
        DeletionRecord r,
        DecodeDeletion(DeletionSeq(Unsigned(row[0])), Bytes(row[1])));
    out->push_back(std::move(r));
  }
  return OkStatus();
}

SampleLocation LocationOf(const pqxx::row& row) {
  // id, shard, slice, owner, erased
  SampleLocation l;
  l.id = SampleId(Unsigned(row[0]));
  l.shard = ShardId(row[1].as<uint32_t>());
  l.slice = row[2].as<uint32_t>();
  l.owner = OwnerId(Unsigned(row[3]));
  l.erased = row[4].as<bool>();
  return l;
}

constexpr char kLocationColumns[] = "id, shard, slice, owner, erased";

StatusOr<DeletionRecord> SelectDeletion(pqxx::transaction_base& txn,
                                        DeletionSeq seq) {
  const pqxx::result r =
      txn.exec_params("SELECT record FROM eraser_deletions WHERE seq = $1",
                      Signed(seq.value()));
  if (r.empty()) {
    return NotFoundError("deletion " + std::to_string(seq.value()) +
                         " not found");
  }
  return DecodeDeletion(seq, Bytes(r[0][0]));
}

// Locks the records (in sequence order, so that two processes cannot
// deadlock on them), changes them and writes them back.
Status UpdateDeletionRecords(
    pqxx::transaction_base& txn, const std::vector<DeletionSeq>& applied,
    TimePoint applied_at, const std::vector<ApplyBatch::Exclusion>& excluded) {
  std::vector<uint64_t> seqs;
  for (DeletionSeq s : applied) seqs.push_back(s.value());
  for (const ApplyBatch::Exclusion& e : excluded) seqs.push_back(e.seq.value());
  if (seqs.empty()) return OkStatus();
  txn.exec("SELECT seq FROM eraser_deletions WHERE seq = ANY(" + IdArray(seqs) +
           ") ORDER BY seq FOR UPDATE");
  ASSIGN_OR_RETURN(
      auto records,
      UpdateDeletions(applied, applied_at, excluded, [&txn](DeletionSeq seq) {
        return SelectDeletion(txn, seq);
      }));
  for (const auto& [seq, r] : records) {
    txn.exec_params0(
        "UPDATE eraser_deletions SET pending = $2, record = $3 WHERE seq = $1",
        Signed(seq.value()), r.state == DeletionState::kPending,
        pqxx::binarystring(EncodeDeletion(r)));
  }
  return OkStatus();
}

// Runs a statement that cannot run in a transaction (CREATE and DROP
// DATABASE) on the maintenance database of the server `parts` name.
Status OnServer(const SplitUrl& parts, const std::string& context,
                const std::function<std::string(pqxx::connection&)>& sql) {
  try {
    pqxx::connection conn(parts.before + "postgres" + parts.after);
    pqxx::nontransaction n(conn);
    n.exec0(sql(conn));
    return OkStatus();
  } catch (const std::exception& e) {
    return FromPg(e, context);
  }
}

}  // namespace

}  // namespace eraser::storage::internal

namespace eraser::storage {

Status CopyPostgresDatabase(const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(internal::SplitUrl source, internal::Split(from));
  ASSIGN_OR_RETURN(internal::SplitUrl target, internal::Split(to));
  if (source.before != target.before || source.after != target.after) {
    return InvalidArgumentError(
        "a copy is made on its original's server: the two URLs must differ "
        "in their database only (PostgresSiblingUrl)");
  }
  return internal::OnServer(
      source, "copy database " + source.database + " to " + target.database,
      [&](pqxx::connection& conn) {
        return "CREATE DATABASE " + conn.quote_name(target.database) +
               " TEMPLATE " + conn.quote_name(source.database);
      });
}

Status DropPostgresDatabase(const std::string& url) {
  ASSIGN_OR_RETURN(internal::SplitUrl parts, internal::Split(url));
  return internal::OnServer(
      parts, "drop database " + parts.database, [&](pqxx::connection& conn) {
        return "DROP DATABASE IF EXISTS " + conn.quote_name(parts.database) +
               " WITH (FORCE)";
      });
}

}  // namespace eraser::storage

namespace eraser::storage::internal {

class PgStore::Connection {
 public:
  explicit Connection(const std::string& url) : conn(url) {}
  pqxx::connection conn;
  // The member's lease when it was opened (Acquire): a connection opened
  // under another is not pooled.
  Duration lease{0};
};

PgStore::PgStore(std::string url) : url_(std::move(url)) {}

PgStore::~PgStore() = default;

std::unique_ptr<PgStore::Connection> PgStore::Acquire() {
  {
    MutexLock lock(&pool_mu_);
    while (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      if (c->conn.is_open() && c->lease == lease_.load()) return c;
    }
  }
  auto c = std::make_unique<Connection>(url_);
  // An acknowledged deletion must survive a crash of the server, and with
  // a synchronous standby the loss of the primary: commits wait for the
  // WAL flush on the primary and on the standbys (on). Of the operator's
  // settings only remote_apply is stronger and kept; off, local and
  // remote_write (a standby's write, not its flush) are raised to on. Set
  // for the session in every case: a session that keeps the server's value
  // takes the next one a configuration reload gives (off, say), and its
  // acknowledgements would be lost with the server (helper-48).
  pqxx::nontransaction setup(c->conn);
  const std::string sync =
      setup.exec1("SHOW synchronous_commit")[0].as<std::string>();
  setup.exec0(sync == "remote_apply" ? "SET synchronous_commit TO remote_apply"
                                     : "SET synchronous_commit TO on");
  // A member of the replicas that is paused or cut off in the middle of a
  // transaction keeps its locks while its session lives: its read of a
  // shard's samples (ACCESS SHARE) would hold every other replica's apply
  // of that shard (TRUNCATE) and, queued behind it, every read. The server
  // ends a session idle in a transaction for the lease, but for no less
  // than kMinIdleInTransaction: a scan decodes a slice between two of its
  // statements, whatever the lease. The member's next statement there
  // fails as unavailable and the pool drops the connection.
  c->lease = lease_.load();
  if (c->lease > Duration(0)) {
    const Duration idle = std::max(c->lease, kMinIdleInTransaction);
    setup.exec_params(
        "SELECT set_config('idle_in_transaction_session_timeout', $1, false)",
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(idle)
                .count()));
  }
  setup.commit();
  return c;
}

void PgStore::Release(std::unique_ptr<Connection> connection) {
  if (connection == nullptr || !connection->conn.is_open() ||
      connection->lease != lease_.load()) {
    return;
  }
  MutexLock lock(&pool_mu_);
  constexpr std::size_t kMaxIdle = 16;
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(connection));
}

Status PgStore::Transact(std::string_view context, Commit commit,
                         const Body& body, bool* committed) {
  if (committed != nullptr) *committed = false;
  const bool writes =
      commit != Commit::kSnapshot && commit != Commit::kStatement;
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> c;
    bool started = false;
    try {
      c = Acquire();
      Status s;
      if (commit == Commit::kStatement) {
        pqxx::nontransaction txn(c->conn);
        s = body(txn);  // not "started": nothing to undo if it fails
      } else if (commit == Commit::kSnapshot) {
        pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> txn(c->conn);
        started = true;
        s = body(txn);
        if (s.ok()) txn.commit();
      } else {
        pqxx::work txn(c->conn);
        started = true;
        if (commit == Commit::kLazy) {
          txn.exec0("SET LOCAL synchronous_commit TO off");
        }
        s = body(txn);
        if (s.ok()) {
          txn.commit();
          if (committed != nullptr) *committed = true;
          if (commit == Commit::kDurable) ++durable_commits_;
        }
      }
      Release(std::move(c));
      if (writes && s.ok() && failing_.exchange(false)) ++resumes_;
      return s;
    } catch (const pqxx::in_doubt_error& e) {
      return Failed(FromPg(e, context), writes);
    } catch (const pqxx::broken_connection& e) {
      // A pooled connection that the server closed (a restart) fails as
      // its transaction begins (or, for a lone statement, as it runs). The
      // other idle connections went with the same server: drop them all and
      // open a new one, once, so that the first call after a restart
      // succeeds instead of finding the next dead connection.
      if (!started && attempt == 0) {
        std::vector<std::unique_ptr<Connection>> dead;
        {
          MutexLock lock(&pool_mu_);
          dead.swap(idle_);
        }
        continue;
      }
      return Failed(FromPg(e, context), writes);
    } catch (const std::exception& e) {
      // The transaction was rolled back; the connection stays usable.
      Release(std::move(c));
      return Failed(FromPg(e, context), writes);
    }
  }
}

uint64_t PgStore::NoteSeq(uint64_t seq) {
  uint64_t known = last_seq_.load();
  while (known < seq && !last_seq_.compare_exchange_weak(known, seq)) {
  }
  return std::max(known, seq);
}

Status PgStore::Failed(Status status, bool write) {
  if (write) {
    ++failed_writes_;
    failing_ = true;
  }
  return status;
}

StatusOr<bool> PgStore::ShardTablesExist(ShardId shard) {
  {
    MutexLock lock(&shards_mu_);
    if (shards_with_tables_.count(shard.value()) > 0) return true;
  }
  bool exists = false;
  RETURN_IF_ERROR(
      Transact("look up the tables of shard " + std::to_string(shard.value()),
               Commit::kSnapshot, [&](pqxx::transaction_base& txn) {
                 exists = !TableMissing(txn, SamplesTable(shard));
                 return OkStatus();
               }));
  if (exists) {
    MutexLock lock(&shards_mu_);
    shards_with_tables_.insert(shard.value());
  }
  return exists;
}

Status PgStore::Migrate(bool create_if_missing) {
  return Transact(
      "schema of " + RedactUrl(url_), Commit::kDurable,
      [&](pqxx::transaction_base& txn) -> Status {
        const int server =
            txn.exec1("SELECT current_setting('server_version_num')::int")[0]
                .as<int>();
        if (server < kMinServerVersion) {
          return FailedPreconditionError(
              RedactUrl(url_) + " is PostgreSQL " +
              txn.exec1("SHOW server_version")[0].as<std::string>() +
              "; eraser needs PostgreSQL 14 or later");
        }
        txn.exec_params("SELECT pg_advisory_xact_lock($1)", kSchemaLock);
        int version = 0;
        if (!TableMissing(txn, "eraser_schema")) {
          version = txn.exec1("SELECT version FROM eraser_schema")[0].as<int>();
        } else if (!create_if_missing) {
          return NotFoundError(RedactUrl(url_) + " holds no eraser store");
        } else {
          // A store is created in an empty database only, never among an
          // application's own tables (an extension's, such as PostGIS's
          // spatial_ref_sys, do not count).
          const int64_t others =
              txn.exec1(
                     "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                     "n.oid = c.relnamespace WHERE n.nspname = "
                     "current_schema() AND c.relkind IN ('r', 'p', 'v', "
                     "'m', 'f', 'S') AND NOT EXISTS (SELECT 1 FROM pg_depend "
                     "d WHERE d.classid = 'pg_class'::regclass AND d.objid = "
                     "c.oid AND d.deptype = 'e')")[0]
                  .as<int64_t>();
          if (others > 0) {
            return FailedPreconditionError(
                RedactUrl(url_) + " holds " + std::to_string(others) +
                " other table(s) and no eraser store: create an empty "
                "database for eraser");
          }
        }
        if (version > kSchemaVersion) {
          return FailedPreconditionError(
              RedactUrl(url_) + " uses eraser schema version " +
              std::to_string(version) + "; this build knows versions up to " +
              std::to_string(kSchemaVersion));
        }
        for (int v = version + 1; v <= kSchemaVersion; ++v) {
          txn.exec0(kMigrations[v - 1]);
          txn.exec_params0("UPDATE eraser_schema SET version = $1", v);
        }
        return OkStatus();
      });
}

StatusOr<std::unique_ptr<Store>> PgStore::Open(const StoreOptions& options) {
  // A malformed URL or an option libpq does not know is the caller's
  // mistake (kInvalidArgument), not an unreachable server.
  RETURN_IF_ERROR(CheckUrl(options.path));
  std::unique_ptr<PgStore> store(new PgStore(options.path));
  RETURN_IF_ERROR(store->Migrate(options.create_if_missing));
  store->LastDeletionSeq();
  return std::unique_ptr<Store>(std::move(store));
}

Status PgStore::EnsureShardTables(const std::vector<ShardId>& shards) {
  std::vector<ShardId> missing;
  {
    MutexLock lock(&shards_mu_);
    for (ShardId s : shards) {
      if (shards_with_tables_.count(s.value()) == 0) missing.push_back(s);
    }
  }
  if (missing.empty()) return OkStatus();
  RETURN_IF_ERROR(Transact(
      "create shard tables", Commit::kDurable,
      [&](pqxx::transaction_base& txn) {
        txn.exec_params("SELECT pg_advisory_xact_lock($1)", kSchemaLock);
        for (ShardId s : missing) {
          const std::string samples = SamplesTable(s);
          const std::string checkpoints = CheckpointsTable(s);
          // Features and blobs uncompressed (EXTERNAL): erased bytes can be
          // searched for in the files, and they barely compress anyway. No
          // planner statistics of what an apply erases (STATISTICS 0):
          // ANALYZE would copy values into pg_statistic, which keeps them.
          txn.exec0("CREATE TABLE IF NOT EXISTS " + samples +
                    " (slice integer NOT NULL, id bigint NOT NULL,"
                    " label integer NOT NULL, owner bigint NOT NULL,"
                    " features bytea NOT NULL, PRIMARY KEY (slice, id));"
                    "ALTER TABLE " +
                    samples +
                    " ALTER COLUMN features SET STORAGE EXTERNAL,"
                    " ALTER COLUMN features SET STATISTICS 0,"
                    " ALTER COLUMN label SET STATISTICS 0;"
                    "CREATE TABLE IF NOT EXISTS " +
                    checkpoints +
                    " (slice integer PRIMARY KEY, version bigint NOT NULL,"
                    " fingerprint bigint NOT NULL, blob bytea NOT NULL);"
                    "ALTER TABLE " +
                    checkpoints +
                    " ALTER COLUMN blob SET STORAGE EXTERNAL,"
                    " ALTER COLUMN blob SET STATISTICS 0;");
        }
        return OkStatus();
      }));
  MutexLock lock(&shards_mu_);
  for (ShardId s : missing) shards_with_tables_.insert(s.value());
  return OkStatus();
}

// ---- meta ------------------------------------------------------------------

Status PgStore::InitConfig(const StoreConfig& config) {
  if (config.empty()) return InvalidArgumentError("empty configuration");
  return Transact(
      "store config", Commit::kDurable, [&](pqxx::transaction_base& txn) {
        txn.exec0("LOCK TABLE eraser_config IN EXCLUSIVE MODE");
        StoreConfig stored;
        for (const pqxx::row& row :
             txn.exec("SELECT key, value FROM eraser_config")) {
          stored.emplace(row[0].as<std::string>(), row[1].as<std::string>());
        }
        if (!stored.empty()) return CompareConfig(stored, config);
        for (const auto& [key, value] : config) {
          txn.exec_params0("INSERT INTO eraser_config VALUES ($1, $2)", key,
                           value);
        }
        return OkStatus();
      });
}

StatusOr<StoreConfig> PgStore::ReadConfig() {
  StoreConfig config;
  RETURN_IF_ERROR(Transact(
      "read config", Commit::kSnapshot, [&](pqxx::transaction_base& txn) {
        config.clear();
        for (const pqxx::row& row :
             txn.exec("SELECT key, value FROM eraser_config")) {
          config.emplace(row[0].as<std::string>(), row[1].as<std::string>());
        }
        return OkStatus();
      }));
  if (config.empty()) return NotFoundError("no configuration stored");
  return config;
}

Status PgStore::PutMeta(const std::string& key, const std::string& value) {
  return Transact(
      "put meta " + key, Commit::kDurable, [&](pqxx::transaction_base& txn) {
        txn.exec_params0(
            "INSERT INTO eraser_meta VALUES ($1, $2) ON CONFLICT (key) DO "
            "UPDATE SET value = EXCLUDED.value",
            key, pqxx::binarystring(value));
        return OkStatus();
      });
}

StatusOr<std::string> PgStore::GetMeta(const std::string& key) {
  std::optional<std::string> value;
  RETURN_IF_ERROR(Transact(
      "read meta " + key, Commit::kStatement, [&](pqxx::transaction_base& txn) {
        const pqxx::result r = txn.exec_params(
            "SELECT value FROM eraser_meta WHERE key = $1", key);
        if (!r.empty()) value = Bytes(r[0][0]);
        return OkStatus();
      }));
  if (!value.has_value()) return NotFoundError("meta " + key + " not found");
  return *value;
}

Status PgStore::EraseInMeta(
    const std::string& key,
    const std::function<StatusOr<std::string>(const std::string&)>& edit) {
  return Transact(
      "erase in meta " + key, Commit::kDurable,
      [&](pqxx::transaction_base& txn) -> Status {
        // The rewrite's TRUNCATE needs this lock: taken first, so that two
        // erasures cannot each hold a weaker one and wait for the other.
        // Readers wait for the commit (a statement takes its snapshot after
        // its lock) and then see the edited value.
        // Bounded: a session that holds a lock on the table (a pg_dump, a
        // transaction left open) makes the deletion fail, not hang.
        txn.exec0("SET LOCAL lock_timeout = '10s'");
        txn.exec0("LOCK TABLE eraser_meta IN ACCESS EXCLUSIVE MODE");
        const pqxx::result r = txn.exec_params(
            "SELECT value FROM eraser_meta WHERE key = $1", key);
        if (r.empty()) return NotFoundError("meta " + key + " not found");
        const std::string current = Bytes(r[0][0]);
        ASSIGN_OR_RETURN(const std::string edited, edit(current));
        if (edited == current) return OkStatus();
        txn.exec_params0("UPDATE eraser_meta SET value = $2 WHERE key = $1",
                         key, pqxx::binarystring(edited));
        // An updated row's old version stays in the file (and its TOAST
        // table's) until VACUUM reuses the space: the table is rewritten.
        Rewrite(txn, "eraser_meta", "true");
        return OkStatus();
      });
}

// ---- samples ---------------------------------------------------------------

Status PgStore::IngestSamples(const std::vector<SampleView>& samples) {
  std::vector<ShardId> shards;
  for (const SampleView& s : samples) shards.push_back(s.shard);
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  RETURN_IF_ERROR(EnsureShardTables(shards));
  constexpr std::size_t kChunk = 2000;
  return Transact(
      "ingest", Commit::kDurable, [&](pqxx::transaction_base& txn) -> Status {
        std::unordered_map<uint64_t, SampleLocation> stored;
        for (std::size_t begin = 0; begin < samples.size(); begin += kChunk) {
          std::vector<uint64_t> ids;
          for (std::size_t i = begin;
               i < std::min(samples.size(), begin + kChunk); ++i) {
            ids.push_back(samples[i].id.value());
          }
          for (const pqxx::row& row :
               txn.exec(std::string("SELECT ") + kLocationColumns +
                        " FROM eraser_sample_index WHERE id = ANY(" +
                        IdArray(ids) + ")")) {
            const SampleLocation l = LocationOf(row);
            stored[l.id.value()] = l;
          }
        }
        ASSIGN_OR_RETURN(std::vector<bool> skip,
                         PlanIngest(samples, [&stored](SampleId id) {
                           auto it = stored.find(id.value());
                           return StatusOr<std::optional<SampleLocation>>(
                               it == stored.end() ? std::nullopt
                                                  : std::optional(it->second));
                         }));
        for (std::size_t begin = 0; begin < samples.size(); begin += kChunk) {
          std::string index;
          std::map<uint32_t, SampleRows> rows;  // by shard
          for (std::size_t i = begin;
               i < std::min(samples.size(), begin + kChunk); ++i) {
            if (skip[i]) continue;
            const SampleView& s = samples[i];
            const std::string id = std::to_string(Signed(s.id.value()));
            const std::string owner = std::to_string(Signed(s.owner.value()));
            if (!index.empty()) index += ',';
            index += "(" + id + "," + std::to_string(s.shard.value()) + "," +
                     std::to_string(s.slice) + "," + owner + ",false)";
            rows[s.shard.value()].Add(s);
          }
          if (index.empty()) continue;
          txn.exec0("INSERT INTO eraser_sample_index VALUES " + index +
                    " ON CONFLICT (id) DO NOTHING");
          for (auto& [shard, values] : rows) {
            values.Insert(txn, SamplesTable(ShardId(shard)));
          }
        }
        return OkStatus();
      });
}

namespace {

// What one FETCH of a scan may bring, well within a Unix or TCP socket's
// buffers (about 200 KiB by default on Linux).
constexpr std::size_t kScanBatchBytes = 64 * 1024;

}  // namespace

Status PgStore::ScanShard(ShardId shard, uint32_t first_slice,
                          uint32_t end_slice,
                          const std::function<Status(const SampleView&)>& fn) {
  if (first_slice >= end_slice) return OkStatus();
  ASSIGN_OR_RETURN(bool exists, ShardTablesExist(shard));
  if (!exists) return OkStatus();
  const std::string table = SamplesTable(shard);
  // One snapshot, read a slice at a time (a slice's samples in memory).
  return Transact(
      "scan shard " + std::to_string(shard.value()), Commit::kSnapshot,
      [&](pqxx::transaction_base& txn) -> Status {
        LockForRead(txn, table);
        std::vector<uint32_t> slices;
        for (const pqxx::row& row : txn.exec_params(
                 "SELECT DISTINCT slice FROM " + table +
                     " WHERE slice >= $1 AND slice < $2 ORDER BY slice",
                 static_cast<int64_t>(first_slice),
                 static_cast<int64_t>(end_slice))) {
          slices.push_back(row[0].as<uint32_t>());
        }
        // Each slice through a cursor, fetched in batches of about
        // kScanBatchBytes: a member paused while the server still writes
        // it a result larger than the sockets' buffers kept its statement
        // running, and its lock, for as long as it stayed paused (seen in
        // CI). A batch that fits is written whole; the paused member's
        // session is then idle in its transaction, which the server ends
        // after idle_in_transaction_session_timeout (Acquire).
        for (uint32_t slice : slices) {
          txn.exec0(
              "DECLARE eraser_scan NO SCROLL CURSOR FOR SELECT id, label, "
              "owner, features FROM " +
              table + " WHERE slice = " + std::to_string(slice) +
              " ORDER BY id");
          std::size_t rows_per_fetch = 1;  // until a row's size is known
          while (true) {
            const pqxx::result r =
                txn.exec("FETCH " + std::to_string(rows_per_fetch) +
                         " FROM eraser_scan");
            if (r.empty()) break;
            std::size_t row_bytes = 64;
            for (const pqxx::row& row : r) {
              const pqxx::binarystring features(row[3]);
              // bytea comes as hex text: two characters a byte.
              row_bytes = std::max(row_bytes, 64 + 2 * features.size());
              SampleView view;
              view.id = SampleId(Unsigned(row[0]));
              view.shard = shard;
              view.slice = slice;
              view.label = row[1].as<uint32_t>();
              view.owner = OwnerId(Unsigned(row[2]));
              view.features = features.data();
              view.feature_size = features.size();
              RETURN_IF_ERROR(fn(view));
            }
            rows_per_fetch =
                std::clamp<std::size_t>(kScanBatchBytes / row_bytes, 1, 4096);
          }
          txn.exec0("CLOSE eraser_scan");
        }
        return OkStatus();
      });
}

StatusOr<SampleLocation> PgStore::LookupSample(SampleId id) {
  std::optional<SampleLocation> location;
  RETURN_IF_ERROR(Transact("read " + SampleName(id), Commit::kStatement,
                           [&](pqxx::transaction_base& txn) {
                             const pqxx::result r = txn.exec_params(
                                 std::string("SELECT ") + kLocationColumns +
                                     " FROM eraser_sample_index WHERE id = $1",
                                 Signed(id.value()));
                             if (!r.empty()) location = LocationOf(r[0]);
                             return OkStatus();
                           }));
  if (!location.has_value())
    return NotFoundError(SampleName(id) + " not found");
  return *location;
}

StatusOr<std::vector<SampleLocation>> PgStore::OwnerSamples(OwnerId owner) {
  std::vector<SampleLocation> out;
  RETURN_IF_ERROR(Transact(
      "read owner index", Commit::kSnapshot, [&](pqxx::transaction_base& txn) {
        out.clear();
        for (const pqxx::row& row : txn.exec_params(
                 std::string("SELECT ") + kLocationColumns +
                     " FROM eraser_sample_index WHERE owner = $1 ORDER BY id",
                 Signed(owner.value()))) {
          out.push_back(LocationOf(row));
        }
        return OkStatus();
      }));
  if (out.empty()) {
    return NotFoundError("owner " + std::to_string(owner.value()) +
                         " owns no samples");
  }
  return out;
}

StatusOr<uint64_t> PgStore::CountSamples(ShardId shard) {
  ASSIGN_OR_RETURN(bool exists, ShardTablesExist(shard));
  if (!exists) return 0;
  uint64_t count = 0;
  const std::string table = SamplesTable(shard);
  RETURN_IF_ERROR(Transact(
      "count samples", Commit::kSnapshot, [&](pqxx::transaction_base& txn) {
        LockForRead(txn, table);
        count = Unsigned(txn.exec1("SELECT count(*) FROM " + table)[0]);
        return OkStatus();
      }));
  return count;
}

// ---- deletion log ----------------------------------------------------------

StatusOr<DeletionSeq> PgStore::AppendDeletion(
    const DeletionTarget& target, const std::vector<SampleLocation>& samples,
    TimePoint arrival) {
  DeletionRecord record = NewDeletion(target, samples, arrival);
  // The head row is locked until the commit, so numbers are issued in the
  // order they become durable, by every process sharing the database, with
  // none skipped or reused.
  RETURN_IF_ERROR(Transact(
      "append deletion " + target.ToString(), Commit::kDurable,
      [&](pqxx::transaction_base& txn) {
        record.seq = DeletionSeq(Unsigned(txn.exec1(
            "UPDATE eraser_log_head SET last = last + 1 RETURNING last")[0]));
        txn.exec_params0(
            "INSERT INTO eraser_deletions (seq, pending, target, record) "
            "VALUES ($1, true, $2, $3)",
            Signed(record.seq.value()), target.ToString(),
            pqxx::binarystring(EncodeDeletion(record)));
        // Delivered to the listening replicas when this commits.
        txn.exec_params("SELECT pg_notify($1, $2)", kDeletionsChannel,
                        std::to_string(record.seq.value()));
        return OkStatus();
      }));
  NoteSeq(record.seq.value());
  return record.seq;
}

StatusOr<std::vector<DeletionRecord>> PgStore::PendingDeletions() {
  std::vector<DeletionRecord> out;
  RETURN_IF_ERROR(Transact(
      "scan deletion log", Commit::kSnapshot, [&](pqxx::transaction_base& txn) {
        return DecodeDeletions(
            txn.exec("SELECT seq, record FROM eraser_deletions WHERE pending "
                     "ORDER BY seq"),
            &out);
      }));
  return out;
}

DeletionSeq PgStore::LastDeletionSeq() {
  uint64_t last = 0;
  const Status s = Transact(
      "read the deletion log's head", Commit::kStatement,
      [&](pqxx::transaction_base& txn) {
        last = Unsigned(txn.exec1("SELECT last FROM eraser_log_head")[0]);
        return OkStatus();
      });
  // Unreachable: the last number this process has seen.
  return DeletionSeq(s.ok() ? NoteSeq(last) : last_seq_.load());
}

StatusOr<std::vector<DeletionRecord>> PgStore::DeletionsAfter(DeletionSeq seq) {
  std::vector<DeletionRecord> out;
  RETURN_IF_ERROR(Transact(
      "read the deletion log after " + std::to_string(seq.value()),
      Commit::kStatement, [&](pqxx::transaction_base& txn) {
        return DecodeDeletions(
            txn.exec_params("SELECT seq, record FROM eraser_deletions WHERE "
                            "seq > $1 ORDER BY seq",
                            Signed(seq.value())),
            &out);
      }));
  return out;
}

StatusOr<DeletionRecord> PgStore::GetDeletion(DeletionSeq seq) {
  std::optional<StatusOr<DeletionRecord>> record;
  RETURN_IF_ERROR(Transact("read deletion " + std::to_string(seq.value()),
                           Commit::kStatement,
                           [&](pqxx::transaction_base& txn) {
                             record = SelectDeletion(txn, seq);
                             return OkStatus();
                           }));
  return std::move(*record);
}

StatusOr<DeletionSeq> PgStore::FindDeletion(const DeletionTarget& target) {
  std::optional<DeletionSeq> seq;
  RETURN_IF_ERROR(Transact("find the deletion of " + target.ToString(),
                           Commit::kStatement,
                           [&](pqxx::transaction_base& txn) {
                             const pqxx::row newest = txn.exec_params1(
                                 "SELECT max(seq) FROM eraser_deletions WHERE "
                                 "target = $1",
                                 target.ToString());
                             if (!newest[0].is_null())
                               seq = DeletionSeq(Unsigned(newest[0]));
                             return OkStatus();
                           }));
  if (!seq) return NotFoundError("no deletion of " + target.ToString());
  return *seq;
}

Status PgStore::MarkApplied(const std::vector<DeletionSeq>& seqs,
                            TimePoint applied_at) {
  return Transact("mark deletions applied", Commit::kDurable,
                  [&](pqxx::transaction_base& txn) {
                    return UpdateDeletionRecords(txn, seqs, applied_at, {});
                  });
}

Status PgStore::RecordExclusions(
    const std::vector<ApplyBatch::Exclusion>& excluded, TimePoint applied_at) {
  return Transact("record exclusions", Commit::kDurable,
                  [&](pqxx::transaction_base& txn) {
                    return UpdateDeletionRecords(txn, {}, applied_at, excluded);
                  });
}

// ---- checkpoints -----------------------------------------------------------

Status PgStore::PutCheckpoint(const Checkpoint& c) {
  RETURN_IF_ERROR(EnsureShardTables({c.shard}));
  return Transact("put " + CheckpointName(c.shard, c.slice), Commit::kLazy,
                  [&](pqxx::transaction_base& txn) {
                    UpsertCheckpoint(txn, c);
                    return OkStatus();
                  });
}

StatusOr<Checkpoint> PgStore::GetCheckpoint(ShardId shard, uint32_t slice) {
  std::optional<Checkpoint> checkpoint;
  ASSIGN_OR_RETURN(bool exists, ShardTablesExist(shard));
  const std::string table = CheckpointsTable(shard);
  RETURN_IF_ERROR(Transact("read " + CheckpointName(shard, slice),
                           Commit::kSnapshot, [&](pqxx::transaction_base& txn) {
                             checkpoint.reset();
                             if (!exists) return OkStatus();
                             LockForRead(txn, table);
                             const pqxx::result r = txn.exec_params(
                                 "SELECT version, fingerprint, blob FROM " +
                                     table + " WHERE slice = $1",
                                 static_cast<int64_t>(slice));
                             if (r.empty()) return OkStatus();
                             Checkpoint c;
                             c.shard = shard;
                             c.slice = slice;
                             c.version = Unsigned(r[0][0]);
                             c.data_fingerprint = Unsigned(r[0][1]);
                             c.blob = Bytes(r[0][2]);
                             checkpoint = std::move(c);
                             return OkStatus();
                           }));
  if (!checkpoint.has_value()) {
    return NotFoundError(CheckpointName(shard, slice) + " not found");
  }
  return std::move(*checkpoint);
}

Status PgStore::DeleteCheckpoints(ShardId shard, uint32_t first_slice) {
  ASSIGN_OR_RETURN(bool exists, ShardTablesExist(shard));
  if (!exists) return OkStatus();
  const std::string table = CheckpointsTable(shard);
  return Transact(
      "delete checkpoints of shard " + std::to_string(shard.value()),
      Commit::kLazy, [&](pqxx::transaction_base& txn) {
        txn.exec_params0("DELETE FROM " + table + " WHERE slice >= $1",
                         static_cast<int64_t>(first_slice));
        return OkStatus();
      });
}

// ---- unlearning ------------------------------------------------------------

Status PgStore::Apply(const ApplyBatch& batch, bool* committed) {
  std::map<uint32_t, std::vector<const Checkpoint*>> checkpoints;
  std::vector<ShardId> checkpoint_shards;
  for (const Checkpoint& c : batch.checkpoints) {
    if (checkpoints[c.shard.value()].empty()) {
      checkpoint_shards.push_back(c.shard);
    }
    checkpoints[c.shard.value()].push_back(&c);
  }
  RETURN_IF_ERROR(EnsureShardTables(checkpoint_shards));
  return Transact(
      "apply", Commit::kDurable,
      [&](pqxx::transaction_base& txn) -> Status {
        RETURN_IF_ERROR(UpdateDeletionRecords(
            txn, batch.applied, batch.applied_at, batch.excluded));
        // Erase: the index entries stay, marked; the shard tables lose the
        // rows, rewritten.
        std::map<uint32_t, std::vector<uint64_t>> erase;  // shard -> ids
        std::vector<uint64_t> erased_ids;
        for (SampleId id : batch.erase) {
          const pqxx::result r = txn.exec_params(
              std::string("SELECT ") + kLocationColumns +
                  " FROM eraser_sample_index WHERE id = $1 FOR UPDATE",
              Signed(id.value()));
          if (r.empty()) return NotFoundError(SampleName(id) + " not found");
          const SampleLocation l = LocationOf(r[0]);
          if (l.erased) continue;
          erase[l.shard.value()].push_back(id.value());
          erased_ids.push_back(id.value());
        }
        if (!erased_ids.empty()) {
          txn.exec0(
              "UPDATE eraser_sample_index SET erased = true WHERE id = ANY(" +
              IdArray(erased_ids) + ")");
        }
        for (const auto& [shard, ids] : erase) {
          Rewrite(txn, SamplesTable(ShardId(shard)),
                  "NOT (id = ANY(" + IdArray(ids) + "))");
        }
        // Only a newer model replaces a stored one (another engine may have
        // committed one since this retraining read the shard).
        for (const auto& [shard, list] : checkpoints) {
          const std::string table = CheckpointsTable(ShardId(shard));
          for (const Checkpoint* c : list) {
            RETURN_IF_ERROR(CheckNewer(
                *c, [&](ShardId, uint32_t slice) -> StatusOr<Checkpoint> {
                  const pqxx::result r =
                      txn.exec_params("SELECT version FROM " + table +
                                          " WHERE slice = $1 FOR UPDATE",
                                      static_cast<int64_t>(slice));
                  if (r.empty()) return NotFoundError("no checkpoint");
                  Checkpoint stored;
                  stored.version = Unsigned(r[0][0]);
                  return stored;
                }));
          }
        }
        // Checkpoints: the replaced ones leave with the old file.
        for (const auto& [shard, list] : checkpoints) {
          std::vector<uint64_t> slices;
          for (const Checkpoint* c : list) slices.push_back(c->slice);
          const std::string table = CheckpointsTable(ShardId(shard));
          Rewrite(txn, table, "NOT (slice = ANY(" + IdArray(slices) + "))");
          for (const Checkpoint* c : list) UpsertCheckpoint(txn, *c);
        }
        return OkStatus();
      },
      committed);
}

// A claim is a session-level advisory lock on a connection of its own: it
// ends when the claim is destroyed, or when the session does (the process
// died, or the server restarted). Taken by a member of the replicas (Join),
// the session also ends when it has been idle for a lease
// (idle_session_timeout, enforced by the server): the claim pings it every
// third of the lease, so a paused or cut-off holder loses the claim within
// its lease, and another replica takes the job over. (A holder that wakes
// up and commits late is refused: only a newer model commits.)
class PgClaim final : public Store::ShardClaim {
 public:
  PgClaim(std::unique_ptr<pqxx::connection> conn, ShardId shard, Duration lease)
      : conn_(std::move(conn)), shard_(shard) {
    if (lease > Duration(0)) {
      pinger_ = std::thread([this, period = lease / 3] { Ping(period); });
    }
  }
  ~PgClaim() override {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    if (pinger_.joinable()) pinger_.join();
    try {
      pqxx::nontransaction n(*conn_);
      n.exec_params("SELECT pg_advisory_unlock($1, $2)", kClaimSpace,
                    static_cast<int32_t>(shard_.value()));
    } catch (const std::exception&) {
      // The session is gone, and its lock with it.
    }
  }

 private:
  void Ping(Duration period) {
    MutexLock lock(&mu_);
    while (!stop_) {
      const TimePoint until = SystemClock::Default()->Now() + period;
      while (!stop_ && cv_.WaitUntil(&mu_, *SystemClock::Default(), until)) {
      }
      if (stop_) return;
      try {
        pqxx::nontransaction n(*conn_);
        n.exec("SELECT 1");
      } catch (const std::exception&) {
        return;  // the session, and the claim, are gone
      }
    }
  }

  std::unique_ptr<pqxx::connection> conn_;
  const ShardId shard_;
  Mutex mu_;  // held by the pinger while it uses conn_
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread pinger_;
};

StatusOr<std::unique_ptr<Store::ShardClaim>> PgStore::TryClaimShard(
    ShardId shard) {
  try {
    auto conn = std::make_unique<pqxx::connection>(url_);
    const Duration lease = lease_.load();
    bool got = false;
    {
      // Ended before the claim's pinger may use the connection.
      pqxx::nontransaction n(*conn);
      if (lease > Duration(0)) {
        n.exec_params(
            "SELECT set_config('idle_session_timeout', $1, false)",
            std::to_string(
                std::chrono::duration_cast<std::chrono::milliseconds>(lease)
                    .count()));
      }
      got = n.exec_params1("SELECT pg_try_advisory_lock($1, $2)", kClaimSpace,
                           static_cast<int32_t>(shard.value()))[0]
                .as<bool>();
    }
    if (!got) return std::unique_ptr<ShardClaim>();
    return std::unique_ptr<ShardClaim>(
        std::make_unique<PgClaim>(std::move(conn), shard, lease));
  } catch (const std::exception& e) {
    return FromPg(e, "claim shard " + std::to_string(shard.value()));
  }
}

// ---- replicas --------------------------------------------------------------

// A membership is a row of eraser_replicas, renewed and reported through the
// store's pool, and a connection of its own that listens for notifications
// (the lease thread's only). Expiry is decided on the database's clock
// alone (clock_timestamp()), so members' clocks never meet.
class PgMembership final : public Store::Membership {
 public:
  PgMembership(PgStore* store, Duration lease)
      : store_(store), lease_seconds_(ToSeconds(lease)) {}
  ~PgMembership() override;

  void Leave() override;
  StatusOr<Renewal> Renew(DeletionSeq registered) override;
  Status Report(DeletionSeq registered) override;
  StatusOr<bool> AwaitDeletions(Duration timeout) override;
  Status AwaitRegistered(DeletionSeq seq, Duration timeout) override;
  int live_members() const override { return live_.load(); }

 private:
  // Calls `fn` when its channel is notified (inside await_notification).
  class Receiver final : public pqxx::notification_receiver {
   public:
    Receiver(pqxx::connection_base& c, const std::string& channel,
             std::function<void()> fn)
        : pqxx::notification_receiver(c, channel), fn_(std::move(fn)) {}
    void operator()(const std::string&, int) override { fn_(); }

   private:
    std::function<void()> fn_;
  };
  void CloseListener();

  PgStore* const store_;
  const double lease_seconds_;
  std::atomic<int64_t> id_{0};  // 0 until the first renewal joined
  std::atomic<int> live_{0};
  // The lease thread's.
  std::unique_ptr<pqxx::connection> listen_;
  std::unique_ptr<Receiver> on_deletion_;
  std::unique_ptr<Receiver> on_registered_;
  bool deletion_notified_ = false;
  // Registrations reported by any member, for AwaitRegistered.
  Mutex mu_;
  CondVar registered_cv_;
  uint64_t registrations_ GUARDED_BY(mu_) = 0;
};

PgMembership::~PgMembership() {
  CloseListener();
  Leave();
}

void PgMembership::Leave() {
  const int64_t id = id_.exchange(0);
  if (id == 0) return;
  // Acknowledgements stop waiting for this member at once.
  store_
      ->Transact("leave the replicas", PgStore::Commit::kDurable,
                 [&](pqxx::transaction_base& txn) {
                   txn.exec_params0("DELETE FROM eraser_replicas WHERE id = $1",
                                    id);
                   return OkStatus();
                 })
      .IgnoreError();  // otherwise its lease runs out
}

void PgMembership::CloseListener() {
  on_deletion_.reset();
  on_registered_.reset();
  listen_.reset();
}

StatusOr<Store::Membership::Renewal> PgMembership::Renew(
    DeletionSeq registered) {
  Renewal renewal;
  int64_t id = id_.load();
  RETURN_IF_ERROR(store_->Transact(
      "renew this replica's lease", PgStore::Commit::kDurable,
      [&](pqxx::transaction_base& txn) -> Status {
        renewal = Renewal();
        // The lease in seconds is always parameter $3.
        const std::string until =
            "clock_timestamp() + make_interval(secs => $3)";
        pqxx::result r;
        if (id != 0) {
          // Continued only if the lease had not run out: otherwise an
          // acknowledgement may have gone ahead without this member.
          r = txn.exec_params(
              "UPDATE eraser_replicas SET lease_until = " + until +
                  ", registered = greatest(registered, $2) WHERE id = $1 AND "
                  "lease_until > "
                  "clock_timestamp() RETURNING id",
              id, Signed(registered.value()), lease_seconds_);
          renewal.continued = !r.empty();
          if (r.empty()) {
            r = txn.exec_params(
                "UPDATE eraser_replicas SET lease_until = " + until +
                    ", registered = greatest(registered, $2) WHERE id = $1 "
                    "RETURNING id",
                id, Signed(registered.value()), lease_seconds_);
          }
        }
        if (r.empty()) {
          // Joining (or joining again after a lapse so long that another
          // member's join removed the row).
          txn.exec0(
              "DELETE FROM eraser_replicas WHERE lease_until < "
              "clock_timestamp() - interval '1 hour'");
          char host[256] = {};
          gethostname(host, sizeof(host) - 1);
          r = txn.exec_params(
              "INSERT INTO eraser_replicas (lease_until, registered, host, "
              "pid) VALUES (" +
                  until + ", $1, $2, $4) RETURNING id",
              Signed(registered.value()), std::string(host), lease_seconds_,
              static_cast<int>(getpid()));
        }
        id = r[0][0].as<int64_t>();
        const pqxx::row head = txn.exec1(
            "SELECT (SELECT last FROM eraser_log_head), (SELECT count(*) "
            "FROM eraser_replicas WHERE lease_until > clock_timestamp())");
        renewal.log_head = DeletionSeq(Unsigned(head[0]));
        live_ = head[1].as<int>();
        return OkStatus();
      }));
  id_ = id;
  store_->NoteSeq(renewal.log_head.value());
  return renewal;
}

Status PgMembership::Report(DeletionSeq registered) {
  if (id_.load() == 0) return FailedPreconditionError("not a member yet");
  // Lazily committed: a report lost in a crash of the server only lowers
  // what this member is known to have registered, which delays
  // acknowledgements and never hastens one.
  return store_->Transact(
      "report registered deletions", PgStore::Commit::kLazy,
      [&](pqxx::transaction_base& txn) {
        // Never lowered: a late report must not undo a newer one.
        txn.exec_params0(
            "UPDATE eraser_replicas SET registered = greatest(registered, $2) "
            "WHERE id = $1",
            id_.load(), Signed(registered.value()));
        txn.exec_params("SELECT pg_notify($1, $2)", kRegisteredChannel,
                        std::to_string(id_.load()));
        return OkStatus();
      });
}

StatusOr<bool> PgMembership::AwaitDeletions(Duration timeout) {
  bool fresh = false;
  try {
    if (listen_ == nullptr || !listen_->is_open()) {
      CloseListener();
      listen_ = std::make_unique<pqxx::connection>(store_->url_);
      on_deletion_ = std::make_unique<Receiver>(
          *listen_, kDeletionsChannel, [this] { deletion_notified_ = true; });
      on_registered_ =
          std::make_unique<Receiver>(*listen_, kRegisteredChannel, [this] {
            MutexLock lock(&mu_);
            ++registrations_;
            registered_cv_.SignalAll();
          });
      // Whatever was notified before LISTEN took effect was missed.
      fresh = true;
    }
    deletion_notified_ = false;
    const int64_t micros = std::max<int64_t>(
        0,
        std::chrono::duration_cast<std::chrono::microseconds>(timeout).count());
    if (!fresh) {
      listen_->await_notification(static_cast<long>(micros / 1000000),
                                  static_cast<long>(micros % 1000000));
    }
    listen_->get_notifs();
    return fresh || deletion_notified_;
  } catch (const std::exception& e) {
    CloseListener();
    return FromPg(e, "listen for deletions");
  }
}

Status PgMembership::AwaitRegistered(DeletionSeq seq, Duration timeout) {
  const TimePoint deadline = SystemClock::Default()->Now() + timeout;
  while (true) {
    uint64_t seen;
    {
      MutexLock lock(&mu_);
      seen = registrations_;
    }
    int64_t behind = 0;
    int live = 0;
    double soonest = 0;  // seconds until the first lagging lease runs out
    RETURN_IF_ERROR(store_->Transact(
        "wait for the replicas to register deletion " +
            std::to_string(seq.value()),
        PgStore::Commit::kStatement, [&](pqxx::transaction_base& txn) {
          const pqxx::row row = txn.exec_params1(
              "SELECT count(*) FILTER (WHERE registered < $2), count(*), "
              "coalesce(min(extract(epoch FROM lease_until - "
              "clock_timestamp())) FILTER (WHERE registered < $2), 0) "
              "FROM eraser_replicas WHERE lease_until > clock_timestamp() "
              "AND id <> $1",
              id_.load(), Signed(seq.value()));
          behind = row[0].as<int64_t>();
          live = static_cast<int>(row[1].as<int64_t>());
          soonest = row[2].as<double>();
          return OkStatus();
        }));
    live_ = live + (id_.load() != 0 ? 1 : 0);
    if (behind == 0) return OkStatus();
    const TimePoint now = SystemClock::Default()->Now();
    if (now >= deadline) {
      return UnavailableError(
          std::to_string(behind) +
          " replica(s) with a live lease have not registered deletion " +
          std::to_string(seq.value()));
    }
    // A report wakes this at once; the poll bounds the wait when the
    // listening thread is busy, and a lease running out ends it.
    const TimePoint until = std::min(
        {deadline, now + std::chrono::milliseconds(20),
         now + std::chrono::duration_cast<Duration>(
                   std::chrono::duration<double>(std::max(soonest, 0.0)))});
    MutexLock lock(&mu_);
    while (registrations_ == seen &&
           registered_cv_.WaitUntil(&mu_, *SystemClock::Default(), until)) {
    }
  }
}

StatusOr<std::unique_ptr<Store::Membership>> PgStore::Join(Duration lease) {
  lease_ = lease;  // connections opened before are not pooled again
  return std::unique_ptr<Membership>(
      std::make_unique<PgMembership>(this, lease));
}

// The erasure commits with the apply (Rewrite): nothing is ever owed.
Status PgStore::FinishErasure() { return OkStatus(); }
bool PgStore::ErasureOwed() { return false; }

StoreCounters PgStore::Counters() {
  StoreCounters c;
  c.wal_syncs = durable_commits_.load();
  c.failed_writes = failed_writes_.load();
  c.resumes = resumes_.load();
  return c;
}

// ---- audit -----------------------------------------------------------------

Status PgStore::PutAudit(uint64_t request_id, const std::string& record) {
  return Transact(
      "put audit record " + std::to_string(request_id), Commit::kLazy,
      [&](pqxx::transaction_base& txn) {
        txn.exec_params0(
            "INSERT INTO eraser_audit VALUES ($1, $2) ON CONFLICT (request_id) "
            "DO UPDATE SET record = EXCLUDED.record",
            Signed(request_id), pqxx::binarystring(record));
        return OkStatus();
      });
}

StatusOr<std::string> PgStore::GetAudit(uint64_t request_id) {
  std::optional<std::string> record;
  RETURN_IF_ERROR(
      Transact("read audit record " + std::to_string(request_id),
               Commit::kStatement, [&](pqxx::transaction_base& txn) {
                 const pqxx::result r = txn.exec_params(
                     "SELECT record FROM eraser_audit WHERE request_id = $1",
                     Signed(request_id));
                 if (!r.empty()) record = Bytes(r[0][0]);
                 return OkStatus();
               }));
  if (!record.has_value()) {
    return NotFoundError("audit record " + std::to_string(request_id) +
                         " not found");
  }
  return *record;
}

}  // namespace eraser::storage::internal
