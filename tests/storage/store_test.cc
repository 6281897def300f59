#include "eraser/storage/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "eraser/storage/data_dir_lock.h"
#include "testing/postgres.h"
#include "testing/temp_dir.h"

namespace eraser::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<Store> OpenOrDie(const std::string& path) {
  StatusOr<std::unique_ptr<Store>> store = Store::Open({path});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(store).value() : nullptr;
}

// A small partition: 2 shards x 3 slices x 4 samples; sample i is owned by
// owner i % 5 and its features are 4 bytes derived from i.
struct Fixture {
  std::vector<std::vector<uint8_t>> features;
  std::vector<SampleView> views;

  Fixture() {
    for (uint64_t i = 0; i < 24; ++i) {
      features.push_back(
          {static_cast<uint8_t>(i), 0xaa, static_cast<uint8_t>(i * 3), 0x55});
    }
    for (uint64_t i = 0; i < 24; ++i) {
      SampleView v;
      v.id = SampleId(i);
      v.shard = ShardId(static_cast<uint32_t>(i % 2));
      v.slice = static_cast<uint32_t>((i / 2) % 3);
      v.owner = OwnerId(i % 5);
      v.label = static_cast<uint32_t>(i % 10);
      v.features = features[i].data();
      v.feature_size = features[i].size();
      views.push_back(v);
    }
  }
};

std::vector<uint64_t> ScanIds(Store& store, ShardId shard, uint32_t first,
                              uint32_t end) {
  std::vector<uint64_t> ids;
  Status s = store.ScanShard(shard, first, end, [&](const SampleView& v) {
    ids.push_back(v.id.value());
    return OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return ids;
}

// The contract suite runs on both backends: a RocksDB directory, and a
// fresh database on a throw-away PostgreSQL cluster (testing/postgres.h).
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      testing::PostgresCluster& pg = testing::SharedPostgres();
      ASSERT_TRUE(pg.ok()) << pg.error();
      path_ = pg.NewDatabase();
      ASSERT_FALSE(path_.empty()) << pg.error();
    } else {
      path_ = dir_.path();
    }
    store_ = OpenOrDie(path_);
    ASSERT_NE(store_, nullptr);
  }
  void Reopen() {
    store_.reset();
    store_ = OpenOrDie(path_);
    ASSERT_NE(store_, nullptr);
  }
  void Ingest() { ASSERT_TRUE(store_->IngestSamples(fixture_.views).ok()); }

  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  Fixture fixture_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values("rocksdb", "postgresql"),
                         [](const auto& info) { return info.param; });

