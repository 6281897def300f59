// A RocksDB error the store cannot resume from (issue 24): the store
// reopens its database in place instead of refusing writes until a restart.
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deletions.h"
#include "eraser/storage/store.h"
#include "fault_fs.h"
#include "rocks_store.h"
#include "testing/temp_dir.h"

namespace eraser::storage {
namespace {

constexpr int kSamples = 40;

// `n` samples of 784 bytes, in three shards of two slices.
struct Samples {
  std::vector<std::string> features;
  std::vector<SampleView> views;
  Samples(const Samples&) = delete;  // the views point into `features`
  explicit Samples(int n) {
    for (int i = 0; i < n; ++i) {
      features.emplace_back(784, static_cast<char>('A' + i % 50));
    }
    for (int i = 0; i < n; ++i) {
      SampleView v;
      v.id = SampleId(static_cast<uint64_t>(i));
      v.shard = ShardId(static_cast<uint32_t>(i % 3));
      v.slice = static_cast<uint32_t>((i / 3) % 2);
      v.owner = OwnerId(static_cast<uint64_t>(i));
      v.label = static_cast<uint32_t>(i % 10);
      v.features = reinterpret_cast<const uint8_t*>(features[i].data());
      v.feature_size = features[i].size();
      views.push_back(v);
    }
  }
};

// A store on a fault-injecting file system, in a directory of its own.
class FatalStoreError : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.path = dir_.path();
    StatusOr<std::unique_ptr<Store>> opened =
        internal::OpenRocksStore(options, env_.get());
    ASSERT_TRUE(opened.ok()) << opened.status();
    opened_ = std::move(opened).value();
  }

  testing::TempDir dir_;
  const Samples samples_{kSamples};
  std::shared_ptr<FaultFs> fs_ =
      std::make_shared<FaultFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env_ = rocksdb::NewCompositeEnv(fs_);
  std::unique_ptr<Store> opened_;
  Store& store() { return *opened_; }
};

// RocksDB cannot resume from some errors (a memtable switch that cannot
// create its new log is fatal in RocksDB 7.8). The store then closes and
// opens its database in place: the next write after the disk frees
// succeeds without a restart, and readers running meanwhile wait for the
// reopen rather than read a closed database (this runs under the sanitizers,
// ThreadSanitizer included; the sweep, fault_sweep_test.cc, does not).
TEST_F(FatalStoreError, TheStoreReopensInPlaceWhileReadersRead) {
  const std::vector<SampleView> first(samples_.views.begin(),
                                      samples_.views.begin() + kSamples / 2);
  const std::vector<SampleView> second(samples_.views.begin() + kSamples / 2,
                                       samples_.views.end());
  ASSERT_TRUE(store().IngestSamples(first).ok());
  StatusOr<DeletionSeq> acked = AppendSample(store(), 1);
  ASSERT_TRUE(acked.ok()) << acked.status();

  // Ingest flushes every memtable: the switch to a new log fails.
  fs_->FailMatching(Op::kCreate, ".log");
  const Status ingest = store().IngestSamples(second);
  EXPECT_EQ(ingest.code(), StatusCode::kResourceExhausted) << ingest;
  // While the disk stays full the store refuses writes, and says why.
  const StatusOr<DeletionSeq> refused = AppendSample(store(), 2);
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted)
      << refused.status();
  // Reads go on meanwhile (the database is open read-only).
  EXPECT_TRUE(store().GetDeletion(*acked).ok());
  StatusOr<SampleLocation> read = store().LookupSample(SampleId(3));
  EXPECT_TRUE(read.ok()) << read.status();
  fs_->Heal();

  // Readers run across the reopen: each read sees the database open.
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::string> failures;
  std::mutex failures_mu;
  auto reader = [&](int which) {
    while (!stop.load()) {
      Status s = which == 0 ? store().LookupSample(SampleId(3)).status()
                            : store().ScanShard(
                                  ShardId(0), 0, 2,
                                  [](const SampleView&) { return OkStatus(); });
      if (s.ok()) s = store().GetDeletion(*acked).status();
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(failures_mu);
        failures.push_back(s.ToString());
      }
      ++reads;
    }
  };
  std::thread a(reader, 0), b(reader, 1);
  while (reads.load() < 10) std::this_thread::yield();  // both are reading
  // The disk has room again: the next write reopens the database and
  // succeeds.
  StatusOr<DeletionSeq> after = AppendSample(store(), 2);
  EXPECT_TRUE(after.ok()) << after.status();
  const int before = reads.load();
  while (reads.load() < before + 10) std::this_thread::yield();
  stop = true;
  a.join();
  b.join();
  EXPECT_TRUE(failures.empty())
      << failures.size()
      << " reads failed, first: " << (failures.empty() ? "" : failures[0]);
  EXPECT_EQ(store().Counters().reopens, 1u);
  if (after.ok()) {
    EXPECT_GT(after->value(), acked->value());
  }
  EXPECT_TRUE(store().IngestSamples(second).ok());
  EXPECT_TRUE(store().GetDeletion(*acked).ok());
  StatusOr<SampleLocation> last = store().LookupSample(SampleId(kSamples - 1));
  EXPECT_TRUE(last.ok()) << last.status();
}

