// Faults the engine survives: retrainings that fail (retried per shard with
// a backoff, counted, reported), parked requests whose retraining keeps
// failing (the fallback answer after max_wait, never a hang), a shutdown
// during a retraining (no new one starts; the running one gets the grace
// period, then stops), and a full disk (deletions refused and not
// acknowledged, retraining backs off, everything recovers when space
// returns, without a restart).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "engine_fixture.h"
#include "eraser/common/sync_point.h"
#include "eraser/storage/store.h"
#include "testing/small_disk.h"
#include "testing/sync_points.h"

namespace eraser::engine {
namespace {

using std::chrono::seconds;
using testing::Eventually;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class FaultTest : public ::testing::Test {
 protected:
  EngineOptions ManualOptions(const std::string& policy) {
    EngineOptions o = testing::Options(testing::CopyTemplate(dir_), policy);
    o.clock = &clock_;
    o.inference.max_queue_delay = Duration(0);
    // Plans of a few hundredths of a second, whatever the model's cost
    // measured on this machine: no deadline starts a retraining before the
    // test asks for one (a slow machine's learnt cost would).
    o.unlearning.estimates.initial_seconds_per_sample_epoch = 1e-5;
    return o;
  }

  eraser::testing::TempDir dir_;
  ManualClock clock_;
};

TEST_F(FaultTest, AFailedRetrainingIsCountedAndRetriedAfterABackoff) {
  EngineOptions o = ManualOptions("immediate");
  o.unlearning.retry.initial = seconds(1);
  std::atomic<int> attempts{0};
  o.testing.retrain_fault = [&](ShardId) {
    return ++attempts <= 2 ? InternalError("injected fault") : OkStatus();
  };
  StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Engine& engine = **opened;
  StatusOr<DeletionSeq> seq = engine.RequestDeletion(
      storage::DeletionTarget::Sample(testing::SampleIn(1, 1)));
  ASSERT_TRUE(seq.ok()) << seq.status();

  ASSERT_TRUE(Eventually([&] { return engine.Stats().retrain_failures == 1; }));
  EngineStats stats = engine.Stats();
  EXPECT_EQ(stats.backing_off, std::vector<ShardId>{ShardId(1)});
  EXPECT_TRUE(Contains(stats.last_retrain_failure, "shard 1 (training)"))
      << stats.last_retrain_failure;
  EXPECT_TRUE(Contains(stats.last_retrain_failure, "injected fault"));
  EXPECT_EQ(stats.pending_deletions, 1u);
  ASSERT_TRUE(Eventually([&] {
    return Contains(engine.metrics()->TextExposition(),
                    "eraser_shards_backing_off 1");
  }));
  EXPECT_TRUE(Contains(engine.metrics()->TextExposition(),
                       "eraser_retrain_failures_total{reason=\"training\"} 1"));
  // While the clock stands still the control loop sleeps until the retry:
  // no second attempt (an engine without a backoff would spin).
  ASSERT_TRUE(Eventually([&] { return clock_.waiters() >= 1; }));
  EXPECT_EQ(attempts.load(), 1);

  clock_.Advance(seconds(1));  // the first retry, which fails too
  ASSERT_TRUE(Eventually([&] { return engine.Stats().retrain_failures == 2; }));
  EXPECT_EQ(engine.Stats().pending_deletions, 1u);
  clock_.Advance(seconds(2));  // the backoff doubled; this one succeeds
  ASSERT_TRUE(
      Eventually([&] { return engine.Stats().pending_deletions == 0; }));
  stats = engine.Stats();
  EXPECT_EQ(attempts.load(), 3);
  EXPECT_EQ(stats.retrain_failures, 2u);
  EXPECT_TRUE(stats.backing_off.empty());
  StatusOr<DeletionInfo> info = engine.GetDeletion(*seq);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
}

TEST_F(FaultTest, AParkedRequestGetsItsFallbackWhenRetrainingKeepsFailing) {
  EngineOptions o = ManualOptions("eraser-lazy-wait");
  o.inference.max_wait = seconds(10);
  o.testing.retrain_fault = [](ShardId) {
    return InternalError("injected fault");
  };
  StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Engine& engine = **opened;
  const std::vector<std::size_t> unanimous = testing::InputsWithAgreement(4);
  ASSERT_GE(unanimous.size(), 2u);
  const std::size_t input = unanimous[0];
  const int32_t label = testing::GetTemplate().votes[input][3];
  for (uint32_t shard : {0u, 1u, 2u}) {
    ASSERT_TRUE(engine
                    .RequestDeletion(storage::DeletionTarget::Sample(
                        testing::SampleIn(shard, 0)))
                    .ok());
  }
  // Three of four shards affected: one unaffected vote cannot certify, so
  // `wait` parks it and orders retrainings, which fail.
  std::future<StatusOr<Prediction>> answer =
      engine.Infer(testing::Input(input));
  ASSERT_TRUE(Eventually([&] { return engine.Stats().retrain_failures >= 1; }));
  EXPECT_EQ(engine.Stats().parked, 1u);
  EXPECT_NE(answer.wait_for(std::chrono::seconds(0)),
            std::future_status::ready);
  clock_.Advance(seconds(10));
  ASSERT_EQ(answer.wait_for(eraser::testing::kPatience),
            std::future_status::ready);
  StatusOr<Prediction> p = answer.get();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->decision, Decision::kPartial);
  EXPECT_EQ(p->label, label);  // shard 3's vote
  EXPECT_EQ(p->affected.size(), 3u);
  EXPECT_GE(p->wait_seconds, 10.0);

