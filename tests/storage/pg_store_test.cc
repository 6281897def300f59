// What only the PostgreSQL store does: several processes share one database,
// the schema is versioned, and the server can go away and come back.
#include "pg_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <pqxx/except>
#include <thread>

#include "deletions.h"
#include "eraser/storage/store.h"
#include "erasure_samples.h"
#include "testing/postgres.h"
#include "testing/small_disk.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace eraser::storage {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<Store> OpenOrDie(const std::string& url) {
  StatusOr<std::unique_ptr<Store>> store = Store::Open({url});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Two stores stand for two replicas: one numbering, one log, whoever appends.
TEST(PgStore, StoresOnOneDatabaseShareOneLog) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  std::unique_ptr<Store> a = OpenOrDie(url);
  std::unique_ptr<Store> b = OpenOrDie(url);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*AppendSample(*a, 1), DeletionSeq(1));
  EXPECT_EQ(b->LastDeletionSeq(), DeletionSeq(1));
  EXPECT_EQ(*AppendSample(*b, 2), DeletionSeq(2));
  EXPECT_EQ(a->LastDeletionSeq(), DeletionSeq(2));
  ASSERT_EQ(a->PendingDeletions()->size(), 2u);
  ASSERT_TRUE(b->MarkApplied({DeletionSeq(1)}, FromUnixMicros(2)).ok());
  EXPECT_EQ(a->GetDeletion(DeletionSeq(1))->state, DeletionState::kApplied);

  // Concurrent appends through both: distinct and contiguous.
  std::vector<uint64_t> got_a, got_b;
  std::thread ta([&] {
    for (uint64_t i = 0; i < 30; ++i)
      got_a.push_back(AppendSample(*a, 100 + i)->value());
  });
  std::thread tb([&] {
    for (uint64_t i = 0; i < 30; ++i)
      got_b.push_back(AppendSample(*b, 200 + i)->value());
  });
  ta.join();
  tb.join();
  std::set<uint64_t> all(got_a.begin(), got_a.end());
  all.insert(got_b.begin(), got_b.end());
  EXPECT_EQ(all.size(), 60u);
  EXPECT_EQ(*all.begin(), 3u);
  EXPECT_EQ(*all.rbegin(), 62u);
  // A checkpoint one store writes, the other reads.
  ASSERT_TRUE(a->PutCheckpoint({ShardId(3), 0, 7, 1, "model"}).ok());
  EXPECT_EQ(b->GetCheckpoint(ShardId(3), 0)->version, 7u);
}

// One engine at a time retrains a shard: the claim is exclusive across
// stores (processes) and free again when its holder lets go.
TEST(PgStore, AShardClaimExcludesOtherStoresUntilReleased) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  std::unique_ptr<Store> a = OpenOrDie(url);
  std::unique_ptr<Store> b = OpenOrDie(url);
  ASSERT_TRUE(a && b);
  StatusOr<std::unique_ptr<Store::ShardClaim>> held =
      a->TryClaimShard(ShardId(2));
  ASSERT_TRUE(held.ok() && *held != nullptr) << held.status();
  StatusOr<std::unique_ptr<Store::ShardClaim>> refused =
      b->TryClaimShard(ShardId(2));
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(*refused, nullptr);
  StatusOr<std::unique_ptr<Store::ShardClaim>> other =
      b->TryClaimShard(ShardId(3));
  EXPECT_NE(*other, nullptr);  // another shard is free
  held->reset();
  StatusOr<std::unique_ptr<Store::ShardClaim>> now =
      b->TryClaimShard(ShardId(2));
  EXPECT_NE(*now, nullptr);
}

