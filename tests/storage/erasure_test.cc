// DESIGN guarantee 5: once applied, a deleted sample's feature bytes, and the
// bytes of checkpoints replaced by the same apply, no longer occur in any
// file of the data directory; also when the process dies between the
// apply's commit and its compaction.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <random>
#include <thread>

#include "eraser/common/sync_point.h"
#include "eraser/storage/store.h"
#include "erasure_samples.h"
#include "testing/postgres.h"
#include "testing/sync_points.h"
#include "testing/temp_dir.h"

namespace eraser::storage {
namespace {

std::string RandomBytes(std::mt19937_64& rng, std::size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

// 300 samples of 784 random bytes in 3 shards x 4 slices, two random
// checkpoint blobs, and the samples to erase (every 15th, in all 3 shards).
struct Samples {
  static constexpr int kCount = 300;
  std::vector<std::string> features;
  std::vector<SampleView> views;
  std::string old_blob, new_blob;
  std::vector<SampleId> erased;

  Samples(const Samples&) = delete;  // the views point into `features`
  Samples() {
    std::mt19937_64 rng(7);
    for (int i = 0; i < kCount; ++i) features.push_back(RandomBytes(rng, 784));
    for (int i = 0; i < kCount; ++i) {
      SampleView v;
      v.id = SampleId(static_cast<uint64_t>(i));
      v.shard = ShardId(static_cast<uint32_t>(i % 3));
      v.slice = static_cast<uint32_t>(i % 4);
      v.owner = OwnerId(static_cast<uint64_t>(i));
      v.label = static_cast<uint32_t>(i % 10);
      v.features = reinterpret_cast<const uint8_t*>(features[i].data());
      v.feature_size = features[i].size();
      views.push_back(v);
    }
    old_blob = RandomBytes(rng, 4096);
    new_blob = RandomBytes(rng, 4096);
    for (int i = 0; i < kCount; i += 15) erased.emplace_back(i);
  }
};

TEST(Erasure, AppliedSamplesAndOldCheckpointsLeaveTheDisk) {
  testing::TempDir dir;
  const Samples c;
  const std::vector<std::string>& features = c.features;
  const std::vector<SampleView>& views = c.views;
  const std::string& old_blob = c.old_blob;
  const std::string& new_blob = c.new_blob;
  const std::vector<SampleId>& erased = c.erased;
  const int kSamples = Samples::kCount;

  {
    StatusOr<std::unique_ptr<Store>> store = Store::Open({dir.path()});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->IngestSamples(views).ok());
    ASSERT_TRUE((*store)->PutCheckpoint({ShardId(0), 2, 1, 1, old_blob}).ok());
    ASSERT_TRUE((*store)->PutCheckpoint({ShardId(1), 2, 1, 1, "keep"}).ok());

    // Before: every sample's bytes are on disk, so the check below can fail.
    const std::string before = testing::AllFileBytes(dir.path());
    for (const std::string& f : features) {
      ASSERT_NE(before.find(f), std::string::npos);
    }
    ASSERT_NE(before.find(old_blob), std::string::npos);

    ApplyBatch batch;
    batch.checkpoints = {{ShardId(0), 2, 2, 2, new_blob}};
    batch.erase = erased;
    ASSERT_TRUE((*store)->Apply(batch).ok());

    const std::string after = testing::AllFileBytes(dir.path());
    for (SampleId id : erased) {
      EXPECT_EQ(after.find(features[id.value()]), std::string::npos)
          << "sample " << id << " still on disk";
    }
    for (int i = 1; i < kSamples; i += 15) {
      EXPECT_NE(after.find(features[i]), std::string::npos)
          << "kept sample " << i << " vanished";
    }
    EXPECT_EQ(after.find(old_blob), std::string::npos);
    EXPECT_NE(after.find(new_blob), std::string::npos);
  }
  // Still true after a clean close.
  const std::string closed = testing::AllFileBytes(dir.path());
  for (SampleId id : erased) {
    EXPECT_EQ(closed.find(features[id.value()]), std::string::npos);
  }
}

// EraseInMeta (a person's rows of the stored test split): the replaced
// value leaves the files, the others stay; an edit that changes nothing
// writes nothing, and one that fails changes nothing.
TEST(Erasure, AValueErasedInMetaLeavesTheDisk) {
  testing::TempDir dir;
  std::mt19937_64 rng(3);
  const std::string kept = RandomBytes(rng, 2048);
  const std::string original = RandomBytes(rng, 4096);
  std::string edited = original;
  std::fill(edited.begin() + 1024, edited.begin() + 2048, '\0');
  const std::string gone = original.substr(1024, 1024);
  {
    StatusOr<std::unique_ptr<Store>> first = Store::Open({dir.path()});
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE((*first)->PutMeta("kept", kept).ok());
    ASSERT_TRUE((*first)->PutMeta("rows", original).ok());
  }
  // Reopened, the values are in a table file (the open flushes what it
  // recovers from the log), where only a compaction drops the old one.
  StatusOr<std::unique_ptr<Store>> store = Store::Open({dir.path()});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_NE(testing::AllFileBytes(dir.path()).find(gone), std::string::npos);

  auto unchanged = [](const std::string& v) -> StatusOr<std::string> {
    return v;
  };
  auto refuse = [](const std::string&) -> StatusOr<std::string> {
    return InvalidArgumentError("refused");
  };
  auto erase = [&](const std::string& v) -> StatusOr<std::string> {
    EXPECT_EQ(v, original);
    return edited;
  };
  EXPECT_EQ((*store)->EraseInMeta("absent", unchanged).code(),
            StatusCode::kNotFound);
  EXPECT_EQ((*store)->EraseInMeta("rows", refuse).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE((*store)->EraseInMeta("rows", unchanged).ok());
  EXPECT_EQ(*(*store)->GetMeta("rows"), original);
  EXPECT_FALSE((*store)->ErasureOwed());

  ASSERT_TRUE((*store)->EraseInMeta("rows", erase).ok());
  EXPECT_EQ(*(*store)->GetMeta("rows"), edited);
  EXPECT_FALSE((*store)->ErasureOwed());
  const std::string after = testing::AllFileBytes(dir.path());
  EXPECT_EQ(after.find(gone), std::string::npos) << "erased bytes on disk";
  EXPECT_NE(after.find(kept), std::string::npos);
  EXPECT_NE(after.find(original.substr(2048, 1024)), std::string::npos);
}

// An erasure whose compaction failed (a full disk) after its write
// committed: the caller's retry edits nothing, and must not succeed before
// the old value has left the files. The state is made by hand: the edited
// value written, with the debt it owes (the meta key "erasure/owed/",
// family 6 = meta, shard 0, as apply.cc writes it).
TEST(Erasure, ARetryOfAnErasureThatFailedToCompactFinishesIt) {
  testing::TempDir dir;
  std::mt19937_64 rng(4);
  const std::string original = RandomBytes(rng, 4096);
  std::string edited = original;
  std::fill(edited.begin(), edited.begin() + 1024, '\0');
  const std::string gone = original.substr(0, 1024);
  {
    StatusOr<std::unique_ptr<Store>> first = Store::Open({dir.path()});
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE((*first)->PutMeta("rows", original).ok());
  }
  StatusOr<std::unique_ptr<Store>> store = Store::Open({dir.path()});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->PutMeta("rows", edited).ok());
  ASSERT_TRUE(
      (*store)->PutMeta(std::string("erasure/owed/\x06\0\0\0\0", 18), "").ok());
  ASSERT_TRUE((*store)->ErasureOwed());
  ASSERT_NE(testing::AllFileBytes(dir.path()).find(gone), std::string::npos);
  ASSERT_TRUE(
      (*store)
          ->EraseInMeta("rows",
                        [&](const std::string& v) -> StatusOr<std::string> {
                          EXPECT_EQ(v, edited);
                          return v;
                        })
          .ok());
  EXPECT_FALSE((*store)->ErasureOwed());
  EXPECT_EQ(testing::AllFileBytes(dir.path()).find(gone), std::string::npos)
      << "erased bytes on disk after the retry";
}

// The same on PostgreSQL: after the apply commits, the erased samples'
// features and the replaced checkpoint are in no live relation file of the
// database (base/<oid>; the write-ahead log in pg_wal still holds them until
// it is recycled, docs/scale-out.md), the planner's statistics included
// (ANALYZE, as autovacuum runs it, would copy values of up to 1 kB into
// pg_statistic, which no apply rewrites). CHECKPOINT makes the server write
// every dirty page, so that both searches look at what the files hold.
TEST(Erasure, AppliedSamplesAndOldCheckpointsLeaveThePostgresFiles) {
  testing::PostgresCluster& pg = testing::SharedPostgres();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.NewDatabase(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  const std::string files = pg.DatabaseDir(name);
  ASSERT_FALSE(files.empty()) << pg.error();
  const Samples c;
  const std::vector<std::string>& features = c.features;
  const std::vector<SampleView>& views = c.views;
  const std::string& old_blob = c.old_blob;
  const std::string& new_blob = c.new_blob;
  const std::vector<SampleId>& erased = c.erased;
  const int kSamples = Samples::kCount;
  // Blobs are stored out of line in chunks of about 2 kB: search for the
  // first kilobyte, which one chunk holds whole.
  const std::string old_head = old_blob.substr(0, 1024);
  const std::string new_head = new_blob.substr(0, 1024);

  StatusOr<std::unique_ptr<Store>> store = Store::Open({url});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->IngestSamples(views).ok());
  ASSERT_TRUE((*store)->PutCheckpoint({ShardId(0), 2, 1, 1, old_blob}).ok());
  ASSERT_TRUE((*store)->PutCheckpoint({ShardId(1), 2, 1, 1, "keep"}).ok());
  pg.Sql(name, "ANALYZE");
  pg.Sql(name, "CHECKPOINT");
  ASSERT_TRUE(pg.ok()) << pg.error();

  // Before: every sample's bytes are in the files, so the check can fail.
  const std::string before = testing::AllFileBytes(files);
  for (const std::string& f : features) {
    ASSERT_NE(before.find(f), std::string::npos);
  }
  ASSERT_NE(before.find(old_head), std::string::npos);

  ApplyBatch batch;
  batch.checkpoints = {{ShardId(0), 2, 2, 2, new_blob}};
  batch.erase = erased;
  ASSERT_TRUE((*store)->Apply(batch).ok());
  EXPECT_FALSE((*store)->ErasureOwed());
  pg.Sql(name, "ANALYZE");
  pg.Sql(name, "CHECKPOINT");
  ASSERT_TRUE(pg.ok()) << pg.error();

  const std::string after = testing::AllFileBytes(files);
  for (SampleId id : erased) {
    EXPECT_EQ(after.find(features[id.value()]), std::string::npos)
        << "sample " << id << " still in a relation file";
  }
  for (int i = 1; i < kSamples; i += 15) {
    EXPECT_NE(after.find(features[i]), std::string::npos)
        << "kept sample " << i << " vanished";
  }
  EXPECT_EQ(after.find(old_head), std::string::npos);
  EXPECT_NE(after.find(new_head), std::string::npos);
  // What the write-ahead log still holds (documented, not a guarantee).
  const std::string wal = testing::AllFileBytes(pg.DataDir() + "/pg_wal");
  int in_wal = 0;
  for (SampleId id : erased) {
    in_wal += wal.find(features[id.value()]) != std::string::npos ? 1 : 0;
  }
  std::printf("postgres erasure: %d of %zu erased samples still in pg_wal\n",
              in_wal, erased.size());
}

// Runs the child on `dir`; true if it reached the sync point after the
// commit and died of SIGKILL there.
bool RunChildUntilCommitted(const std::string& dir) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(ERASER_ERASURE_CHILD, ERASER_ERASURE_CHILD, dir.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  char line[64] = {0};
  const bool committed = std::fgets(line, sizeof(line), in) != nullptr &&
                         std::string(line) == "committed\n";
  int status = 0;
  waitpid(pid, &status, 0);
  fclose(in);
  return committed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST(Erasure, ACrashBetweenCommitAndCompactionIsFinishedAtOpen) {
  testing::TempDir dir;
  const std::string path = dir.Child("db");
  ASSERT_TRUE(RunChildUntilCommitted(path));
  const std::vector<std::string> features = erasure_fixture::ErasureFeatures();
  const std::vector<SampleId> erased = erasure_fixture::ErasedSamples();
  // The commit is durable but nothing compacted: the bytes are still in the
  // files (so the check below can fail).
  const std::string crashed = testing::AllFileBytes(path);
  for (SampleId id : erased) {
    ASSERT_NE(crashed.find(features[id.value()]), std::string::npos)
        << "sample " << id;
  }
  {
    // Open finishes the owed erasure before anyone reads.
    StatusOr<std::unique_ptr<Store>> store = Store::Open({path, false});
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_FALSE((*store)->ErasureOwed());
    for (SampleId id : erased) {
      StatusOr<SampleLocation> loc = (*store)->LookupSample(id);
      ASSERT_TRUE(loc.ok()) << loc.status();
      EXPECT_TRUE(loc->erased) << id;
    }
  }
  const std::string after = testing::AllFileBytes(path);
  for (SampleId id : erased) {
    EXPECT_EQ(after.find(features[id.value()]), std::string::npos)
        << "sample " << id << " still on disk after the restart";
  }
  for (int i = 1; i < erasure_fixture::kErasureSamples; i += 10) {
    EXPECT_NE(after.find(features[i]), std::string::npos)
        << "kept sample " << i << " vanished";
  }
}

// An apply that commits while an erasure runs keeps its own debt: the
// erasure clears the owed keys it read once it has compacted their ranges,
// and the apply's commit rewrites the same keys (shard 0's samples) for
// bytes the erasure never compacted. Before, the erasure cleared them too:
// the second apply found nothing owed, reported its erasure done, and the
// sample's bytes stayed in the files. Here the first apply's erasure starts
// the second apply between its compaction and its clearing.
TEST(Erasure, AnApplyCommittedDuringAnErasureKeepsItsOwnDebt) {
  testing::TempDir dir;
  const Samples c;
  StatusOr<std::unique_ptr<Store>> opened = Store::Open({dir.path()});
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;
  ASSERT_TRUE(store.IngestSamples(c.views).ok());
  // Both in shard 0 (shard = id % 3).
  const SampleId first(0), second(15);

  std::promise<void> second_committed;
  std::atomic<bool> started{false};
  std::thread second_apply;
  Status second_status;
  const std::thread::id test_thread = std::this_thread::get_id();
  // Cleared however the test ends, before what the callbacks use goes
  // (the second apply is joined first).
  eraser::testing::SyncPointsCleared cleared([&] {
    if (second_apply.joinable()) second_apply.join();
  });
  SyncPoints::Set("RocksStore::Apply:Committed", [&] {
    if (std::this_thread::get_id() != test_thread) {
      second_committed.set_value();
    }
  });
  SyncPoints::Set("RocksStore::FinishErasure:Compacted", [&] {
    if (started.exchange(true)) return;
    second_apply = std::thread([&] {
      ApplyBatch batch;
      batch.erase = {second};
      second_status = store.Apply(batch);
    });
    // The second apply commits now if nothing holds it back; once it waits
    // for this erasure (as it must), only the bound ends this wait. The
    // test's outcome does not depend on it: the bound only gives a broken
    // store the time to show itself.
    second_committed.get_future().wait_for(std::chrono::seconds(2));
  });
  ApplyBatch batch;
  batch.erase = {first};
  EXPECT_TRUE(store.Apply(batch).ok());
  if (second_apply.joinable()) second_apply.join();
  SyncPoints::ClearAll();
  ASSERT_TRUE(started);
  EXPECT_TRUE(second_status.ok()) << second_status;
  EXPECT_FALSE(store.ErasureOwed());

  const std::string after = testing::AllFileBytes(dir.path());
  EXPECT_EQ(after.find(c.features[first.value()]), std::string::npos);
  EXPECT_EQ(after.find(c.features[second.value()]), std::string::npos)
      << "the second apply's sample is still on disk";
  EXPECT_NE(after.find(c.features[3]), std::string::npos)
      << "a kept sample of shard 0 vanished";
}

}  // namespace
}  // namespace eraser::storage