  // Every shard affected: no partial answer exists; rejected (the HTTP
  // layer answers 503 with Retry-After).
  ASSERT_TRUE(engine
                  .RequestDeletion(
                      storage::DeletionTarget::Sample(testing::SampleIn(3, 0)))
                  .ok());
  answer = engine.Infer(testing::Input(unanimous[1]));
  ASSERT_TRUE(Eventually([&] { return engine.Stats().parked == 1; }));
  clock_.Advance(seconds(10));
  ASSERT_EQ(answer.wait_for(eraser::testing::kPatience),
            std::future_status::ready);
  p = answer.get();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->decision, Decision::kRejected);
  EXPECT_EQ(engine.Stats().expired, 2u);
  EXPECT_TRUE(Contains(engine.metrics()->TextExposition(),
                       "eraser_parked_expired_total 2"));
}

TEST(EngineClose, StartsNoNewRetrainingAndHonoursTheGrace) {
  eraser::testing::TempDir dir;
  const std::string data = testing::CopyTemplate(dir);
  EngineOptions o = testing::Options(data, "immediate");
  // One retraining at a time: the second shard waits for the slot.
  o.unlearning.use_idle_cores = false;
  std::atomic<int> started{0};
  o.testing.retrain_fault = [&](ShardId) {
    ++started;
    return OkStatus();
  };
  // The running retraining holds at its first stage until Close has given
  // up waiting for it (at most kPatience, so a broken Close fails the test
  // instead of hanging it).
  std::mutex mu;
  std::condition_variable cv;
  bool in_stage = false, cancelled = false;
  SyncPoints::Set("Sisa::TrainShard:Stage", [&] {
    std::unique_lock<std::mutex> lock(mu);
    in_stage = true;
    cv.notify_all();
    cv.wait_for(lock, eraser::testing::kPatience, [&] { return cancelled; });
  });
  SyncPoints::Set("EngineImpl::Close:Cancel", [&] {
    std::lock_guard<std::mutex> lock(mu);
    cancelled = true;
    cv.notify_all();
  });
  {
    StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(o);
    ASSERT_TRUE(engine.ok()) << engine.status();
    for (uint32_t shard : {0u, 1u}) {
      ASSERT_TRUE((*engine)
                      ->RequestDeletion(storage::DeletionTarget::Sample(
                          testing::SampleIn(shard, 0)))
                      .ok());
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, eraser::testing::kPatience,
                              [&] { return in_stage; }));
    }
    const auto start = std::chrono::steady_clock::now();
    (*engine)->Close(std::chrono::milliseconds(50));
    // Not held until the stage gave up: Close cancelled it.
    EXPECT_LT(std::chrono::steady_clock::now() - start,
              eraser::testing::kPatience);
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(cancelled);
  }
  SyncPoints::ClearAll();
  // One slot: the second shard's retraining never started, and the
  // cancelled one committed nothing. Both deletions are still pending.
  EXPECT_EQ(started.load(), 1);
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({data, false});
  ASSERT_TRUE(store.ok()) << store.status();
  StatusOr<std::vector<storage::DeletionRecord>> pending =
      (*store)->PendingDeletions();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->size(), 2u);
}