// A member of the replicas paused in the middle of a transaction: its read
// of a shard holds the table's lock, which another member's apply of that
// shard (a rewrite) must wait for. The server ends the paused member's
// transaction (after the larger of its lease and 10 s), the apply commits,
// and the paused member, once it runs again, finds its read failed as
// unavailable; its store then works on a new connection.
TEST(PgStore, AMemberPausedInATransactionHoldsNoApplyForever) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  std::unique_ptr<Store> paused = OpenOrDie(url);
  std::unique_ptr<Store> other = OpenOrDie(url);
  ASSERT_TRUE(paused && other);
  const std::vector<std::string> features = erasure_fixture::ErasureFeatures();
  ASSERT_TRUE(
      paused->IngestSamples(erasure_fixture::ErasureViews(features)).ok());
  StatusOr<std::unique_ptr<Store::Membership>> paused_member =
      paused->Join(std::chrono::seconds(1));
  ASSERT_TRUE(paused_member.ok()) << paused_member.status();
  StatusOr<std::unique_ptr<Store::Membership>> other_member =
      other->Join(std::chrono::minutes(1));
  ASSERT_TRUE(other_member.ok()) << other_member.status();

  // The paused member stops (as SIGSTOP would) after its first sample of
  // shard 0, its transaction open, until released.
  std::promise<void> inside, release;
  std::shared_future<void> released = release.get_future().share();
  std::future<Status> scan = std::async(std::launch::async, [&] {
    bool first = true;
    return paused->ScanShard(ShardId(0), 0, 2, [&](const SampleView&) {
      if (first) {
        first = false;
        inside.set_value();
        released.wait();
      }
      return OkStatus();
    });
  });
  if (inside.get_future().wait_for(testing::kPatience) !=
      std::future_status::ready) {
    release.set_value();
    FAIL() << "the scan read no sample: " << scan.get();
  }
  ApplyBatch batch;
  batch.erase = {SampleId(0)};  // of shard 0
  std::future<Status> apply =
      std::async(std::launch::async, [&] { return other->Apply(batch); });
  const bool applied =
      apply.wait_for(testing::kPatience) == std::future_status::ready;
  release.set_value();
  EXPECT_TRUE(applied) << "the apply waited for the paused member's lock";
  const Status applied_status = apply.get();
  EXPECT_TRUE(applied_status.ok()) << applied_status;
  const Status scanned = scan.get();
  if (applied) {
    EXPECT_EQ(scanned.code(), StatusCode::kUnavailable) << scanned;
  }
  int left = 0;
  const Status rescanned =
      paused->ScanShard(ShardId(0), 0, 2, [&](const SampleView& v) {
        EXPECT_NE(v.id, SampleId(0));
        ++left;
        return OkStatus();
      });
  EXPECT_TRUE(rescanned.ok()) << rescanned;
  EXPECT_EQ(left, erasure_fixture::kErasureSamples / 3 - 1);
}

// What an apply erases has no planner statistics (ANALYZE would copy it
// into pg_statistic): new tables are made so, and a store of schema
// version 2 is migrated when it opens.
TEST(PgStore, ErasedColumnsHaveNoStatisticsAfterAMigrationToo) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  std::unique_ptr<Store> store = OpenOrDie(url);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutCheckpoint({ShardId(0), 0, 1, 1, "model"}).ok());
  ASSERT_TRUE(store->PutCheckpoint({ShardId(1), 0, 1, 1, "model"}).ok());
  store.reset();
  const std::string targets =
      "SELECT string_agg(c.relname || '.' || a.attname || '=' || "
      "a.attstattarget, ' ' ORDER BY c.relname, a.attname) FROM pg_attribute "
      "a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname ~ "
      "'^eraser_(samples|checkpoints)_' AND c.relkind = 'r' AND a.attname IN "
      "('features', 'label', 'blob')";
  const std::string none =
      "eraser_checkpoints_0.blob=0 eraser_checkpoints_1.blob=0 "
      "eraser_samples_0.features=0 eraser_samples_0.label=0 "
      "eraser_samples_1.features=0 eraser_samples_1.label=0";
  EXPECT_THAT(pg.Sql(name, targets), HasSubstr(none));
  // As an older eraser left them: the default target, no index of the
  // deletions by target, schema version 2.
  pg.Sql(name,
         "ALTER TABLE eraser_samples_1 ALTER COLUMN features SET STATISTICS "
         "-1, ALTER COLUMN label SET STATISTICS -1; ALTER TABLE "
         "eraser_checkpoints_0 ALTER COLUMN blob SET STATISTICS -1; DROP "
         "INDEX eraser_deletions_target; UPDATE eraser_schema SET version = "
         "2");
  ASSERT_TRUE(pg.ok()) << pg.error();
  EXPECT_THAT(pg.Sql(name, targets), Not(HasSubstr(none)));
  ASSERT_NE(OpenOrDie(url), nullptr);
  EXPECT_THAT(pg.Sql(name, targets), HasSubstr(none));
  EXPECT_THAT(pg.Sql(name, "SELECT version FROM eraser_schema"),
              HasSubstr("4"));
  EXPECT_EQ(pg.Sql(name,
                   "SELECT count(*) FROM pg_indexes WHERE indexname = "
                   "'eraser_deletions_target'"),
            "1\n");
}