TEST(StoreOpen, BadPaths) {
  EXPECT_EQ(Store::Open({""}).status().code(), StatusCode::kInvalidArgument);
  testing::TempDir dir;
  StoreOptions missing{dir.Child("missing"), /*create_if_missing=*/false};
  EXPECT_EQ(Store::Open(missing).status().code(), StatusCode::kNotFound);
  testing::WriteFileOrDie(dir.Child("file"), "x");
  EXPECT_EQ(Store::Open({dir.Child("file")}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(StoreOpen, CreatesMissingParents) {
  testing::TempDir dir;
  StatusOr<std::unique_ptr<Store>> store = Store::Open({dir.Child("a/b/c")});
  ASSERT_TRUE(store.ok()) << store.status();
}

TEST(StoreOpen, SecondOpenOfSameDirectoryIsRefused) {
  testing::TempDir dir;
  std::unique_ptr<Store> first = OpenOrDie(dir.path());
  StatusOr<std::unique_ptr<Store>> second = Store::Open({dir.path()});
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("another eraser process"));
}

// The lock `train --rebuild` holds while it deletes a directory: refused
// while a store of this process has the directory open (a process never
// conflicts with its own fcntl locks: RocksDB's list of locked files
// decides), and it keeps a store from opening while held.
TEST(StoreOpen, ADataDirLockExcludesAnOpenStore) {
  testing::TempDir dir;
  {
    std::unique_ptr<Store> open = OpenOrDie(dir.path());
    StatusOr<std::unique_ptr<DataDirLock>> refused = LockDataDir(dir.path());
    EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  }
  StatusOr<std::unique_ptr<DataDirLock>> lock = LockDataDir(dir.path());
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(Store::Open({dir.path()}).status().code(),
            StatusCode::kFailedPrecondition);
  lock->reset();
  EXPECT_TRUE(Store::Open({dir.path()}).ok());
}

// A directory without a store, opened without creating one: refused as
// holding none, and left as it was (RocksDB's open would leave its LOCK
// file in it; helper-46).
TEST(StoreOpen, ADirectoryWithoutAStoreIsNotFoundAndLeftAsItWas) {
  testing::TempDir dir;
  StatusOr<std::unique_ptr<Store>> opened =
      Store::Open({dir.path(), /*create_if_missing=*/false});
  EXPECT_EQ(opened.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(opened.status().message(), HasSubstr("holds no eraser store"));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// A libpq keyword/value string where a directory or URL belongs: refused
// as what it is, its password never printed (helper-48 saw it echoed in a
// "does not exist").
TEST(StoreOpen, AKeywordValueConnectionStringIsRefusedWithoutItsPassword) {
  const std::string given = "host=db.example port=5432 password=hunter2 user=x";
  StatusOr<std::unique_ptr<Store>> opened = Store::Open({given, false});
  EXPECT_EQ(opened.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(opened.status().message(), HasSubstr("postgresql:// URL"));
  EXPECT_THAT(opened.status().message(), HasSubstr("password=*** user=x"));
  EXPECT_THAT(opened.status().message(), Not(HasSubstr("hunter2")));
  EXPECT_EQ(PrintableLocation("dbname=e password=a b"),
            "dbname=e password=*** b");
  // A password parameter cut at a raw '&': libpq refuses the rest, and
  // neither the URL nor its reason is repeated.
  StatusOr<std::unique_ptr<Store>> cut =
      Store::Open({"postgresql://db/e?password=hun&ter2", false});
  EXPECT_EQ(cut.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(cut.status().message(), Not(HasSubstr("ter2")));
  // A URL's scheme in another case: refused as libpq would, not taken for
  // a directory.
  StatusOr<std::unique_ptr<Store>> cased =
      Store::Open({"PostgreSQL://me:hunter2@db/e", false});
  EXPECT_EQ(cased.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(cased.status().message(), HasSubstr("in lower case"));
  EXPECT_THAT(cased.status().message(), Not(HasSubstr("hunter2")));
  // Any keyword first; spaces around '='; a quoted value with a space and
  // an escaped quote.
  const std::string quoted = "passfile=/p password = 'hun ter\\'2' user=x";
  StatusOr<std::unique_ptr<Store>> refused = Store::Open({quoted, false});
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("passfile=/p password = *** user=x"));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("ter")));
}

// The write-ahead logs in a data directory.
std::size_t LogFiles(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    n += entry.path().extension() == ".log" ? 1 : 0;
  }
  return n;
}

// RocksDB 7.8 left the empty log of every open without a write until a
// flush: a server restarted in a loop (failing to listen, say) added one
// file per start (helper-46). Opens without a write leave one log, and a
// deletion logged before them is still there.
TEST(StoreOpen, OpensWithoutAWriteLeaveNoEmptyLogsBehind) {
  testing::TempDir dir;
  DeletionSeq logged;
  {
    std::unique_ptr<Store> store = OpenOrDie(dir.path());
    StatusOr<DeletionSeq> seq = store->AppendDeletion(
        DeletionTarget::Owner(OwnerId(7)), {}, TimePoint());
    ASSERT_TRUE(seq.ok()) << seq.status();
    logged = *seq;
  }
  for (int open = 0; open < 5; ++open) {
    std::unique_ptr<Store> store = OpenOrDie(dir.path());
    EXPECT_EQ(LogFiles(dir.path()), 1u) << "open " << open;
    EXPECT_EQ(store->LastDeletionSeq(), logged);
  }
}

TEST_P(StoreTest, ConfigStoredOnceAndCompared) {
  EXPECT_EQ(store_->ReadConfig().status().code(), StatusCode::kNotFound);
  const StoreConfig config = {{"shards", "8"}, {"slices", "4"}};
  ASSERT_TRUE(store_->InitConfig(config).ok());
  Reopen();
  EXPECT_EQ(*store_->ReadConfig(), config);
  EXPECT_TRUE(store_->InitConfig(config).ok());

  Status mismatch = store_->InitConfig({{"shards", "4"}, {"model", "cnn"}});
  EXPECT_EQ(mismatch.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(mismatch.message(),
              HasSubstr("shards: stored '8', requested '4'"));
  EXPECT_THAT(mismatch.message(), HasSubstr("slices: stored '4'"));
  EXPECT_THAT(mismatch.message(), HasSubstr("model: stored '(absent)'"));
  EXPECT_EQ(*store_->ReadConfig(), config);  // unchanged
  EXPECT_EQ(store_->InitConfig({}).code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, MetaRoundTrip) {
  EXPECT_EQ(store_->GetMeta("ingest").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutMeta("ingest", "complete").ok());
  Reopen();
  EXPECT_EQ(*store_->GetMeta("ingest"), "complete");
}

TEST_P(StoreTest, ScanReturnsShardSlicesInOrderWithContent) {
  Ingest();
  Reopen();
  // Shard 0 holds the even ids; slice = (i / 2) % 3.
  EXPECT_THAT(ScanIds(*store_, ShardId(0), 0, 3),
              ElementsAre(0, 6, 12, 18, 2, 8, 14, 20, 4, 10, 16, 22));
  EXPECT_THAT(ScanIds(*store_, ShardId(1), 1, 3),
              ElementsAre(3, 9, 15, 21, 5, 11, 17, 23));
  EXPECT_TRUE(ScanIds(*store_, ShardId(1), 2, 2).empty());
  EXPECT_TRUE(ScanIds(*store_, ShardId(5), 0, 3).empty());

  Status s = store_->ScanShard(ShardId(1), 0, 1, [&](const SampleView& v) {
    const SampleView& want = fixture_.views[v.id.value()];
    EXPECT_EQ(v.shard, want.shard);
    EXPECT_EQ(v.slice, want.slice);
    EXPECT_EQ(v.owner, want.owner);
    EXPECT_EQ(v.label, want.label);
    EXPECT_EQ(std::vector<uint8_t>(v.features, v.features + v.feature_size),
              fixture_.features[v.id.value()]);
    return OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(*store_->CountSamples(ShardId(0)), 12u);
}

TEST_P(StoreTest, ScanStopsAtCallbackError) {
  Ingest();
  int calls = 0;
  Status s = store_->ScanShard(ShardId(0), 0, 3, [&](const SampleView&) {
    return ++calls == 3 ? InternalError("stop") : OkStatus();
  });
  EXPECT_EQ(s, InternalError("stop"));
  EXPECT_EQ(calls, 3);
}

TEST_P(StoreTest, LookupAndOwners) {
  Ingest();
  StatusOr<SampleLocation> loc = store_->LookupSample(SampleId(7));
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(*loc,
            (SampleLocation{SampleId(7), ShardId(1), 0, OwnerId(2), false}));
  EXPECT_EQ(store_->LookupSample(SampleId(99)).status().code(),
            StatusCode::kNotFound);

  StatusOr<std::vector<SampleLocation>> owned =
      store_->OwnerSamples(OwnerId(3));
  ASSERT_TRUE(owned.ok());
  std::vector<uint64_t> ids;
  for (const SampleLocation& l : *owned) ids.push_back(l.id.value());
  EXPECT_THAT(ids, ElementsAre(3, 8, 13, 18, 23));
  EXPECT_EQ(store_->OwnerSamples(OwnerId(5)).status().code(),
            StatusCode::kNotFound);
}

TEST_P(StoreTest, ReingestIsHarmlessButPlacementCannotChange) {
  Ingest();
  Ingest();
  EXPECT_EQ(*store_->CountSamples(ShardId(0)), 12u);

  std::vector<SampleView> moved = {fixture_.views[4]};
  moved[0].shard = ShardId(1);
  Status s = store_->IngestSamples(moved);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->LookupSample(SampleId(4))->shard, ShardId(0));

  std::vector<SampleView> twice = {fixture_.views[6], fixture_.views[6]};
  twice[1].slice = 2;
  EXPECT_EQ(store_->IngestSamples(twice).code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, DeletionLogAppendGetPendingApplied) {
  const TimePoint t0 = FromUnixMicros(1'000'000);
  const std::vector<SampleLocation> samples = {
      {SampleId(3), ShardId(1), 1, OwnerId(3), false},
      {SampleId(8), ShardId(0), 1, OwnerId(3), false}};
  StatusOr<DeletionSeq> a =
      store_->AppendDeletion(DeletionTarget::Owner(OwnerId(3)), samples, t0);
  StatusOr<DeletionSeq> b = store_->AppendDeletion(
      DeletionTarget::Sample(SampleId(5)),
      {{SampleId(5), ShardId(1), 2, OwnerId(0), false}}, t0);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, DeletionSeq(1));
  EXPECT_EQ(*b, DeletionSeq(2));
  EXPECT_EQ(store_->LastDeletionSeq(), DeletionSeq(2));

  StatusOr<DeletionRecord> r = store_->GetDeletion(*a);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->target, DeletionTarget::Owner(OwnerId(3)));
  EXPECT_EQ(r->samples, samples);
  EXPECT_EQ(r->arrival, t0);
  EXPECT_EQ(r->state, DeletionState::kPending);
  EXPECT_THAT(r->Shards(), ElementsAre(ShardId(0), ShardId(1)));
  EXPECT_EQ(store_->GetDeletion(DeletionSeq(9)).status().code(),
            StatusCode::kNotFound);

  // An unknown sequence number fails the whole call.
  const TimePoint t1 = FromUnixMicros(2'000'000);
  EXPECT_EQ(store_->MarkApplied({*a, DeletionSeq(9)}, t1).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->PendingDeletions()->size(), 2u);

  ASSERT_TRUE(store_->MarkApplied({*a}, t1).ok());
  ASSERT_TRUE(store_->MarkApplied({*a}, FromUnixMicros(3'000'000)).ok());
  Reopen();
  r = store_->GetDeletion(*a);
  EXPECT_EQ(r->state, DeletionState::kApplied);
  EXPECT_EQ(r->applied, t1);  // the first time is kept
  StatusOr<std::vector<DeletionRecord>> pending = store_->PendingDeletions();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].seq, *b);

  // Numbering continues after a restart.
  EXPECT_EQ(store_->LastDeletionSeq(), DeletionSeq(2));
  EXPECT_EQ(
      *store_->AppendDeletion(DeletionTarget::Sample(SampleId(1)), {}, t1),
      DeletionSeq(3));
}

TEST_P(StoreTest, FindDeletionGivesTheNewestRequestOfATarget) {
  const TimePoint t0 = FromUnixMicros(1'000'000);
  const DeletionTarget owner = DeletionTarget::Owner(OwnerId(5));
  const DeletionTarget sample = DeletionTarget::Sample(SampleId(5));
  EXPECT_EQ(store_->FindDeletion(owner).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->AppendDeletion(owner, {}, t0).ok());
  ASSERT_TRUE(store_->AppendDeletion(sample, {}, t0).ok());
  ASSERT_TRUE(store_->AppendDeletion(owner, {}, t0).ok());
  ASSERT_TRUE(store_->MarkApplied({DeletionSeq(1), DeletionSeq(3)}, t0).ok());
  Reopen();
  // The same id as an owner and as a sample are two targets.
  EXPECT_EQ(*store_->FindDeletion(owner), DeletionSeq(3));
  EXPECT_EQ(*store_->FindDeletion(sample), DeletionSeq(2));
  EXPECT_EQ(
      store_->FindDeletion(DeletionTarget::Owner(OwnerId(6))).status().code(),
      StatusCode::kNotFound);
}

TEST_P(StoreTest, ConcurrentAppendsGetDistinctContiguousNumbers) {
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        StatusOr<DeletionSeq> seq = store_->AppendDeletion(
            DeletionTarget::Sample(SampleId(t * 100 + i)), {}, TimePoint());
        ASSERT_TRUE(seq.ok());
        got[t].push_back(seq->value());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kEach));
}

TEST_P(StoreTest, CheckpointsPutGetReplaceDelete) {
  for (uint32_t slice = 0; slice < 3; ++slice) {
    ASSERT_TRUE(store_
                    ->PutCheckpoint({ShardId(1), slice, 1, 100 + slice,
                                     "blob" + std::to_string(slice)})
                    .ok());
  }
  ASSERT_TRUE(store_->PutCheckpoint({ShardId(0), 0, 1, 7, "other"}).ok());
  StatusOr<Checkpoint> c = store_->GetCheckpoint(ShardId(1), 2);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, 1u);
  EXPECT_EQ(c->data_fingerprint, 102u);
  EXPECT_EQ(c->blob, "blob2");

  ASSERT_TRUE(store_->PutCheckpoint({ShardId(1), 2, 2, 202, "new"}).ok());
  Reopen();
  EXPECT_EQ(store_->GetCheckpoint(ShardId(1), 2)->blob, "new");
  EXPECT_EQ(store_->GetCheckpoint(ShardId(1), 2)->version, 2u);

  ASSERT_TRUE(store_->DeleteCheckpoints(ShardId(1), 1).ok());
  EXPECT_TRUE(store_->GetCheckpoint(ShardId(1), 0).ok());
  EXPECT_EQ(store_->GetCheckpoint(ShardId(1), 1).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCheckpoint(ShardId(1), 2).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCheckpoint(ShardId(0), 0)->blob, "other");
}