// A deletion whose log append succeeded but whose sync failed is in the
// write-ahead log, though the caller was told it failed. Reopening replays
// that log: the store writes back what the failed write found, so the
// failed deletion does not come back, and the next one gets its number.
TEST_F(FatalStoreError, AReopenDoesNotBringBackAFailedDeletion) {
  ASSERT_TRUE(store().IngestSamples(samples_.views).ok());
  StatusOr<DeletionSeq> acked = AppendSample(store(), 1);
  ASSERT_TRUE(acked.ok()) << acked.status();

  // The append reaches the log; its sync fails.
  fs_->FailMatching(Op::kSync, ".log");
  const StatusOr<DeletionSeq> failed = AppendSample(store(), 2);
  ASSERT_FALSE(failed.ok());
  // Resuming flushes and switches logs; the new log cannot be created:
  // RocksDB holds a fatal error, and the failed deletion's log stays.
  fs_->FailMatching(Op::kCreate, ".log");
  const StatusOr<DeletionSeq> refused = AppendSample(store(), 3);
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted)
      << refused.status();
  EXPECT_NE(refused.status().message().find("reopen"), std::string::npos)
      << refused.status();
  // Reads never show the failed deletion (a read-only open would replay
  // it from the log: the store does not open read-only while a failed
  // write is still to be undone).
  StatusOr<std::vector<DeletionRecord>> meanwhile = store().PendingDeletions();
  if (meanwhile.ok()) {
    for (const DeletionRecord& r : *meanwhile) EXPECT_NE(r.target.id, 2u);
  }
  fs_->Heal();

  // Any write reopens; the failed deletion is not there.
  ASSERT_TRUE(store().PutMeta("marker", "after").ok());
  EXPECT_EQ(store().Counters().reopens, 1u);
  EXPECT_EQ(
      store().GetDeletion(DeletionSeq(acked->value() + 1)).status().code(),
      StatusCode::kNotFound);
  StatusOr<DeletionSeq> next = AppendSample(store(), 4);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->value(), acked->value() + 1);
  StatusOr<std::vector<DeletionRecord>> pending = store().PendingDeletions();
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::vector<uint64_t> targets;
  for (const DeletionRecord& r : *pending) targets.push_back(r.target.id);
  EXPECT_EQ(targets, (std::vector<uint64_t>{1, 4}));
}

// The undo of a failed write never outlives a write that succeeded after
// it: here a failed deletion's number is handed out again once the store
// reopens, and a later reopen keeps that acknowledged deletion.
TEST_F(FatalStoreError, AnUndoNeverRevertsAnAcknowledgedWrite) {
  ASSERT_TRUE(store().IngestSamples(samples_.views).ok());
  fs_->FailMatching(Op::kSync, ".log");
  ASSERT_FALSE(AppendSample(store(), 1).ok());
  fs_->Heal();
  // The store reopens; the number the failed deletion had is acknowledged.
  StatusOr<DeletionSeq> acked = AppendSample(store(), 2);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(acked->value(), 1u);
  EXPECT_EQ(store().Counters().resumes, 1u);
  EXPECT_EQ(store().Counters().reopens, 1u);

  // Now a fatal error: a flush whose new log cannot be created.
  fs_->FailMatching(Op::kCreate, ".log");
  EXPECT_FALSE(store().IngestSamples(samples_.views).ok());
  fs_->Heal();
  StatusOr<DeletionSeq> next = AppendSample(store(), 3);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(store().Counters().reopens, 2u);
  EXPECT_EQ(next->value(), 2u);
  StatusOr<DeletionRecord> kept = store().GetDeletion(*acked);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->target.id, 2u);
}

}  // namespace
}  // namespace eraser::storage
