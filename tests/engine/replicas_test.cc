// Several engines on one PostgreSQL store stand for `eraser serve` replicas
// behind a load balancer: deletions go to each in turn, inferences to all.
// Checked from outside the engines: no answer to a request sent after a
// deletion was acknowledged (by any engine) used a shard model that still
// held it unless that shard was counted as affected; every deletion is
// applied exactly once; the final checkpoints equal training from scratch
// without every deleted sample; and the shards' retrainings were shared
// out (an engine swaps in what another retrained).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "engine_fixture.h"
#include "eraser/common/sync_point.h"
#include "testing/postgres.h"
#include "testing/sync_points.h"

namespace eraser::engine {
namespace {

using testing::kShards;
using testing::kTrainSamples;

// Sets `gate` unless it is set already: a failed ASSERT's cleanup releases
// the engine threads' callbacks waiting on it before the clear waits for
// them.
void Release(std::promise<void>& gate) {
  try {
    gate.set_value();
  } catch (const std::future_error&) {
  }
}

struct Outcome {
  std::atomic<int> calls{0};
  TimePoint sent;
  StatusOr<Prediction> result = UnavailableError("not answered");
};

// Drains every engine until all are idle at once: a drain can end while
// another engine's apply, which this one then swaps in, is still coming.
Status DrainAll(const std::vector<std::unique_ptr<Engine>>& engines) {
  Status last;
  for (int round = 0; round < 50; ++round) {
    bool idle = true;
    for (const auto& e : engines) {
      last = e->Drain();
      if (!last.ok()) idle = false;
    }
    for (const auto& e : engines) {
      idle = idle && e->Stats().pending_deletions == 0;
    }
    if (idle) return OkStatus();
  }
  return last.ok() ? InternalError("engines never idle together") : last;
}

// A fresh database of the shared PostgreSQL cluster holding the template
// ensemble, and its name in `name` if given; empty (with the failure added)
// when there is none.
std::string TemplateDatabase(std::string* name = nullptr) {
  eraser::testing::PostgresCluster& pg = eraser::testing::SharedPostgres();
  if (!pg.ok()) {
    ADD_FAILURE() << pg.error();
    return "";
  }
  const std::string url = pg.NewDatabase(name);
  if (url.empty()) {
    ADD_FAILURE() << pg.error();
    return "";
  }
  testing::BuildInto(url);
  if (::testing::Test::HasFatalFailure()) return "";
  return url;
}

TEST(EngineReplicas, ThreeEnginesOnOneDatabaseExposeNothing) {
  const std::string url = TemplateDatabase();
  ASSERT_FALSE(url.empty());

  constexpr int kEngines = 3;
  std::vector<std::unique_ptr<Engine>> engines;
  for (int i = 0; i < kEngines; ++i) {
    EngineOptions options =
        testing::Options(url, "eraser:lazy,wait,deadline=2s");
    options.inference.threads = 1;
    options.inference.max_batch_size = 16;
    // Every answer is required below: a lease that never lapses, however
    // slow the machine (the paused and cut-off cases are in serve's tests).
    options.replica_lease = std::chrono::minutes(10);
    StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    engines.push_back(std::move(opened).value());
  }

  constexpr int kSubmitters = 3;
  constexpr int kPerSubmitter = 200;
  constexpr int kDeletions = 30;
  std::vector<Outcome> outcomes(kSubmitters * kPerSubmitter);
  std::mutex answered_mu;
  std::condition_variable answered_cv;
  std::size_t answered = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kSubmitters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kPerSubmitter; ++i) {
        const int n = t * kPerSubmitter + i;
        Outcome* out = &outcomes[n];
        Engine& engine = *engines[n % kEngines];
        Status admitted;
        do {
          out->sent = SystemClock::Default()->Now();
          admitted = engine.InferAsync(
              testing::Input(rng() % testing::Template::kHeldOut),
              [&, out](StatusOr<Prediction> p) {
                out->result = std::move(p);
                out->calls.fetch_add(1);
                std::lock_guard<std::mutex> lock(answered_mu);
                ++answered;
                answered_cv.notify_all();
              });
        } while (admitted.code() == StatusCode::kResourceExhausted);
        ASSERT_TRUE(admitted.ok()) << admitted;
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 10));
      }
    });
  }
  // seq -> when RequestDeletion returned, and the samples deleted.
  std::map<uint64_t, TimePoint> acked;
  std::set<SampleId> deleted;
  threads.emplace_back([&] {
    std::mt19937 rng(42);
    for (int i = 0; i < kDeletions; ++i) {
      const SampleId sample(rng() % kTrainSamples);
      StatusOr<DeletionSeq> seq = engines[i % kEngines]->RequestDeletion(
          i % 2 == 0 ? storage::DeletionTarget::Sample(sample)
                     : storage::DeletionTarget::Owner(OwnerId(sample.value())));
      ASSERT_TRUE(seq.ok()) << seq.status();
      // A repeat of a pending deletion gets its number: the first
      // acknowledgement is the one answers are checked against.
      acked.emplace(seq->value(), SystemClock::Default()->Now());
      deleted.insert(sample);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(DrainAll(engines).ok());
  {
    std::unique_lock<std::mutex> lock(answered_mu);
    ASSERT_TRUE(
        answered_cv.wait_for(lock, std::chrono::minutes(5),
                             [&] { return answered == outcomes.size(); }))
        << answered << " of " << outcomes.size() << " answered";
  }

  // From the log: the first model version of each shard without each
  // deletion; every deletion applied, and left each of its shards once.
  std::map<uint64_t, std::map<uint32_t, uint64_t>> excluded;
  for (const auto& [seq, when] : acked) {
    StatusOr<DeletionInfo> info = engines[0]->GetDeletion(DeletionSeq(seq));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->state, storage::DeletionState::kApplied) << seq;
    for (const auto& [shard, version] : info->excluded_from) {
      EXPECT_TRUE(excluded[seq].emplace(shard.value(), version).second)
          << "deletion " << seq << " left shard " << shard << " twice";
    }
    for (ShardId shard : info->shards) {
      EXPECT_EQ(excluded[seq].count(shard.value()), 1u)
          << "deletion " << seq << " never left shard " << shard;
    }
  }

  int checked = 0;
  for (const Outcome& o : outcomes) {
    ASSERT_EQ(o.calls.load(), 1);
    ASSERT_TRUE(o.result.ok()) << o.result.status();
    const Prediction& p = *o.result;
    EXPECT_FALSE(p.exposed);
    std::vector<bool> affected(kShards, false);
    for (ShardId s : p.affected) affected[s.value()] = true;
    for (const auto& [seq, when] : acked) {
      if (when >= o.sent) continue;  // acknowledged after the request left
      for (const auto& [shard, version] : excluded[seq]) {
        if (affected[shard]) continue;
        EXPECT_GE(p.model_versions[shard], version)
            << "request " << p.request_id << " ("
            << certify::DecisionName(p.decision) << ") used shard " << shard
            << " version " << p.model_versions[shard]
            << " which still held deletion " << seq;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);

  uint64_t retrains = 0;
  uint64_t reloads = 0;
  for (const auto& e : engines) {
    const EngineStats stats = e->Stats();
    EXPECT_EQ(stats.pending_deletions, 0u);
    retrains += stats.retrains;
    reloads += stats.shard_reloads;
    std::printf("replica: %llu retrainings, %llu models swapped in\n",
                static_cast<unsigned long long>(stats.retrains),
                static_cast<unsigned long long>(stats.shard_reloads));
  }
  EXPECT_GT(retrains, 0u);
  EXPECT_GT(reloads, 0u) << "no engine used another's retraining";
  // Every engine serves the same models at the end.
  for (const auto& e : engines) {
    EXPECT_EQ(e->Stats().model_versions, engines[0]->Stats().model_versions);
  }
  for (auto& e : engines) e->Close();
  engines.clear();
  EXPECT_EQ(testing::LastCheckpoints(url),
            testing::ScratchCheckpoints({deleted.begin(), deleted.end()}));
}

// A replica that holds a deletion pending swaps in the model another
// replica retrained without it, without retraining the shard itself:
// every renewal reads the log for models committed elsewhere. Until then
// the shard counts as affected there, and its answers degrade.
TEST(EngineReplicas, AReplicaSwapsInWhatAnotherRetrainedWithoutRetrainingIt) {
  const std::string url = TemplateDatabase();
  ASSERT_FALSE(url.empty());
  std::mutex mu;
  std::condition_variable swapped;
  SyncPoints::Set("EngineImpl::ReloadShards:Done", [&] {
    std::lock_guard<std::mutex> lock(mu);
    swapped.notify_all();
  });
  // `retrains` retrains at once; `waits` would only at an hour's deadline.
  StatusOr<std::unique_ptr<Engine>> retrains =
      Engine::Open(testing::Options(url, "immediate"));
  ASSERT_TRUE(retrains.ok()) << retrains.status();
  StatusOr<std::unique_ptr<Engine>> waits =
      Engine::Open(testing::Options(url, "eraser:lazy,wait,deadline=1h"));
  ASSERT_TRUE(waits.ok()) << waits.status();

  const SampleId sample = testing::SampleIn(1, 1, 0);
  StatusOr<DeletionSeq> seq =
      (*retrains)->RequestDeletion(storage::DeletionTarget::Sample(sample));
  ASSERT_TRUE(seq.ok()) << seq.status();
  // Acknowledged: both hold it pending until a model without it serves.
  EXPECT_EQ((*waits)->Stats().pending_deletions, 1u);
  ASSERT_TRUE((*retrains)->Drain().ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(swapped.wait_for(lock, std::chrono::minutes(2), [&] {
      return (*waits)->Stats().pending_deletions == 0;
    })) << "the other replica never swapped the retrained model in";
  }
  SyncPoints::ClearAll();
  const EngineStats stats = (*waits)->Stats();
  EXPECT_EQ(stats.retrains, 0u);
  EXPECT_EQ(stats.shard_reloads, 1u);
  EXPECT_EQ(stats.model_versions, (*retrains)->Stats().model_versions);
  StatusOr<DeletionInfo> info = (*waits)->GetDeletion(*seq);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
  (*waits)->Close();
  (*retrains)->Close();
}

// A replica reads the shared log for what others acknowledged, its own
// deletions included. A record read before an apply committed and
// registered after the swap of its model made the deletion pending again,
// with the samples the record named then: its shard affected again until
// another order, and the deletion applied (and counted) twice
// (helper-40's review). The read is repeated when the served
// versions changed meanwhile. Here the read comes first, and the
// retraining holds back until it has.
TEST(EngineReplicas, ItsOwnDeletionReadFromTheLogIsNotRegisteredTwice) {
  const std::string url = TemplateDatabase();
  ASSERT_FALSE(url.empty());
  StatusOr<std::unique_ptr<Engine>> opened =
      Engine::Open(testing::Options(url, "immediate"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  Engine& engine = **opened;

  std::promise<void> read, swapped;
  std::atomic<bool> reading{false}, training{false}, swapping{false};
  // Cleared however the test ends, before what the callbacks use goes; a
  // failed ASSERT first releases the callbacks that wait.
  eraser::testing::SyncPointsCleared cleared([&] {
    Release(read);
    Release(swapped);
  });
  // The first read that finds the deletion waits for its swap; its
  // retraining waits for that read.
  SyncPoints::Set("EngineImpl::CatchUp:Read", [&] {
    if (reading.exchange(true)) return;
    Release(read);
    swapped.get_future().wait_for(std::chrono::minutes(2));
  });
  SyncPoints::Set("Sisa::TrainShard:Stage", [&] {
    if (!training.exchange(true)) {
      read.get_future().wait_for(std::chrono::minutes(2));
    }
  });
  SyncPoints::Set("EngineImpl::RunOrder:Swapped", [&] {
    if (!swapping.exchange(true)) Release(swapped);
  });
  ASSERT_TRUE(engine
                  .RequestDeletion(
                      storage::DeletionTarget::Sample(testing::SampleIn(1, 1)))
                  .ok());
  // Another deletion reads the log first (unless the lease thread did).
  ASSERT_TRUE(engine
                  .RequestDeletion(
                      storage::DeletionTarget::Sample(testing::SampleIn(2, 1)))
                  .ok());
  ASSERT_TRUE(engine.Drain().ok());
  SyncPoints::ClearAll();
  ASSERT_TRUE(reading && training && swapping);
  EXPECT_EQ(engine.Stats().pending_deletions, 0u);
  // Each deletion applied once.
  const std::string metrics = engine.metrics()->TextExposition();
  EXPECT_NE(metrics.find("\neraser_deletions_applied_total 2\n"),
            std::string::npos)
      << metrics;
  engine.Close();
}

// A repeat answered with a deletion of its target that another replica
// appended after this one read the log (not yet acknowledged there):
// registered here before the answer, as this replica's own append would be
// (helper-56). The reads of other threads wait meanwhile, so only the
// request's own can register it.
TEST(EngineReplicas, ARepeatFoundBeyondWhatItReadIsRegisteredBeforeTheAnswer) {
  const std::string url = TemplateDatabase();
  ASSERT_FALSE(url.empty());
  StatusOr<std::unique_ptr<Engine>> opened =
      Engine::Open(testing::Options(url, "eraser:lazy,wait,deadline=1h"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  Engine& engine = **opened;
  // The owner whose only sample it is: its deletion erases the sample.
  const SampleId sample = testing::SampleIn(1, 1);
  const storage::DeletionTarget target =
      storage::DeletionTarget::Sample(sample);
  ASSERT_TRUE(engine
                  .RequestDeletion(
                      storage::DeletionTarget::Owner(OwnerId(sample.value())))
                  .ok());
  ASSERT_TRUE(engine.Drain().ok());
  StatusOr<std::unique_ptr<storage::Store>> other =
      storage::Store::Open({url, /*create_if_missing=*/false});
  ASSERT_TRUE(other.ok()) << other.status();
  StatusOr<storage::SampleLocation> erased = (*other)->LookupSample(sample);
  ASSERT_TRUE(erased.ok() && erased->erased);

  std::promise<void> answered;
  std::shared_future<void> answered_done = answered.get_future().share();
  std::atomic<bool> holding{false};
  StatusOr<DeletionSeq> appended = InternalError("not run");
  const std::thread::id test_thread = std::this_thread::get_id();
  eraser::testing::SyncPointsCleared cleared([&] { Release(answered); });
  SyncPoints::Set("EngineImpl::CatchUp:Begin", [&] {
    if (std::this_thread::get_id() != test_thread && holding.load()) {
      answered_done.wait_for(std::chrono::minutes(2));
    }
  });
  // The other replica's append of the same target, after this request's
  // reads of the log.
  SyncPoints::Set("EngineImpl::RequestDeletion:Resolved", [&] {
    if (holding.exchange(true)) return;
    appended = (*other)->AppendDeletion(target, {*erased},
                                        SystemClock::Default()->Now());
  });
  const StatusOr<DeletionSeq> seq = engine.RequestDeletion(target);
  ASSERT_TRUE(appended.ok()) << appended.status();
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, *appended);
  // An answer decided now counts it.
  const StatusOr<Prediction> p = engine.Infer(testing::Input(0)).get();
  answered.set_value();
  SyncPoints::ClearAll();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_GE(p->deletion_watermark, seq->value());
  // Left pending by the other (as a mark that failed would leave it), it
  // had nothing left to do: marked applied by the repeat.
  EXPECT_EQ((*other)->GetDeletion(*seq)->state,
            storage::DeletionState::kApplied);
  engine.Close();
}

// The other order: between this replica's append of a deletion and its
// registration, another request's read of the log registers it, and the
// deletion is applied. The registration that follows must not make it
// pending again.
TEST(EngineReplicas,
     ItsOwnDeletionRegisteredByALogReadFirstIsNotRegisteredAgain) {
  const std::string url = TemplateDatabase();
  ASSERT_FALSE(url.empty());
  StatusOr<std::unique_ptr<Engine>> opened =
      Engine::Open(testing::Options(url, "immediate"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  Engine& engine = **opened;

  std::atomic<bool> appended{false};
  std::thread other;
  std::mutex mu;
  std::condition_variable cv;
  int swaps = 0;
  bool applied_first = false;
  // Cleared however the test ends, before what the callbacks use goes.
  eraser::testing::SyncPointsCleared cleared([&] {
    if (other.joinable()) other.join();
  });
  SyncPoints::Set("EngineImpl::RunOrder:Swapped", [&] {
    std::lock_guard<std::mutex> lock(mu);
    ++swaps;
    cv.notify_all();
  });
  SyncPoints::Set("EngineImpl::RequestDeletion:Appended", [&] {
    if (appended.exchange(true)) return;
    // Deletion 1 is durable, not registered here yet. Another request
    // reads the log, which registers it, and it is applied.
    other = std::thread([&] {
      EXPECT_TRUE(engine
                      .RequestDeletion(storage::DeletionTarget::Sample(
                          testing::SampleIn(2, 1)))
                      .ok());
    });
    std::unique_lock<std::mutex> lock(mu);
    applied_first = cv.wait_for(lock, std::chrono::minutes(2), [&] {
      StatusOr<DeletionInfo> first = engine.GetDeletion(DeletionSeq(1));
      return swaps > 0 && first.ok() &&
             first->state == storage::DeletionState::kApplied;
    });
  });
  StatusOr<DeletionSeq> seq = engine.RequestDeletion(
      storage::DeletionTarget::Sample(testing::SampleIn(1, 1)));
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(seq->value(), 1u);
  ASSERT_TRUE(applied_first);
  other.join();
  ASSERT_TRUE(engine.Drain().ok());
  EXPECT_EQ(engine.Stats().pending_deletions, 0u);
  const std::string metrics = engine.metrics()->TextExposition();
  EXPECT_NE(metrics.find("\neraser_deletions_applied_total 2\n"),
            std::string::npos)
      << metrics;
  engine.Close();
}

// A deletion's arrival time is the acknowledging replica's wall clock. A
// replica whose clock is behind registers it at its own present instead
// of a time its clock has not reached: its deadline comes when the
// deadline has passed on its clock, not a skew later (here eleven months).
TEST(EngineReplicas, AReplicaWhoseClockIsBehindKeepsTheDeadline) {
  const std::string url = TemplateDatabase();
  ASSERT_FALSE(url.empty());
  ManualClock behind;  // 2026-01-01
  ASSERT_LT(behind.Now(), SystemClock::Default()->Now());
  // After the swap, which counts the retraining (run with the engine's
  // lock held: the wait below calls nothing of the engine's).
  std::mutex mu;
  std::condition_variable committed;
  int swaps = 0;
  SyncPoints::Set("EngineImpl::RunOrder:Swapped", [&] {
    std::lock_guard<std::mutex> lock(mu);
    ++swaps;
    committed.notify_all();
  });
  // Plans of a few hundredths of a second, whatever the model's cost
  // measured on this machine: the replica whose clock is behind retrains
  // at its deadline, the other not within the test.
  auto options = [&](const std::string& policy) {
    EngineOptions o = testing::Options(url, policy);
    o.unlearning.estimates.initial_seconds_per_sample_epoch = 1e-5;
    return o;
  };
  StatusOr<std::unique_ptr<Engine>> on_time =
      Engine::Open(options("eraser:lazy,wait,deadline=1h"));
  ASSERT_TRUE(on_time.ok()) << on_time.status();
  EngineOptions late_options = options("eraser:lazy,wait,deadline=30s");
  late_options.clock = &behind;
  StatusOr<std::unique_ptr<Engine>> late = Engine::Open(late_options);
  ASSERT_TRUE(late.ok()) << late.status();

  StatusOr<DeletionSeq> seq = (*on_time)->RequestDeletion(
      storage::DeletionTarget::Sample(testing::SampleIn(2, 0, 0)));
  ASSERT_TRUE(seq.ok()) << seq.status();
  ASSERT_EQ((*late)->Stats().pending_deletions, 1u);
  behind.Advance(std::chrono::seconds(31));
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(committed.wait_for(lock, std::chrono::minutes(2), [&] {
      return swaps > 0;
    })) << "the replica whose clock is behind never met the deadline";
  }
  SyncPoints::ClearAll();
  EXPECT_EQ((*late)->Stats().retrains, 1u);
  EXPECT_EQ((*on_time)->Stats().retrains, 0u);
  (*late)->Close();
  (*on_time)->Close();
}

// A deletion whose samples were all erased when it arrived is applied at
// once; when marking it failed after its synced append (a full disk, a lost
// connection), its record said pending for good on a shared store, whose
// open read nothing else of the log's pending part. An engine's open marks
// it, as on a data directory, and only it: a deletion whose sample was
// live when it arrived stays pending until a model leaves the sample out.
TEST(EngineReplicas, AnOpenMarksADeletionOfErasedSamplesLeftPending) {
  const std::string url = TemplateDatabase();
  ASSERT_FALSE(url.empty());
  const SampleId sample = testing::SampleIn(2, 1);
  const SampleId other = testing::SampleIn(3, 1);
  {
    StatusOr<std::unique_ptr<Engine>> opened =
        Engine::Open(testing::Options(url, "immediate"));
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE((*opened)
                    ->RequestDeletion(storage::DeletionTarget::Sample(sample))
                    .ok());
    ASSERT_TRUE((*opened)->Drain().ok());
    (*opened)->Close();
  }
  DeletionSeq erased_before, live_before;
  {
    StatusOr<std::unique_ptr<storage::Store>> store =
        storage::Store::Open({url, /*create_if_missing=*/false});
    ASSERT_TRUE(store.ok()) << store.status();
    StatusOr<storage::SampleLocation> erased = (*store)->LookupSample(sample);
    ASSERT_TRUE(erased.ok()) << erased.status();
    ASSERT_TRUE(erased->erased);
    // What a repeat of the deletion wrote before the mark that failed
    // (before 2026-12-06; now an older build's, or a first deletion of a
    // sample its owner's deletion erased).
    StatusOr<DeletionSeq> seq =
        (*store)->AppendDeletion(storage::DeletionTarget::Sample(sample),
                                 {*erased}, SystemClock::Default()->Now());
    ASSERT_TRUE(seq.ok()) << seq.status();
    erased_before = *seq;
    // A deletion of a live sample, logged by a replica that stopped.
    StatusOr<storage::SampleLocation> live = (*store)->LookupSample(other);
    ASSERT_TRUE(live.ok()) << live.status();
    ASSERT_FALSE(live->erased);
    seq = (*store)->AppendDeletion(storage::DeletionTarget::Sample(other),
                                   {*live}, SystemClock::Default()->Now());
    ASSERT_TRUE(seq.ok()) << seq.status();
    live_before = *seq;
  }
  StatusOr<std::unique_ptr<Engine>> reopened =
      Engine::Open(testing::Options(url, "eraser:lazy,wait,deadline=1h"));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  StatusOr<DeletionInfo> info = (*reopened)->GetDeletion(erased_before);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
  info = (*reopened)->GetDeletion(live_before);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, storage::DeletionState::kPending);
  EXPECT_EQ((*reopened)->Stats().pending_deletions, 1u);
  (*reopened)->Close();
}

// A database that lost acknowledged deletions (a failover to a standby that
// was not synchronous, a restore from a backup) issues their numbers again:
// a replica that had read them took the new deletions under those numbers
// as registered, and answered from models that still held them
// (helper-48). Such a replica refuses answers and deletions instead.
class EngineReplicasRewound : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = TemplateDatabase(&name_);
    ASSERT_FALSE(url_.empty());
    StatusOr<std::unique_ptr<Engine>> opened =
        Engine::Open(testing::Options(url_, "immediate"));
    ASSERT_TRUE(opened.ok()) << opened.status();
    engine_ = std::move(opened).value();
    for (std::size_t n = 0; n < 3; ++n) {
      ASSERT_TRUE(engine_
                      ->RequestDeletion(storage::DeletionTarget::Sample(
                          testing::SampleIn(1, 0, n)))
                      .ok());
    }
    ASSERT_TRUE(engine_->Drain().ok());
    // The database forgets the last two, as a standby promoted without
    // them would.
    eraser::testing::PostgresCluster& pg = eraser::testing::SharedPostgres();
    pg.Sql(name_,
           "DELETE FROM eraser_deletions WHERE seq > 1; "
           "UPDATE eraser_log_head SET last = 1");
    ASSERT_TRUE(pg.ok()) << pg.error();
  }
  void TearDown() override {
    if (engine_ != nullptr) engine_->Close();
  }

  static bool Refused(const StatusOr<Prediction>& answer) {
    return answer.status().code() == StatusCode::kUnavailable &&
           answer.status().message().find("read up to 3") != std::string::npos;
  }

  std::string name_, url_;
  std::unique_ptr<Engine> engine_;
};

// The next deletion finds the loss (its read of the log misses the last
// record read; without that check, the number it gets is one the replica
// had read): refused, not acknowledged, and from then on answers are
// refused too.
TEST_F(EngineReplicasRewound, ADeletionAfterTheLossIsRefused) {
  const StatusOr<DeletionSeq> seq = engine_->RequestDeletion(
      storage::DeletionTarget::Sample(testing::SampleIn(2, 0)));
  EXPECT_EQ(seq.status().code(), StatusCode::kUnavailable) << seq.status();
  EXPECT_THAT(std::string(seq.status().message()),
              ::testing::HasSubstr("read up to 3"));
  EXPECT_TRUE(Refused(engine_->Infer(testing::Input(0)).get()));
  EXPECT_FALSE(engine_->Stats().lease_held);
}

// The log grows again past what the replica read, under other replicas'
// appends (a replica restarted after the loss reads the log as it is): the
// record at the last number it read is not the one it read, and it says
// so when their notification makes it read again.
TEST_F(EngineReplicasRewound, ALogFilledAgainPastWhatItReadIsFound) {
  {
    StatusOr<std::unique_ptr<storage::Store>> other =
        storage::Store::Open({url_, /*create_if_missing=*/false});
    ASSERT_TRUE(other.ok()) << other.status();
    for (std::size_t n = 0; n < 3; ++n) {
      const SampleId sample = testing::SampleIn(3, 0, n);
      StatusOr<storage::SampleLocation> at = (*other)->LookupSample(sample);
      ASSERT_TRUE(at.ok()) << at.status();
      ASSERT_TRUE((*other)
                      ->AppendDeletion(storage::DeletionTarget::Sample(sample),
                                       {*at}, SystemClock::Default()->Now())
                      .ok());
    }
  }
  ASSERT_TRUE(eraser::testing::Eventually(
      [&] { return Refused(engine_->Infer(testing::Input(0)).get()); },
      eraser::testing::kPatience, std::chrono::milliseconds(20)));
}

// Without a deletion, the lease's next renewal finds the log shorter.
TEST_F(EngineReplicasRewound, TheNextRenewalFindsTheLogShorter) {
  ASSERT_TRUE(eraser::testing::Eventually(
      [&] { return Refused(engine_->Infer(testing::Input(0)).get()); },
      eraser::testing::kPatience, std::chrono::milliseconds(20)));
  EXPECT_EQ(engine_
                ->RequestDeletion(
                    storage::DeletionTarget::Sample(testing::SampleIn(2, 0)))
                .status()
                .code(),
            StatusCode::kUnavailable);
}

// A database of its own from the template, and an engine on it.
class EngineReplicasLost : public ::testing::Test {
 protected:
  void Open(const std::string& policy) {
    url_ = TemplateDatabase(&name_);
    ASSERT_FALSE(url_.empty());
    StatusOr<std::unique_ptr<Engine>> opened =
        Engine::Open(testing::Options(url_, policy));
    ASSERT_TRUE(opened.ok()) << opened.status();
    engine_ = std::move(opened).value();
  }
  void TearDown() override {
    if (engine_ != nullptr) engine_->Close();
  }
  // The database loses deletion 1, as a standby promoted without it would.
  void LoseTheFirstDeletion() {
    pg_.Sql(name_,
            "DELETE FROM eraser_deletions WHERE seq = 1; "
            "UPDATE eraser_log_head SET last = 0");
  }
  static std::string Described(const StatusOr<DeletionSeq>& seq) {
    return seq.ok() ? "acknowledged as " + std::to_string(seq->value())
                    : seq.status().ToString();
  }

  eraser::testing::PostgresCluster& pg_ = eraser::testing::SharedPostgres();
  std::string name_, url_;
  std::unique_ptr<Engine> engine_;
};

// The deletions a database loses first are the newest, often this
// replica's own, acknowledged but not yet read back: nothing it has read
// is missing. Its own appends count as read: the next deletion, given the
// lost one's number, is refused (helper-50).
TEST_F(EngineReplicasLost, ItsOwnDeletionLostBeforeItReadItBackIsFound) {
  ASSERT_NO_FATAL_FAILURE(Open("eraser:lazy,wait,deadline=1h"));
  std::promise<void> lost;
  std::shared_future<void> lost_done = lost.get_future().share();
  std::atomic<bool> losing{false};
  const std::thread::id test_thread = std::this_thread::get_id();
  eraser::testing::SyncPointsCleared cleared([&] { Release(lost); });
  // From the append on, the reads of other threads (the notification of
  // the append) wait for the loss.
  SyncPoints::Set("EngineImpl::CatchUp:Begin", [&] {
    if (std::this_thread::get_id() != test_thread && losing.load()) {
      lost_done.wait_for(std::chrono::minutes(2));
    }
  });
  SyncPoints::Set("EngineImpl::RequestDeletion:Appended",
                  [&] { losing = true; });
  const StatusOr<DeletionSeq> first = engine_->RequestDeletion(
      storage::DeletionTarget::Sample(testing::SampleIn(1, 0)));
  // The database loses it once acknowledged, before anything read it back.
  LoseTheFirstDeletion();
  lost.set_value();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(pg_.ok()) << pg_.error();
  const StatusOr<DeletionSeq> second = engine_->RequestDeletion(
      storage::DeletionTarget::Sample(testing::SampleIn(2, 0)));
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable)
      << Described(second);
  EXPECT_FALSE(engine_->Stats().lease_held);
}

// Lost before its acknowledgement (while the other replicas registered
// it): not acknowledged, and the replica stops (helper-51).
TEST_F(EngineReplicasLost, ADeletionLostBeforeItsAcknowledgementIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Open("eraser:lazy,wait,deadline=1h"));
  std::atomic<bool> done{false};
  eraser::testing::SyncPointsCleared cleared;
  SyncPoints::Set("EngineImpl::RequestDeletion:Appended", [&] {
    if (!done.exchange(true)) LoseTheFirstDeletion();
  });
  const StatusOr<DeletionSeq> first = engine_->RequestDeletion(
      storage::DeletionTarget::Sample(testing::SampleIn(1, 0)));
  ASSERT_TRUE(pg_.ok()) << pg_.error();
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable)
      << Described(first);
  EXPECT_FALSE(engine_->Stats().lease_held);
}

// A deletion of its own appended while a lease renewal was in the database
// is beyond the log's head that renewal read: no loss. (Taken for one, it
// stopped the replay on PostgreSQL on a slower machine.)
TEST_F(EngineReplicasLost, ItsOwnDeletionDuringARenewalIsNoLoss) {
  ASSERT_NO_FATAL_FAILURE(Open("immediate"));
  Engine& engine = *engine_;
  std::atomic<bool> armed{true};
  std::atomic<int> later{0};  // renewals after the one the deletion came in
  Status appended = UnavailableError("no renewal");
  eraser::testing::SyncPointsCleared cleared;
  // On the lease thread, after the renewal read the head and before its
  // check.
  SyncPoints::Set("EngineImpl::RenewLease:Renewed", [&] {
    if (armed.exchange(false)) {
      appended = engine
                     .RequestDeletion(storage::DeletionTarget::Sample(
                         testing::SampleIn(1, 0)))
                     .status();
    } else {
      ++later;
    }
  });
  // A later renewal means the one that came with the deletion has ended;
  // a replica that took it for a loss renews no more and refuses answers.
  ASSERT_TRUE(eraser::testing::Eventually(
      [&] {
        return later.load() > 0 || !engine.Infer(testing::Input(0)).get().ok();
      },
      eraser::testing::kPatience, std::chrono::milliseconds(20)));
  EXPECT_TRUE(appended.ok()) << appended;
  const StatusOr<Prediction> answer = engine.Infer(testing::Input(0)).get();
  EXPECT_TRUE(answer.ok()) << answer.status();
  EXPECT_TRUE(engine.Stats().lease_held);
}

}  // namespace
}  // namespace eraser::engine
