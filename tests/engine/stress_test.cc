// Concurrency stress: threads submit inferences and deletions for a while.
// Afterwards every request was answered exactly once, every deletion is
// applied after Drain, and no answer used a shard holding a deletion that
// was acknowledged before the answer was computed, unless that shard was
// counted as affected (and the certificate covered it) -- DESIGN
// guarantee 2, checked answer by answer. Variants: owners whose samples
// span several shards, the exclusive context, and injected retraining
// failures (retried with a backoff).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "engine_fixture.h"

namespace eraser::engine {
namespace {

using testing::kShards;
using testing::kTrainSamples;

struct Outcome {
  std::atomic<int> calls{0};
  StatusOr<Prediction> result = UnavailableError("not answered");
};

struct Variant {
  // Samples per owner of an ensemble trained for the test (1: the shared
  // template, every sample its own owner).
  uint32_t samples_per_owner = 1;
  ExecutionContext context = ExecutionContext::kConcurrent;
  // Fail every n-th retraining (0: none).
  int fail_every = 0;
};

void RunStress(const std::string& policy, const Variant& variant = {}) {
  SCOPED_TRACE(policy);
  eraser::testing::TempDir dir;
  EngineOptions options =
      variant.samples_per_owner > 1
          ? testing::Options(dir.Child("owners"), policy)
          : testing::Options(testing::CopyTemplate(dir), policy);
  uint64_t owners = kTrainSamples;
  if (variant.samples_per_owner > 1) {
    // Owners of several samples, placed at random: an owner's deletion
    // hits several shards.
    options.train_data = &testing::GetTemplate().data;
    options.sisa = testing::SmallSisaOptions();
    options.sisa.samples_per_owner = variant.samples_per_owner;
    owners = kTrainSamples / variant.samples_per_owner;
  }
  options.unlearning.context = variant.context;
  std::atomic<int> retrainings{0};
  if (variant.fail_every > 0) {
    options.unlearning.retry.initial = std::chrono::milliseconds(5);
    options.unlearning.retry.max = std::chrono::milliseconds(20);
    options.testing.retrain_fault = [&retrainings, &variant](ShardId) {
      return ++retrainings % variant.fail_every == 0
                 ? InternalError("injected fault")
                 : OkStatus();
    };
  }
  options.inference.threads = 2;
  options.inference.max_batch_size = 16;
  StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Engine& engine = **opened;

  constexpr int kSubmitters = 3;
  constexpr int kPerSubmitter = 300;
  constexpr int kDeletions = 40;
  std::vector<Outcome> outcomes(kSubmitters * kPerSubmitter);
  // Answers so far, and a signal for each.
  std::mutex answered_mu;
  std::condition_variable answered_cv;
  std::size_t answered = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kSubmitters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kPerSubmitter; ++i) {
        Outcome* out = &outcomes[t * kPerSubmitter + i];
        Status admitted;
        do {
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
  // seq -> when RequestDeletion returned (the acknowledgement).
  std::map<uint64_t, TimePoint> acked;
  threads.emplace_back([&] {
    std::mt19937 rng(42);
    for (int i = 0; i < kDeletions; ++i) {
      const storage::DeletionTarget target =
          i % (variant.samples_per_owner > 1 ? 2 : 4) == 1
              ? storage::DeletionTarget::Owner(OwnerId(rng() % owners))
              : storage::DeletionTarget::Sample(
                    SampleId(rng() % kTrainSamples));
      StatusOr<DeletionSeq> seq = engine.RequestDeletion(target);
      ASSERT_TRUE(seq.ok()) << seq.status();
      acked[seq->value()] = SystemClock::Default()->Now();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  for (std::thread& t : threads) t.join();
  // Every admitted request is answered even if it had to wait. Drain
  // reports a retraining that failed while it ran; the retry follows.
  Status drained;
  for (int attempt = 0; attempt < 100; ++attempt) {
    if ((drained = engine.Drain()).ok()) break;
  }
  ASSERT_TRUE(drained.ok()) << drained;
  if (variant.fail_every > 0) {
    EXPECT_GT(engine.Stats().retrain_failures, 0u);
  }
  {
    std::unique_lock<std::mutex> lock(answered_mu);
    ASSERT_TRUE(
        answered_cv.wait_for(lock, std::chrono::minutes(5),
                             [&] { return answered == outcomes.size(); }))
        << answered << " of " << outcomes.size() << " answered";
  }

  // Which model version of each shard first excludes each deletion.
  std::map<uint64_t, std::map<uint32_t, uint64_t>> excluded;
  for (const auto& [seq, when] : acked) {
    StatusOr<DeletionInfo> info = engine.GetDeletion(DeletionSeq(seq));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->state, storage::DeletionState::kApplied) << seq;
    for (const auto& [shard, version] : info->excluded_from) {
      excluded[seq].emplace(shard.value(), version);
    }
    for (ShardId shard : info->shards) {
      EXPECT_EQ(excluded[seq].count(shard.value()), 1u)
          << "deletion " << seq << " never left shard " << shard << " target "
          << info->target.ToString() << " samples " << info->samples << " excl "
          << info->excluded_from.size();
    }
  }

  int checked = 0;
  for (const Outcome& o : outcomes) {
    ASSERT_EQ(o.calls.load(), 1);
    ASSERT_TRUE(o.result.ok()) << o.result.status();
    const Prediction& p = *o.result;
    EXPECT_FALSE(p.exposed);
    if (p.decision == Decision::kRejected) continue;
    std::vector<bool> affected(kShards, false);
    for (ShardId s : p.affected) affected[s.value()] = true;
    if (p.decision == Decision::kClean) {
      EXPECT_TRUE(p.affected.empty());
    }
    for (const auto& [seq, when] : acked) {
      if (when >= p.computed_at) continue;  // acknowledged later
      for (const auto& [shard, version] : excluded[seq]) {
        // A shard that voted without being counted as affected must not
        // have held the deletion.
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
  EXPECT_EQ(engine.Stats().pending_deletions, 0u);
  EXPECT_EQ(engine.metrics()->TextExposition().find(
                "eraser_exposures_total 0") == std::string::npos,
            false);
}

TEST(EngineStress, LazyWait) { RunStress("eraser:lazy,wait,deadline=2s"); }
TEST(EngineStress, BatchPartial) {
  RunStress("eraser:batch:3,partial,deadline=2s");
}
TEST(EngineStress, ShardsWait) {
  RunStress("eraser:shards:1,wait,deadline=2s");
}
TEST(EngineStress, OwnersSpanningShards) {
  Variant v;
  v.samples_per_owner = 4;
  RunStress("eraser:lazy,wait,deadline=2s", v);
}
TEST(EngineStress, Exclusive) {
  Variant v;
  v.context = ExecutionContext::kExclusive;
  RunStress("eraser:batch:3,partial,deadline=2s", v);
}
TEST(EngineStress, InjectedRetrainingFailures) {
  Variant v;
  v.fail_every = 3;
  RunStress("eraser:lazy,wait,deadline=2s", v);
}

}  // namespace
}  // namespace eraser::engine