TEST_P(StoreTest, ApplyIsAtomic) {
  Ingest();
  ASSERT_TRUE(store_->PutCheckpoint({ShardId(0), 1, 1, 1, "old"}).ok());
  StatusOr<DeletionSeq> seq = store_->AppendDeletion(
      DeletionTarget::Sample(SampleId(2)),
      {{SampleId(2), ShardId(0), 1, OwnerId(2), false}}, TimePoint());
  ASSERT_TRUE(seq.ok());

  ApplyBatch bad;
  bad.checkpoints = {{ShardId(0), 1, 2, 2, "new"}};
  bad.erase = {SampleId(2), SampleId(999)};
  bad.applied = {*seq};
  bool committed = true;
  EXPECT_EQ(store_->Apply(bad, &committed).code(), StatusCode::kNotFound);
  EXPECT_FALSE(committed);
  EXPECT_EQ(store_->GetCheckpoint(ShardId(0), 1)->blob, "old");
  EXPECT_FALSE(store_->LookupSample(SampleId(2))->erased);
  EXPECT_EQ(store_->GetDeletion(*seq)->state, DeletionState::kPending);

  ApplyBatch good = bad;
  good.erase = {SampleId(2)};
  good.applied_at = FromUnixMicros(5);
  ASSERT_TRUE(store_->Apply(good, &committed).ok());
  EXPECT_TRUE(committed);
  Reopen();
  EXPECT_EQ(store_->GetCheckpoint(ShardId(0), 1)->blob, "new");
  EXPECT_TRUE(store_->LookupSample(SampleId(2))->erased);
  EXPECT_EQ(store_->GetDeletion(*seq)->state, DeletionState::kApplied);
  EXPECT_EQ(store_->GetDeletion(*seq)->applied, FromUnixMicros(5));
  EXPECT_THAT(ScanIds(*store_, ShardId(0), 1, 2), ElementsAre(8, 14, 20));
  EXPECT_EQ(*store_->CountSamples(ShardId(0)), 11u);
  // The owner index still lists the erased sample, marked erased.
  StatusOr<std::vector<SampleLocation>> owned =
      store_->OwnerSamples(OwnerId(2));
  ASSERT_TRUE(owned.ok());
  EXPECT_TRUE((*owned)[0].erased);
  // Re-ingesting cannot bring an erased sample back.
  Ingest();
  EXPECT_EQ(*store_->CountSamples(ShardId(0)), 11u);
  EXPECT_TRUE(store_->LookupSample(SampleId(2))->erased);
}

