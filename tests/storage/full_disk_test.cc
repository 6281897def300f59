// A full disk, for real: the store on a small tmpfs that a filler file
// fills. A deletion is refused with kResourceExhausted (and not
// acknowledged), nothing acknowledged before is lost, the store takes no
// further write while the disk is full, and once space returns the next
// write reopens the database in place and goes on.
#include <gtest/gtest.h>

#include "deletions.h"
#include "eraser/storage/store.h"
#include "erasure_samples.h"
#include "rocks_store.h"
#include "testing/small_disk.h"

namespace eraser::storage {
namespace {

TEST(FullDisk, DeletionsAreRefusedThenResumeWhenSpaceReturns) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(16 << 20, &disk);
  if (disk == nullptr) return;
  const std::string path = disk->path() + "/db";
  std::vector<uint64_t> acked;
  {
    StatusOr<std::unique_ptr<Store>> store = Store::Open({path});
    ASSERT_TRUE(store.ok()) << store.status();
    const std::vector<std::string> features =
        erasure_fixture::ErasureFeatures();
    ASSERT_TRUE(
        (*store)->IngestSamples(erasure_fixture::ErasureViews(features)).ok());
    for (uint64_t id = 0; id < 5; ++id) {
      StatusOr<DeletionSeq> seq = AppendSample(**store, id);
      ASSERT_TRUE(seq.ok()) << seq.status();
      acked.push_back(seq->value());
    }

    ASSERT_GT(disk->Fill(), 0u);
    const StoreCounters before = (*store)->Counters();
    // The log's last page may still have room: appends succeed until it is
    // used up, then fail.
    const Status first_failure = AppendUntilRefused(**store, 1000, &acked);
    ASSERT_FALSE(first_failure.ok()) << "the disk never filled";
    EXPECT_EQ(first_failure.code(), StatusCode::kResourceExhausted)
        << first_failure;
    // Refused, clearly, and again while the disk stays full: the store
    // tries Resume() first and writes nothing while RocksDB holds the
    // error (a write then could abort the process inside RocksDB).
    for (int attempt = 0; attempt < 3; ++attempt) {
      StatusOr<DeletionSeq> refused = AppendSample(**store, 50 + attempt);
      ASSERT_FALSE(refused.ok());
      EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted)
          << refused.status();
      EXPECT_NE(refused.status().message().find("full"), std::string::npos)
          << refused.status();
    }
    // One failed write and three refused, each counted once (RocksDB also
    // reports the failed one to the store's listener).
    EXPECT_EQ((*store)->Counters().failed_writes, before.failed_writes + 4);
    // Reads still work.
    StatusOr<std::vector<DeletionRecord>> pending =
        (*store)->PendingDeletions();
    ASSERT_TRUE(pending.ok()) << pending.status();
    EXPECT_EQ(pending->size(), acked.size());

    disk->Free();
    StatusOr<DeletionSeq> resumed = AppendSample(**store, 60);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    acked.push_back(resumed->value());
    EXPECT_GE((*store)->Counters().resumes, 1u);
  }
  // Everything acknowledged, and nothing refused, is in the log.
  StatusOr<std::unique_ptr<Store>> store = Store::Open({path, false});
  ASSERT_TRUE(store.ok()) << store.status();
  StatusOr<std::vector<DeletionRecord>> pending = (*store)->PendingDeletions();
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::vector<uint64_t> seqs;
  for (const DeletionRecord& r : *pending) seqs.push_back(r.seq.value());
  EXPECT_EQ(seqs, acked);
}