// A failed statement's text goes to the server's log, which no apply
// erases: samples travel as parameters, which the log leaves out (unless
// the operator asks for them, docs/scale-out.md).
TEST(PgStore, AFailedIngestLeavesNoSampleInTheServersLog) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  std::unique_ptr<Store> store = OpenOrDie(url);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutCheckpoint({ShardId(0), 0, 1, 1, "model"}).ok());
  // Every insert into shard 0 fails, as on a full disk (a constraint's
  // failure would show the row: eraser's inserts violate none).
  pg.Sql(name,
         "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
         "BEGIN RAISE EXCEPTION 'refused'; END $$; CREATE TRIGGER refuse "
         "BEFORE INSERT ON eraser_samples_0 FOR EACH ROW EXECUTE FUNCTION "
         "refuse()");
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::vector<uint8_t> features = {0xde, 0xc0, 0xde, 0x5a,
                                         0x17, 0x3e, 0xa5, 0x01};
  SampleView v;
  v.id = SampleId(7);
  v.shard = ShardId(0);
  v.label = 3;
  v.owner = OwnerId(7);
  v.features = features.data();
  v.feature_size = features.size();
  const std::size_t before = testing::ReadFileOrDie(pg.LogFile()).size();
  const Status s = store->IngestSamples({v});
  ASSERT_FALSE(s.ok());
  const std::string log = testing::ReadFileOrDie(pg.LogFile()).substr(before);
  EXPECT_THAT(log, HasSubstr("refuse"));  // the failure was logged
  EXPECT_THAT(log, Not(HasSubstr("dec0de5a173ea501")));
}