TEST_P(StoreTest, DeletionsAfterListsPendingAndAppliedInOrder) {
  for (uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(store_
                    ->AppendDeletion(DeletionTarget::Sample(SampleId(i)), {},
                                     FromUnixMicros(1))
                    .ok());
  }
  ASSERT_TRUE(store_->MarkApplied({DeletionSeq(3)}, FromUnixMicros(2)).ok());
  StatusOr<std::vector<DeletionRecord>> after =
      store_->DeletionsAfter(DeletionSeq(1));
  ASSERT_TRUE(after.ok()) << after.status();
  std::vector<uint64_t> seqs;
  for (const DeletionRecord& r : *after) seqs.push_back(r.seq.value());
  EXPECT_THAT(seqs, ElementsAre(2, 3, 4));
  EXPECT_EQ((*after)[1].state, DeletionState::kApplied);
  EXPECT_EQ((*after)[2].target, DeletionTarget::Sample(SampleId(3)));
  EXPECT_TRUE(store_->DeletionsAfter(DeletionSeq(4))->empty());
}

// Two engines sharing a store may both retrain a shard: only a model newer
// than the stored one commits; the other apply changes nothing.
TEST_P(StoreTest, ApplyRefusesAModelNotNewerThanTheStoredOne) {
  Ingest();
  ASSERT_TRUE(store_->PutCheckpoint({ShardId(0), 2, 3, 1, "v3"}).ok());
  StatusOr<DeletionSeq> seq = store_->AppendDeletion(
      DeletionTarget::Sample(SampleId(4)),
      {{SampleId(4), ShardId(0), 2, OwnerId(4), false}}, TimePoint());
  ASSERT_TRUE(seq.ok());
  ApplyBatch stale;
  stale.checkpoints = {{ShardId(0), 2, 3, 2, "stale"}};
  stale.erase = {SampleId(4)};
  stale.applied = {*seq};
  bool committed = true;
  const Status s = store_->Apply(stale, &committed);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(s.message(), HasSubstr("already holds model version 3"));
  EXPECT_FALSE(committed);
  EXPECT_EQ(store_->GetCheckpoint(ShardId(0), 2)->blob, "v3");
  EXPECT_FALSE(store_->LookupSample(SampleId(4))->erased);
  EXPECT_EQ(store_->GetDeletion(*seq)->state, DeletionState::kPending);
  stale.checkpoints[0].version = 4;
  EXPECT_TRUE(store_->Apply(stale).ok());
  EXPECT_EQ(store_->GetCheckpoint(ShardId(0), 2)->version, 4u);
}