TEST(FullDisk, DeletionsAreRefusedRetrainingBacksOffAndAllRecovers) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  const std::string data = testing::CopyTemplate(disk->path());
  EngineOptions o = testing::Options(data, "eraser:lazy,partial,deadline=1h");
  o.unlearning.retry.initial = std::chrono::milliseconds(10);
  o.unlearning.retry.max = std::chrono::milliseconds(50);
  std::vector<DeletionSeq> acked;
  std::vector<SampleId> deleted;
  {
    StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    Engine& engine = **opened;
    auto remove = [&](SampleId sample) {
      StatusOr<DeletionSeq> seq =
          engine.RequestDeletion(storage::DeletionTarget::Sample(sample));
      if (seq.ok()) {
        acked.push_back(*seq);
        deleted.push_back(sample);
      }
      return seq.status();
    };
    for (uint32_t shard : {0u, 1u, 2u}) {
      ASSERT_TRUE(remove(testing::SampleIn(shard, 1)).ok());
    }

    ASSERT_GT(disk->Fill(), 0u);
    // The log's last page may still take a few; then they are refused.
    Status refused;
    for (std::size_t n = 0; n < 500 && refused.ok(); ++n) {
      refused = remove(testing::SampleIn(3, 0, n));
    }
    ASSERT_FALSE(refused.ok()) << "the disk never filled";
    EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted) << refused;
    EXPECT_TRUE(Contains(refused.message(), "full")) << refused;
    // Unlearning fails on the full disk: reported, counted, backing off.
    EXPECT_FALSE(engine.Drain().ok());
    EngineStats stats = engine.Stats();
    EXPECT_GE(stats.retrain_failures, 1u);
    EXPECT_TRUE(Contains(stats.last_retrain_failure, "(disk_full)"))
        << stats.last_retrain_failure;
    EXPECT_TRUE(
        Contains(engine.metrics()->TextExposition(),
                 "eraser_retrain_failures_total{reason=\"disk_full\"}"));
    EXPECT_EQ(stats.pending_deletions, acked.size());

    // Space returns: the next deletion resumes the store, and the backed-off
    // retrainings apply everything, without a restart.
    disk->Free();
    ASSERT_TRUE(remove(testing::SampleIn(3, 1)).ok());
    Status drained;
    for (int attempt = 0; attempt < 20; ++attempt) {
      if ((drained = engine.Drain()).ok()) break;
    }
    ASSERT_TRUE(drained.ok()) << drained;
    for (DeletionSeq seq : acked) {
      StatusOr<DeletionInfo> info = engine.GetDeletion(seq);
      ASSERT_TRUE(info.ok());
      EXPECT_EQ(info->state, storage::DeletionState::kApplied) << seq;
    }
    EXPECT_FALSE(engine.Stats().erasure_owed);
  }
  // Erased from every file, and still applied after a restart.
  const datasets::Split& train = testing::GetTemplate().data.train;
  const std::string files = eraser::testing::AllFileBytes(data);
  for (SampleId id : deleted) {
    const std::string bytes(
        reinterpret_cast<const char*>(train.row(id.value())),
        train.row_bytes());
    EXPECT_EQ(files.find(bytes), std::string::npos) << "sample " << id;
  }
  StatusOr<std::unique_ptr<Engine>> reopened = Engine::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->Stats().pending_deletions, 0u);
}