// libpqxx 6 throws some server errors without their SQLSTATE, or outside
// sql_error: each still gets its code (a deadlock or a serialization
// failure can be retried; a missing privilege cannot).
TEST(PgStore, ErrorsWithoutASqlstateGetTheirCodes) {
  using internal::FromPg;
  EXPECT_EQ(
      FromPg(pqxx::deadlock_detected("deadlock detected"), "apply").code(),
      StatusCode::kUnavailable);
  EXPECT_EQ(
      FromPg(pqxx::serialization_failure("could not serialize"), "a").code(),
      StatusCode::kUnavailable);
  const Status unknown =
      FromPg(pqxx::statement_completion_unknown("lost"), "append");
  EXPECT_EQ(unknown.code(), StatusCode::kUnavailable);
  EXPECT_THAT(unknown.message(), HasSubstr("is unknown"));
  const Status denied = FromPg(
      pqxx::insufficient_privilege("permission denied for table t"), "schema");
  EXPECT_EQ(denied.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(denied.message(), HasSubstr("permission denied for table t"));
  const Status bare = FromPg(pqxx::sql_error("no state"), "read");
  EXPECT_EQ(bare.code(), StatusCode::kInternal);
  EXPECT_THAT(bare.message(), Not(HasSubstr("SQLSTATE")));
  EXPECT_THAT(FromPg(pqxx::sql_error("odd", "", "42P99"), "read").message(),
              HasSubstr("(SQLSTATE 42P99)"));
}

TEST(PgStore, OpenRefusesWhatItCannotUse) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  // No schema and no permission to create one.
  StatusOr<std::unique_ptr<Store>> missing =
      Store::Open({url, /*create_if_missing=*/false});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("holds no eraser store"));

  // A database of an application's own tables: no store is made among
  // them.
  std::string other_name;
  const std::string other = pg.NewDatabase(&other_name);
  pg.Sql(other_name, "CREATE TABLE customers (id int, email text)");
  ASSERT_TRUE(pg.ok()) << pg.error();
  StatusOr<std::unique_ptr<Store>> among = Store::Open({other});
  EXPECT_EQ(among.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(among.status().message(), HasSubstr("1 other table(s)"));
  EXPECT_THAT(pg.Sql(other_name,
                     "SELECT count(*) FROM pg_tables WHERE "
                     "tablename LIKE 'eraser%'"),
              HasSubstr("0"));

  // A schema from a newer eraser.
  ASSERT_NE(OpenOrDie(url), nullptr);
  pg.Sql(name, "UPDATE eraser_schema SET version = 99");
  ASSERT_TRUE(pg.ok()) << pg.error();
  StatusOr<std::unique_ptr<Store>> newer = Store::Open({url});
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(newer.status().message(), HasSubstr("schema version 99"));

  // A role without a privilege on the store's tables: refused as a
  // precondition, with the server's reason (libpqxx 6 throws this error
  // without its SQLSTATE).
  const std::string role = "eraser_no_grant_" + name;
  pg.Sql(name, "CREATE ROLE " + role + " LOGIN");
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string as_role = url;
  ASSERT_NE(as_role.find("eraser@"), std::string::npos) << url;
  as_role.replace(as_role.find("eraser@"), 6, role);
  StatusOr<std::unique_ptr<Store>> denied = Store::Open({as_role});
  EXPECT_EQ(denied.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(denied.status().message(), HasSubstr("permission denied"));
  EXPECT_THAT(denied.status().message(), Not(HasSubstr("SQLSTATE")));

  // A URL libpq does not accept (an unknown parameter, broken syntax, a
  // badly encoded password): the caller's mistake, found before
  // connecting, and a password in it is not repeated.
  // A password parameter holding a raw '&' is cut there by libpq, the rest
  // read as another parameter.
  for (const std::string& bad :
       {url + "&bogus=1", std::string("postgresql://eraser:s3cret@[]/db"),
        std::string("postgresql://eraser:s3%zzcret@/db?host=/nowhere"),
        url + "&password=s3&cret", url + "&password=s3&cret=1"}) {
    StatusOr<std::unique_ptr<Store>> refused = Store::Open({bad});
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(refused.status().message(), HasSubstr("libpq accepts"));
    EXPECT_THAT(refused.status().message(), Not(HasSubstr("cret")));
  }
  // A password holding a raw '@', '/' or '?': libpq would read part of it
  // as a host, a port, a database, a parameter or a user, and print it (or
  // send it to that host); refused without repeating the URL.
  for (const std::string& bad :
       {std::string("postgresql://eraser:s3@cret@/db?host=/nowhere"),
        std::string("postgresql://eraser:s3/cret@localhost/db"),
        std::string("postgresql://eraser:s3/x?9Qcret@localhost/db"),
        std::string("postgresql://eraser:s3/x?user=cret@localhost/db"),
        std::string("postgresql://localhost?password=s3@cret"),
        std::string("postgresql://localhost:5432?password=s3@cret"),
        std::string("postgresql://eraser:s3?cret@localhost/db")}) {
    StatusOr<std::unique_ptr<Store>> refused = Store::Open({bad});
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(refused.status().message(), HasSubstr("percent-encode"));
    EXPECT_THAT(refused.status().message(), Not(HasSubstr("cret")));
  }

  // A server that answers, without the database: it says so.
  StatusOr<std::unique_ptr<Store>> no_database =
      Store::Open({pg.Url("eraser_no_such_database")});
  EXPECT_EQ(no_database.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(no_database.status().message(), HasSubstr("does not exist"));
  EXPECT_THAT(no_database.status().message(),
              HasSubstr("PostgreSQL refused the connection"));

  // No server at all: unavailable, and the password is not repeated.
  StatusOr<std::unique_ptr<Store>> nowhere = Store::Open(
      {"postgresql://eraser:s3cret@/db?host=/nonexistent-eraser-socket"});
  EXPECT_EQ(nowhere.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(nowhere.status().message(), Not(HasSubstr("s3cret")));
  EXPECT_THAT(nowhere.status().message(), HasSubstr("eraser:***@"));
  EXPECT_THAT(nowhere.status().message(),
              HasSubstr("PostgreSQL cannot be reached with this URL"));
}

// Replay's scratch copies: a database whose name needs percent-encoding in
// a URL is copied and dropped by the name libpq reads from the URL, and the
// copy holds the store.
TEST(PgStore, CopiesAndDropsADatabaseByTheNameLibpqReads) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_NE(OpenOrDie(url), nullptr);  // closed again: nobody on the source
  StatusOr<std::string> copy = PostgresSiblingUrl(url, name + " copy?/x");
  ASSERT_TRUE(copy.ok()) << copy.status();
  const Status copied = CopyPostgresDatabase(url, *copy);
  ASSERT_TRUE(copied.ok()) << copied;
  EXPECT_THAT(pg.Sql(name,
                     "SELECT datname FROM pg_database WHERE datname "
                     "LIKE '% copy?/x'"),
              HasSubstr(name + " copy?/x"));
  EXPECT_NE(OpenOrDie(*copy), nullptr);
  const Status dropped = DropPostgresDatabase(*copy);
  ASSERT_TRUE(dropped.ok()) << dropped;
  EXPECT_EQ(pg.Sql(name,
                   "SELECT count(*) FROM pg_database WHERE datname "
                   "LIKE '% copy?/x'"),
            "0\n");
}

// The server stops: writes fail as unavailable and change nothing; it
// starts again: the same store reconnects by itself.
TEST(PgStore, AStoppedServerIsUnavailableThenTheStoreReconnects) {
  testing::PostgresCluster pg;  // its own: this test stops it
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.NewDatabase();
  std::unique_ptr<Store> store = OpenOrDie(url);
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*AppendSample(*store, 1), DeletionSeq(1));

  ASSERT_TRUE(pg.Stop()) << pg.error();
  StatusOr<DeletionSeq> refused = AppendSample(*store, 2);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable)
      << refused.status();
  EXPECT_EQ(store->GetMeta("x").status().code(), StatusCode::kUnavailable);
  EXPECT_GE(store->Counters().failed_writes, 1u);
  // What it last knew, not an error.
  EXPECT_EQ(store->LastDeletionSeq(), DeletionSeq(1));

  ASSERT_TRUE(pg.Start()) << pg.error();
  EXPECT_EQ(*AppendSample(*store, 3), DeletionSeq(2));
  EXPECT_EQ(store->PendingDeletions()->size(), 2u);
  EXPECT_EQ(store->Counters().resumes, 1u);
}