// Engines sharing a store may each retrain some of a request's shards, and
// the one that commits the last may not know of the others' commits: the
// store marks the request applied once every shard holding one of its live
// samples has left it, whoever says so.
TEST_P(StoreTest, ARequestIsAppliedOnceEveryShardHoldingItHasLeftIt) {
  Ingest();
  auto where = [this](uint64_t id, bool erased = false) {
    const SampleView& v = fixture_.views[id];
    return SampleLocation{v.id, v.shard, v.slice, v.owner, erased};
  };
  // Owner 0's samples 0, 10, 20 are in shard 0, 5 and 15 in shard 1.
  StatusOr<DeletionSeq> owner = store_->AppendDeletion(
      DeletionTarget::Owner(OwnerId(0)),
      {where(0), where(5), where(10), where(15), where(20)}, TimePoint());
  ASSERT_TRUE(owner.ok());
  // Sample 1 (shard 1) was erased before; only shard 0 holds sample 2.
  StatusOr<DeletionSeq> two =
      store_->AppendDeletion(DeletionTarget::Owner(OwnerId(1)),
                             {where(1, true), where(6)}, TimePoint());
  ASSERT_TRUE(two.ok());

  ApplyBatch first;
  first.checkpoints = {{ShardId(0), 2, 2, 2, "shard 0 without them"}};
  first.erase = {SampleId(0), SampleId(10), SampleId(20), SampleId(6)};
  first.excluded = {{*owner, ShardId(0), 2}, {*two, ShardId(0), 2}};
  first.applied_at = FromUnixMicros(5);
  ASSERT_TRUE(store_->Apply(first).ok());
  EXPECT_EQ(store_->GetDeletion(*owner)->state, DeletionState::kPending);
  EXPECT_EQ(store_->GetDeletion(*two)->state, DeletionState::kApplied);
  EXPECT_EQ(store_->GetDeletion(*two)->applied, FromUnixMicros(5));

  ApplyBatch second;  // another engine's, which never heard of the first
  second.checkpoints = {{ShardId(1), 2, 2, 2, "shard 1 without them"}};
  second.erase = {SampleId(5), SampleId(15)};
  second.excluded = {{*owner, ShardId(1), 2}};
  second.applied_at = FromUnixMicros(7);
  ASSERT_TRUE(store_->Apply(second).ok());
  Reopen();
  StatusOr<DeletionRecord> done = store_->GetDeletion(*owner);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, DeletionState::kApplied);
  EXPECT_EQ(done->applied, FromUnixMicros(7));
  EXPECT_EQ(done->excluded_from.size(), 2u);
}