// A server restarted on a full disk opens read-only and answers
// (docs/storage.md), also with pending deletions whose records the open
// would complete: one a shard has left out already (recorded; nothing to
// write), and one whose samples were all erased before it arrived (to be
// marked applied: not on a full disk; the next open with space does it).
// The open wrote the first one's exclusion again at every start, and on a
// full disk failed.
TEST(FullDisk, AnEngineOpensOnAFullDiskWithDeletionsItWouldComplete) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  const std::string data = testing::CopyTemplate(disk->path());
  const SampleId in2 = testing::SampleIn(2, 1);
  const SampleId in1 = testing::SampleIn(1, 0);
  DeletionSeq both, erased;
  {
    StatusOr<std::unique_ptr<storage::Store>> store =
        storage::Store::Open({data, false});
    ASSERT_TRUE(store.ok()) << store.status();
    StatusOr<storage::SampleLocation> at2 = (*store)->LookupSample(in2);
    StatusOr<storage::SampleLocation> at1 = (*store)->LookupSample(in1);
    ASSERT_TRUE(at2.ok() && at1.ok());
    const TimePoint now = SystemClock::Default()->Now();
    StatusOr<DeletionSeq> seq = (*store)->AppendDeletion(
        storage::DeletionTarget::Owner(OwnerId(in2.value())), {*at2, *at1},
        now);
    ASSERT_TRUE(seq.ok()) << seq.status();
    both = *seq;
    // Shard 2's apply leaves it out (the same models at a new version).
    storage::ApplyBatch batch;
    uint64_t version = 0;
    for (uint32_t slice = 0; slice < testing::kSlices; ++slice) {
      StatusOr<storage::Checkpoint> c =
          (*store)->GetCheckpoint(ShardId(2), slice);
      ASSERT_TRUE(c.ok());
      version = ++c->version;
      batch.checkpoints.push_back(*c);
    }
    batch.erase = {in2};
    batch.excluded = {{both, ShardId(2), version}};
    batch.applied_at = now;
    ASSERT_TRUE((*store)->Apply(batch).ok());
    at2 = (*store)->LookupSample(in2);
    ASSERT_TRUE(at2.ok() && at2->erased);
    seq = (*store)->AppendDeletion(storage::DeletionTarget::Sample(in2), {*at2},
                                   now);
    ASSERT_TRUE(seq.ok()) << seq.status();
    erased = *seq;
  }
  ASSERT_GT(disk->Fill(), 0u);
  EngineOptions o = testing::Options(data, "eraser:lazy,partial,deadline=1h");
  {
    StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    Engine& engine = **opened;
    EXPECT_EQ(engine.Stats().pending_deletions, 1u);
    EXPECT_EQ(engine.Stats().affected_shards, std::vector<ShardId>{ShardId(1)});
    StatusOr<DeletionInfo> info = engine.GetDeletion(erased);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->state, storage::DeletionState::kPending);
  }
  disk->Free();
  StatusOr<std::unique_ptr<Engine>> reopened = Engine::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  StatusOr<DeletionInfo> info = (*reopened)->GetDeletion(erased);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
  info = (*reopened)->GetDeletion(both);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, storage::DeletionState::kPending);
  EXPECT_EQ(info->excluded_from.size(), 1u);
}

// A deletion whose samples are all erased already is applied as it is
// logged. When the disk fills between the two writes, it is still
// acknowledged: it is durable, and nothing holds its samples. (It was an
// error, for a deletion the log held.) Its record says pending until the
// next open marks it.
TEST(FullDisk, ADeletionOfErasedSamplesIsAcknowledgedWhenItsMarkFails) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  const std::string data = testing::CopyTemplate(disk->path());
  EngineOptions o = testing::Options(data, "eraser:lazy,partial,deadline=1h");
  const SampleId sample = testing::SampleIn(2, 1);
  DeletionSeq again;
  {
    StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    Engine& engine = **opened;
    ASSERT_TRUE(
        engine.RequestDeletion(storage::DeletionTarget::Sample(sample)).ok());
    ASSERT_TRUE(engine.Drain().ok());
    // Between the two writes the disk fills, and other deletions take what
    // the log's last page still had room for, until one is refused.
    std::atomic<bool> filling{false};
    std::size_t taken = 0;
    Status refused;
    SyncPoints::Set("EngineImpl::RequestDeletion:Appended", [&] {
      if (filling.exchange(true)) return;
      disk->Fill();
      for (std::size_t n = 0; n < 500 && refused.ok(); ++n) {
        refused = engine
                      .RequestDeletion(storage::DeletionTarget::Sample(
                          testing::SampleIn(3, 0, n)))
                      .status();
        if (refused.ok()) ++taken;
      }
    });
    StatusOr<DeletionSeq> seq = engine.RequestDeletion(
        storage::DeletionTarget::Owner(OwnerId(sample.value())));
    SyncPoints::ClearAll();
    ASSERT_EQ(refused.code(), StatusCode::kResourceExhausted) << refused;
    ASSERT_TRUE(seq.ok()) << seq.status();
    again = *seq;
    StatusOr<DeletionInfo> info = engine.GetDeletion(again);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->state, storage::DeletionState::kPending);
    EXPECT_EQ(engine.Stats().pending_deletions, taken);
  }
  disk->Free();
  StatusOr<std::unique_ptr<Engine>> reopened = Engine::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  StatusOr<DeletionInfo> info = (*reopened)->GetDeletion(again);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
}