// A store opened on a disk already full (a server restarted there) could
// not open at all: opening to write writes a new log and manifest. It
// opens read-only, refuses writes with the disk's error, keeps other
// processes out, and its first write after space returns reopens it.
TEST(FullDisk, AStoreOpenedOnAFullDiskReadsAndReopensWhenSpaceReturns) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(16 << 20, &disk);
  if (disk == nullptr) return;
  const std::string path = disk->path() + "/db";
  std::vector<uint64_t> acked;
  {
    StatusOr<std::unique_ptr<Store>> store = Store::Open({path});
    ASSERT_TRUE(store.ok()) << store.status();
    const std::vector<std::string> features =
        erasure_fixture::ErasureFeatures();
    ASSERT_TRUE(
        (*store)->IngestSamples(erasure_fixture::ErasureViews(features)).ok());
    for (uint64_t id = 0; id < 3; ++id) {
      StatusOr<DeletionSeq> seq = AppendSample(**store, id);
      ASSERT_TRUE(seq.ok()) << seq.status();
      acked.push_back(seq->value());
    }
  }
  ASSERT_GT(disk->Fill(), 0u);
  StatusOr<std::unique_ptr<Store>> store = Store::Open({path, false});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->WriteStatus().code(), StatusCode::kResourceExhausted)
      << (*store)->WriteStatus();
  // Reads go on, the log whole.
  EXPECT_EQ((*store)->LastDeletionSeq().value(), acked.back());
  StatusOr<std::vector<DeletionRecord>> pending = (*store)->PendingDeletions();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->size(), acked.size());
  StatusOr<SampleLocation> where = (*store)->LookupSample(SampleId(4));
  EXPECT_TRUE(where.ok()) << where.status();
  // Writes are refused, saying why, while the disk stays full.
  for (int attempt = 0; attempt < 2; ++attempt) {
    StatusOr<DeletionSeq> refused = AppendSample(**store, 10 + attempt);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted)
        << refused.status();
    EXPECT_NE(refused.status().message().find("full"), std::string::npos)
        << refused.status();
  }
  // Opened read-only, it still holds the directory: no other store opens
  // it to take deletions this one would not see.
  StatusOr<std::unique_ptr<Store>> other = Store::Open({path, false});
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition)
      << other.status();
  disk->Free();
  // With space again the store reports itself writable before any write
  // (a server's /readyz stops saying degraded); the next write reopens.
  EXPECT_TRUE((*store)->WriteStatus().ok()) << (*store)->WriteStatus();
  StatusOr<DeletionSeq> resumed = AppendSample(**store, 12);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->value(), acked.back() + 1);
  acked.push_back(resumed->value());
  EXPECT_TRUE((*store)->WriteStatus().ok()) << (*store)->WriteStatus();
  EXPECT_GE((*store)->Counters().reopens, 1u);
  store->reset();
  StatusOr<std::unique_ptr<Store>> again = Store::Open({path, false});
  ASSERT_TRUE(again.ok()) << again.status();
  pending = (*again)->PendingDeletions();
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::vector<uint64_t> seqs;
  for (const DeletionRecord& r : *pending) seqs.push_back(r.seq.value());
  EXPECT_EQ(seqs, acked);
}

// A quota is a full disk for the store (507, the read-only open at start);
// RocksDB names only ENOSPC NoSpace.
TEST(FromRocks, AQuotaIsAFullDisk) {
  const Status quota = internal::FromRocks(
      rocksdb::Status::IOError("While appending to file: db/000012.log",
                               "Disk quota exceeded"),
      "append deletion");
  EXPECT_EQ(quota.code(), StatusCode::kResourceExhausted) << quota;
  EXPECT_NE(quota.message().find("the disk is full"), std::string::npos);
  EXPECT_EQ(internal::FromRocks(rocksdb::Status::IOError("Input/output error"),
                                "read")
                .code(),
            StatusCode::kInternal);
}

// Only a failed compaction is resumed (Resume()); any other failure, a
// write's or a flush's, waits for a reopen. An error raised while Resume()
// runs keeps the gate closed: the resume that began before it does not
// open the gate.
TEST(WriteGate, OnlyAFailedCompactionIsResumedAndALaterErrorKeepsItClosed) {
  internal::WriteGate gate;
  EXPECT_FALSE(gate.closed());
  gate.Close(ResourceExhaustedError("background compaction: no space"),
             /*resumable=*/true);
  uint64_t closes = 0;
  ASSERT_TRUE(gate.closed(&closes));
  EXPECT_FALSE(gate.needs_reopen());
  gate.Close(ResourceExhaustedError("background compaction: again"), true);
  EXPECT_FALSE(gate.Opened(closes));
  EXPECT_EQ(gate.last().message(), "background compaction: again");
  ASSERT_TRUE(gate.closed(&closes));
  EXPECT_TRUE(gate.Opened(closes));
  EXPECT_FALSE(gate.closed());

  gate.WriteFailed(ResourceExhaustedError("append: no space"));
  EXPECT_TRUE(gate.needs_reopen());
  ASSERT_TRUE(gate.closed(&closes));
  EXPECT_FALSE(gate.Opened(closes)) << "a failed write was resumed";
  // A resumable error after it does not make it resumable.
  gate.Close(ResourceExhaustedError("background compaction"), true);
  EXPECT_TRUE(gate.needs_reopen());
  gate.Reopening();
  gate.Reopened();
  EXPECT_FALSE(gate.closed());
  EXPECT_FALSE(gate.needs_reopen());

  gate.Close(ResourceExhaustedError("background flush: no space"),
             /*resumable=*/false);
  EXPECT_TRUE(gate.needs_reopen());
  uint64_t failures = 0, resumes = 0, reopens = 0;
  gate.Counts(&failures, &resumes, &reopens);
  EXPECT_EQ(failures, 1u);  // background errors are no writes of ours
  EXPECT_EQ(resumes, 2u);   // one Resume(), one reopen
  EXPECT_EQ(reopens, 1u);
}

}  // namespace
}  // namespace eraser::storage