// What an engine records at open for a deletion whose samples an apply it
// missed erased: exclusions alone, by the same rule.
TEST_P(StoreTest, ExclusionsAloneFollowTheSameRule) {
  Ingest();
  auto where = [this](uint64_t id) {
    const SampleView& v = fixture_.views[id];
    return SampleLocation{v.id, v.shard, v.slice, v.owner, false};
  };
  // Samples 0 (shard 0) and 5 (shard 1).
  StatusOr<DeletionSeq> seq = store_->AppendDeletion(
      DeletionTarget::Owner(OwnerId(0)), {where(0), where(5)}, TimePoint());
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(store_
                ->RecordExclusions(
                    {{*seq, ShardId(0), 3}, {DeletionSeq(9), ShardId(1), 3}},
                    FromUnixMicros(5))
                .code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetDeletion(*seq)->excluded_from.empty());
  ASSERT_TRUE(
      store_->RecordExclusions({{*seq, ShardId(0), 3}}, FromUnixMicros(5))
          .ok());
  StatusOr<DeletionRecord> r = store_->GetDeletion(*seq);
  EXPECT_EQ(r->state, DeletionState::kPending);
  EXPECT_THAT(r->excluded_from,
              ElementsAre(std::make_pair(ShardId(0), uint64_t{3})));
  ASSERT_TRUE(
      store_->RecordExclusions({{*seq, ShardId(1), 4}}, FromUnixMicros(7))
          .ok());
  Reopen();
  r = store_->GetDeletion(*seq);
  EXPECT_EQ(r->state, DeletionState::kApplied);
  EXPECT_EQ(r->applied, FromUnixMicros(7));
  EXPECT_THAT(r->excluded_from,
              ElementsAre(std::make_pair(ShardId(0), uint64_t{3}),
                          std::make_pair(ShardId(1), uint64_t{4})));
  // Samples and checkpoints are untouched.
  EXPECT_FALSE(store_->LookupSample(SampleId(0))->erased);
}