// The database's disk fills (its tablespace on a small tmpfs; the server's
// own write-ahead log stays on the large disk): deletions are refused as
// kResourceExhausted and not acknowledged, reads go on, nothing
// acknowledged is lost, and once space returns the same store, and the same
// server, take writes again.
TEST(PgStore, AFullDiskRefusesDeletionsThenTheStoreResumes) {
  std::unique_ptr<testing::SmallDisk> disk;
  testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  // Its own cluster, stopped before the disk is unmounted.
  testing::PostgresCluster pg;
  ASSERT_TRUE(pg.ok()) << pg.error();
  ASSERT_TRUE(pg.CreateTablespace("small", disk->path() + "/tablespace"))
      << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_TRUE(pg.ok()) << pg.error();
  pg.Sql("postgres", "ALTER DATABASE " + name + " SET TABLESPACE small");
  ASSERT_TRUE(pg.ok()) << pg.error();

  std::unique_ptr<Store> store = OpenOrDie(url);
  ASSERT_NE(store, nullptr);
  std::vector<uint64_t> acked;
  for (uint64_t id = 0; id < 5; ++id) {
    StatusOr<DeletionSeq> seq = AppendSample(*store, id);
    ASSERT_TRUE(seq.ok()) << seq.status();
    acked.push_back(seq->value());
  }
  ASSERT_GT(disk->Fill(), 0u);
  // The tables' last pages may still have room: appends succeed until a
  // table or index must grow.
  const Status first_failure = AppendUntilRefused(*store, 1000, &acked);
  ASSERT_FALSE(first_failure.ok()) << "the disk never filled";
  EXPECT_EQ(first_failure.code(), StatusCode::kResourceExhausted)
      << first_failure;
  EXPECT_THAT(first_failure.message(), HasSubstr("disk is full"));
  for (int attempt = 0; attempt < 3; ++attempt) {
    StatusOr<DeletionSeq> refused = AppendSample(*store, 50 + attempt);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted)
        << refused.status();
  }
  StatusOr<std::vector<DeletionRecord>> pending = store->PendingDeletions();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->size(), acked.size());

  disk->Free();
  StatusOr<DeletionSeq> resumed = AppendSample(*store, 60);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  // Refused deletions took no number.
  EXPECT_EQ(resumed->value(), acked.back() + 1);
  acked.push_back(resumed->value());

  // Everything acknowledged, and nothing refused, is in the log, as a new
  // store reads it.
  std::unique_ptr<Store> reopened = OpenOrDie(url);
  ASSERT_NE(reopened, nullptr);
  pending = reopened->PendingDeletions();
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::vector<uint64_t> seqs;
  for (const DeletionRecord& r : *pending) seqs.push_back(r.seq.value());
  EXPECT_EQ(seqs, acked);
}

