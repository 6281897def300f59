// What only the PostgreSQL store does: several processes share one database,
// the schema is versioned, and the server can go away and come back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "eraser/storage/store.h"
#include "testing/postgres.h"

namespace eraser::storage {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<Store> OpenOrDie(const std::string& url) {
  StatusOr<std::unique_ptr<Store>> store = Store::Open({url});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(store).value() : nullptr;
}

StatusOr<DeletionSeq> AppendSample(Store& store, uint64_t id) {
  return store.AppendDeletion(
      DeletionTarget::Sample(SampleId(id)),
      {{SampleId(id), ShardId(0), 0, OwnerId(id), false}}, FromUnixMicros(1));
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

  // A schema from a newer eraser.
  ASSERT_NE(OpenOrDie(url), nullptr);
  pg.Sql(name, "UPDATE eraser_schema SET version = 99");
  ASSERT_TRUE(pg.ok()) << pg.error();
  StatusOr<std::unique_ptr<Store>> newer = Store::Open({url});
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(newer.status().message(), HasSubstr("schema version 99"));

  // No server at all: unavailable, and the password is not repeated.
  StatusOr<std::unique_ptr<Store>> nowhere = Store::Open(
      {"postgresql://eraser:s3cret@/db?host=/nonexistent-eraser-socket"});
  EXPECT_EQ(nowhere.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(nowhere.status().message(), Not(HasSubstr("s3cret")));
  EXPECT_THAT(nowhere.status().message(), HasSubstr("eraser:***@"));
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

}  // namespace
}  // namespace eraser::storage