TEST_P(StoreTest, AShardClaimIsHeldUntilReleased) {
  StatusOr<std::unique_ptr<Store::ShardClaim>> claim =
      store_->TryClaimShard(ShardId(1));
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_NE(*claim, nullptr);
}

TEST_P(StoreTest, AuditRoundTrip) {
  ASSERT_TRUE(store_->PutAudit(42, "record").ok());
  EXPECT_EQ(*store_->GetAudit(42), "record");
  EXPECT_EQ(store_->GetAudit(43).status().code(), StatusCode::kNotFound);
}

TEST(PrintableLocation, HidesEveryPassword) {
  EXPECT_EQ(PrintableLocation("/var/lib/eraser"), "/var/lib/eraser");
  EXPECT_EQ(PrintableLocation("postgresql://db/eraser"),
            "postgresql://db/eraser");
  EXPECT_EQ(PrintableLocation("postgresql://me:s3cret@db:5432/eraser"),
            "postgresql://me:***@db:5432/eraser");
  EXPECT_EQ(PrintableLocation(
                "postgres:///eraser?host=/run/pg&password=s3cret&user=me"),
            "postgres:///eraser?host=/run/pg&password=***&user=me");
  EXPECT_EQ(PrintableLocation("postgresql://db?password=s3cret"),
            "postgresql://db?password=***");
  // As libpq reads a URI: the user information ends at the first '@'
  // before the first '/', so a password may hold '#' or ':'.
  EXPECT_EQ(PrintableLocation("postgresql://me:pa#s:w@db/eraser"),
            "postgresql://me:***@db/eraser");
  // A bracketed host may hold '/'; the query starts after it.
  EXPECT_EQ(PrintableLocation("postgresql://[/run/pg]/db?password=s3cret"),
            "postgresql://[/run/pg]/db?password=***");
  // Schemes are case-insensitive; Store::Open refuses this spelling.
  EXPECT_EQ(PrintableLocation("PostgreSQL://me:s3cret@db/e"),
            "PostgreSQL://me:***@db/e");
  EXPECT_EQ(PrintableLocation("postgresql://db/eraser?user=me%40corp"),
            "postgresql://db/eraser?user=me%40corp");
  // Where libpq would cut a password (a raw '@' after the user
  // information) or read past a '?' in the user information (a query's
  // password taken for it), nothing after the scheme is shown.
  for (const char* cut :
       {"postgresql://me:s3/cret@db/eraser", "postgresql://me:s3@cret@db/e",
        "postgresql://me:Ab3/x?s3cret@db/e", "postgresql://db?password=s3@cret",
        "postgres://me:s3/x?user=cret@db/e",
        "postgresql://db/eraser?user=me@corp",
        "postgresql://db:5432?password=s3@cret",
        "postgresql://:5432?password=s3@cret",
        "postgresql://[::1]?password=s3@cret",
        "postgresql://h1:5432,h2:5433?sslpassword=s3@cret",
        "postgres://db:5432?password=s3@cret.example.com/e",
        "postgresql://me:pa?ss@db/eraser",
        "postgresql://[::1/db?password=s3cret",
        "postgresql://[::1?]/db?password=s3cret",
        "postgresql://h1,[::1/db?password=s3cret",
        "postgresql://me@[fe80::1/e?password=s3cret&host=[::2]:5432"}) {
    EXPECT_THAT(PrintableLocation(cut), ::testing::EndsWith("://***")) << cut;
  }
  // Every parameter libpq takes a password from, however its name is
  // spelt.
  EXPECT_EQ(PrintableLocation("postgresql://db/e?sslpassword=k&Pass%77ord=p"),
            "postgresql://db/e?sslpassword=***&Pass%77ord=***");
  EXPECT_EQ(PrintableLocation("postgresql://me:pw@db/e?password=p"),
            "postgresql://me:***@db/e?password=***");
}