// Replicas' leases (Store::Membership): an acknowledgement waits for every
// other member whose lease is live until it has registered the deletion,
// and for no other; a member's renewal says whether its lease ran out
// since the last; notifications reach listening members.
TEST(PgMembership, AcknowledgementsWaitForLiveLeasesOnly) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  std::unique_ptr<Store> a = OpenOrDie(url);
  std::unique_ptr<Store> b = OpenOrDie(url);
  ASSERT_TRUE(a && b);
  // RocksDB stores have no leases: one process.
  const testing::TempDir dir;
  StatusOr<std::unique_ptr<Store::Membership>> none =
      OpenOrDie(dir.Child("db"))->Join(std::chrono::seconds(1));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);

  std::unique_ptr<Store::Membership> ma =
      std::move(a->Join(std::chrono::minutes(1))).value();
  std::unique_ptr<Store::Membership> mb =
      std::move(b->Join(std::chrono::minutes(1))).value();
  StatusOr<Store::Membership::Renewal> first = ma->Renew(DeletionSeq(0));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->continued);  // joining
  ASSERT_TRUE(mb->Renew(DeletionSeq(0)).ok());
  StatusOr<Store::Membership::Renewal> again = ma->Renew(DeletionSeq(0));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->continued);
  EXPECT_EQ(again->log_head, DeletionSeq(0));
  EXPECT_EQ(ma->live_members(), 2);

  // b listens: the first wait says it may have missed notifications, the
  // next one sees a's append.
  EXPECT_TRUE(*mb->AwaitDeletions(std::chrono::seconds(0)));
  ASSERT_EQ(*AppendSample(*a, 1), DeletionSeq(1));
  bool notified = false;
  ASSERT_TRUE(testing::Eventually([&] {
    StatusOr<bool> n = mb->AwaitDeletions(std::chrono::seconds(1));
    EXPECT_TRUE(n.ok()) << n.status();
    notified = n.ok() && *n;
    return notified;
  }));
  // b holds a live lease and has not registered deletion 1.
  const Status waiting =
      ma->AwaitRegistered(DeletionSeq(1), std::chrono::milliseconds(50));
  EXPECT_EQ(waiting.code(), StatusCode::kUnavailable) << waiting;
  EXPECT_THAT(waiting.message(), HasSubstr("have not registered"));
  // Once b reports it, the wait ends.
  std::thread reporter([&] { ASSERT_TRUE(mb->Report(DeletionSeq(1)).ok()); });
  EXPECT_TRUE(ma->AwaitRegistered(DeletionSeq(1), testing::kPatience).ok());
  reporter.join();
  // A renewal reporting less never lowers what b registered.
  ASSERT_TRUE(mb->Renew(DeletionSeq(0)).ok());
  EXPECT_TRUE(ma->AwaitRegistered(DeletionSeq(1), Duration(0)).ok());

  // c's short lease runs out without a renewal: an acknowledgement stops
  // waiting for it, and c's next renewal is not a continuation.
  std::unique_ptr<Store> c = OpenOrDie(url);
  std::unique_ptr<Store::Membership> mc =
      std::move(c->Join(std::chrono::milliseconds(300))).value();
  ASSERT_TRUE(mc->Renew(DeletionSeq(1)).ok());
  ASSERT_EQ(*AppendSample(*a, 2), DeletionSeq(2));
  ASSERT_TRUE(mb->Report(DeletionSeq(2)).ok());
  EXPECT_TRUE(ma->AwaitRegistered(DeletionSeq(2), testing::kPatience).ok());
  // It returned because c's lease (the last row joined) ran out.
  EXPECT_EQ(pg.Sql(name,
                   "SELECT lease_until < clock_timestamp() FROM "
                   "eraser_replicas ORDER BY id DESC LIMIT 1")
                .substr(0, 1),
            "t");
  StatusOr<Store::Membership::Renewal> late = mc->Renew(DeletionSeq(1));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_FALSE(late->continued);
  EXPECT_EQ(late->log_head, DeletionSeq(2));
  // Leaving ends the wait for a member at once.
  ASSERT_EQ(*AppendSample(*a, 3), DeletionSeq(3));
  mb.reset();
  mc.reset();
  EXPECT_TRUE(ma->AwaitRegistered(DeletionSeq(3), Duration(0)).ok());
  EXPECT_EQ(std::stoi(pg.Sql(name, "SELECT count(*) FROM eraser_replicas")), 1);
}

}  // namespace
}  // namespace eraser::storage