// An apply commits, then its compaction fails (the disk fills between the
// two): the deletion is applied, the erasure is owed, and the engine's
// control loop retries it with the backoff until space returns, without a
// restart and without another deletion to wake it.
TEST(FullDisk, AnErasureOwedAfterACommitIsRetriedInTheBackground) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  const std::string data = testing::CopyTemplate(disk->path());
  EngineOptions o = testing::Options(data, "eraser:lazy,partial,deadline=1h");
  o.unlearning.retry.initial = std::chrono::milliseconds(10);
  o.unlearning.retry.max = std::chrono::milliseconds(50);
  const SampleId deleted = testing::SampleIn(2, 1);
  {
    StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    Engine& engine = **opened;
    std::atomic<bool> filled{false};
    SyncPoints::Set("RocksStore::Apply:Committed", [&] {
      if (!filled.exchange(true)) disk->Fill();
    });
    StatusOr<DeletionSeq> seq =
        engine.RequestDeletion(storage::DeletionTarget::Sample(deleted));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_FALSE(engine.Drain().ok());
    SyncPoints::ClearAll();
    ASSERT_TRUE(filled.load());
    StatusOr<DeletionInfo> info = engine.GetDeletion(*seq);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->state, storage::DeletionState::kApplied);
    EXPECT_TRUE(engine.Stats().erasure_owed);
    EXPECT_TRUE(
        Contains(engine.metrics()->TextExposition(), "eraser_erasure_owed 1"));
    // The retries fail while the disk is full; once it is not, one succeeds.
    disk->Free();
    EXPECT_TRUE(Eventually([&] { return !engine.Stats().erasure_owed; }));
    EXPECT_TRUE(
        Contains(engine.metrics()->TextExposition(), "eraser_erasure_owed 0"));
  }
  const datasets::Split& train = testing::GetTemplate().data.train;
  const std::string bytes(
      reinterpret_cast<const char*>(train.row(deleted.value())),
      train.row_bytes());
  EXPECT_EQ(eraser::testing::AllFileBytes(data).find(bytes), std::string::npos);
}

// A deletion of an owner whose test rows are replaced in the store, but
// whose compaction fails (the disk fills between the two): not taken, and
// the client's retry is taken only once the old rows have left the files
// (helper-54: a retry was acknowledged with them still there).
TEST(FullDisk, ATestRowErasureIsAcknowledgedOnlyOnceCompacted) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  const std::string data = disk->path() + "/data";
  const datasets::Dataset dataset = testing::OwnersDataset();
  EngineOptions o = testing::OwnersOptions(data, &dataset);
  // The background retry would pay it first: an hour away.
  o.unlearning.retry.initial = std::chrono::hours(1);
  o.unlearning.retry.max = std::chrono::hours(1);
  const std::string row(reinterpret_cast<const char*>(dataset.test.row(0)),
                        dataset.test.row_bytes());  // owner 1000's
  {
    // Trained, closed and opened again: the open flushes what it recovers
    // from the log, and the row is in a table file, where only a
    // compaction drops it.
    StatusOr<std::unique_ptr<Engine>> trained = Engine::Open(o);
    ASSERT_TRUE(trained.ok()) << trained.status();
    (*trained)->Close();
  }
  o.train_data = nullptr;
  StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Engine& engine = **opened;
  std::atomic<bool> filled{false};
  eraser::testing::SyncPointsCleared cleared;
  SyncPoints::Set("RocksStore::EraseInMeta:Committed", [&] {
    if (!filled.exchange(true)) disk->Fill();
  });
  const auto owner = storage::DeletionTarget::Owner(OwnerId(1000));
  EXPECT_FALSE(engine.RequestDeletion(owner).ok());
  ASSERT_TRUE(filled.load());
  EXPECT_TRUE(engine.Stats().erasure_owed);
  disk->Free();
  const StatusOr<DeletionSeq> retried = engine.RequestDeletion(owner);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(eraser::testing::AllFileBytes(data).find(row), std::string::npos)
      << "acknowledged with the test row still on disk";
  EXPECT_FALSE(engine.TestSample(0).ok());
  EXPECT_FALSE(engine.Stats().erasure_owed);
  engine.Close();
}