TEST(PostgresSiblingUrl, KeepsTheServerAndRefusesWhatOpenWould) {
  // The sibling's URL, or the status refusing it.
  auto sibling = [](const std::string& url, const std::string& database) {
    StatusOr<std::string> made = PostgresSiblingUrl(url, database);
    return made.ok() ? *made : made.status().ToString();
  };
  EXPECT_EQ(sibling("postgresql://me:pw@db:5432/e?sslmode=require", "copy"),
            "postgresql://me:pw@db:5432/copy?sslmode=require");
  EXPECT_EQ(sibling("postgres:///e?host=/run/pg", "copy"),
            "postgres:///copy?host=/run/pg");
  // A bracketed host runs to its ']' whatever it holds, as libpq reads it;
  // the new name is percent-encoded.
  EXPECT_EQ(sibling("postgresql://[/run/pg]/orig", "copy"),
            "postgresql://[/run/pg]/copy");
  EXPECT_EQ(sibling("postgresql://h/e", "my db?host=x"),
            "postgresql://h/my%20db%3Fhost%3Dx");
  // A copy is made on its original's server, with its parameters.
  const Status elsewhere =
      CopyPostgresDatabase("postgresql://a/e", "postgresql://b/f");
  EXPECT_EQ(elsewhere.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(elsewhere.message(), HasSubstr("database only"));
  // No database in the path ('/' in a parameter is the parameter's), or
  // one a dbname parameter overrides (the copy would open the original):
  // refused, and no password printed.
  for (const char* none :
       {"postgresql://db", "postgresql://db/", "postgresql://db/?host=h",
        "postgresql://db?password=s3/cret", "postgresql://?host=/tmp/sock",
        "postgresql://?password=s3/cret&host=h",
        "postgresql://[/tmp?]/db?dbname=orig&password=s3cret",
        "postgresql://me:pw@db/e?dbname=x", "postgresql://db/e?db%6Eame=x"}) {
    const Status refused = PostgresSiblingUrl(none, "copy").status();
    EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << none;
    EXPECT_THAT(refused.message(), Not(HasSubstr("cret"))) << none;
  }
  // A password libpq would cut is refused before the path is split, and
  // not repeated.
  const Status cut =
      PostgresSiblingUrl("postgresql://me:s3/cret@db/e", "copy").status();
  EXPECT_EQ(cut.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(cut.message(), HasSubstr("percent-encode"));
  EXPECT_THAT(cut.message(), Not(HasSubstr("cret")));
}

TEST(DeletionTarget, ParseAndPrint) {
  EXPECT_EQ(DeletionTarget::Sample(SampleId(42)).ToString(), "sample:42");
  EXPECT_EQ(DeletionTarget::Owner(OwnerId(7)).ToString(), "owner:7");
  EXPECT_EQ(*DeletionTarget::Parse("owner:7"),
            DeletionTarget::Owner(OwnerId(7)));
  EXPECT_EQ(*DeletionTarget::Parse("sample:0"),
            DeletionTarget::Sample(SampleId(0)));
  for (const char* bad : {"", "sample", "sample:", "user:1", "sample:-1",
                          "sample:1x", "owner:99999999999999999999"}) {
    EXPECT_EQ(DeletionTarget::Parse(bad).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace eraser::storage