// As above, but the background retry waits an hour: the next apply's own
// compaction pays the debt, and the engine says so at once.
TEST(FullDisk, ALaterApplysCompactionPaysTheOwedErasure) {
  std::unique_ptr<eraser::testing::SmallDisk> disk;
  eraser::testing::MountOrSkip(32 << 20, &disk);
  if (disk == nullptr) return;
  const std::string data = testing::CopyTemplate(disk->path());
  EngineOptions o = testing::Options(data, "eraser:lazy,partial,deadline=1h");
  o.unlearning.retry.initial = std::chrono::hours(1);
  o.unlearning.retry.max = std::chrono::hours(1);
  const SampleId deleted = testing::SampleIn(2, 1);
  const SampleId later = testing::SampleIn(1, 1);
  {
    StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    Engine& engine = **opened;
    std::atomic<bool> filled{false};
    SyncPoints::Set("RocksStore::Apply:Committed", [&] {
      if (!filled.exchange(true)) disk->Fill();
    });
    StatusOr<DeletionSeq> seq =
        engine.RequestDeletion(storage::DeletionTarget::Sample(deleted));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_FALSE(engine.Drain().ok());
    SyncPoints::ClearAll();
    ASSERT_TRUE(filled.load());
    StatusOr<DeletionInfo> info = engine.GetDeletion(*seq);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->state, storage::DeletionState::kApplied);
    EXPECT_TRUE(engine.Stats().erasure_owed);
    EXPECT_TRUE(
        Contains(engine.metrics()->TextExposition(), "eraser_erasure_owed 1"));
    disk->Free();
    ASSERT_TRUE(
        engine.RequestDeletion(storage::DeletionTarget::Sample(later)).ok());
    ASSERT_TRUE(engine.Drain().ok());
    EXPECT_FALSE(engine.Stats().erasure_owed);
    EXPECT_TRUE(
        Contains(engine.metrics()->TextExposition(), "eraser_erasure_owed 0"));
  }
  const datasets::Split& train = testing::GetTemplate().data.train;
  const std::string files = eraser::testing::AllFileBytes(data);
  for (SampleId id : {deleted, later}) {
    const std::string bytes(
        reinterpret_cast<const char*>(train.row(id.value())),
        train.row_bytes());
    EXPECT_EQ(files.find(bytes), std::string::npos) << "sample " << id;
  }
}

}  // namespace
}  // namespace eraser::engine

namespace eraser::engine {
namespace {

// The apply window, made to happen with two sync points: deletion 2 names
// the sample deletion 1's retraining leaves out, is resolved before that
// retraining commits (the sample is still live then) and registers after
// the commit, before the Core is told of it. Its record must still say it
// left the shard, and it must end applied: the Core forgets only what the
// commit wrote, and a later order (with nothing left to train) writes it.
// Before the fix the Core recomputed the plan after the commit, counted
// deletion 2 done and left its record pending forever.
TEST(EngineApply, ADeletionAcknowledgedWhileAnApplyCommitsIsRecorded) {
  eraser::testing::TempDir dir;
  const std::string data = testing::CopyTemplate(dir);
  const SampleId sample = testing::SampleIn(0, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool resolved = false, committed = false, registered = false;
  int resolutions = 0;
  auto wait_for = [&](const bool& flag) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, eraser::testing::kPatience, [&] { return flag; });
  };
  auto set = [&](bool& flag) {
    std::lock_guard<std::mutex> lock(mu);
    flag = true;
    cv.notify_all();
  };
  SyncPoints::Set("EngineImpl::RequestDeletion:Resolved", [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (++resolutions != 2) return;  // the second deletion only
    }
    set(resolved);
    wait_for(committed);
  });
  SyncPoints::Set("EngineImpl::RunOrder:Committed", [&] {
    set(committed);
    wait_for(registered);
  });
  StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Open(testing::Options(data, "eraser:lazy,wait,deadline=1h"));
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_TRUE(
      (*engine)->RequestDeletion(storage::DeletionTarget::Sample(sample)).ok());
  StatusOr<DeletionSeq> second = InternalError("not run");
  std::thread late([&] {
    // Its owner (whose only sample it is), not the sample again: a repeat
    // of the pending deletion would be answered with it, writing nothing.
    second = (*engine)->RequestDeletion(
        storage::DeletionTarget::Owner(OwnerId(sample.value())));
    set(registered);
  });
  ASSERT_TRUE(wait_for(resolved));
  // Retrains shard 0 for deletion 1 and stops between its commit and the
  // Core's update until deletion 2 has registered.
  EXPECT_TRUE((*engine)->Drain().ok());
  late.join();
  SyncPoints::ClearAll();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, DeletionSeq(2));
  EXPECT_TRUE((*engine)->Drain().ok());
  StatusOr<DeletionInfo> info = (*engine)->GetDeletion(*second);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
  ASSERT_EQ(info->excluded_from.size(), 1u);
  EXPECT_EQ(info->excluded_from[0].first, ShardId(0));
  EXPECT_EQ((*engine)->Stats().pending_deletions, 0u);
}

}  // namespace
}  // namespace eraser::engine
