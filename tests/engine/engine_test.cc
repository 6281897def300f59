// The engine's API contract, bad inputs, and each policy's defining
// behaviour on scripted scenarios.
#include "eraser/engine/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "engine_fixture.h"
#include "eraser/certify/certificate.h"
#include "eraser/certify/vote.h"
#include "eraser/common/mutex.h"
#include "eraser/common/sync_point.h"
#include "eraser/storage/store.h"
#include "testing/sync_points.h"

namespace eraser::engine {
namespace {

using ::testing::ElementsAre;
using testing::GetTemplate;
using ::testing::HasSubstr;
using testing::Input;
using testing::InputsWithAgreement;
using testing::kShards;
using testing::Options;
using testing::SampleIn;
using DT = storage::DeletionTarget;

std::unique_ptr<Engine> OpenOrDie(const EngineOptions& options) {
  StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

Prediction InferOrDie(Engine& engine, std::size_t input) {
  StatusOr<Prediction> p = engine.Infer(Input(input)).get();
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : Prediction{};
}

int Plurality(const std::vector<int32_t>& votes) {
  return certify::PluralityVote(votes.data(), votes.size(), 10);
}

class EngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<Engine> Open(const std::string& policy) {
    return OpenOrDie(Options(data_, policy));
  }
  eraser::testing::TempDir dir_;
  std::string data_ = testing::CopyTemplate(dir_);
};

TEST_F(EngineTest, AnswersTheEnsemblePluralityClean) {
  auto engine = Open("eraser-lazy-wait");
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->num_shards(), kShards);
  EXPECT_EQ(engine->feature_size(), 784u);
  EXPECT_EQ(engine->policy(), "eraser:lazy,wait,deadline=30s");
  for (std::size_t i = 0; i < 40; ++i) {
    const Prediction p = InferOrDie(*engine, i);
    EXPECT_EQ(p.label, Plurality(GetTemplate().votes[i])) << i;
    EXPECT_EQ(p.decision, Decision::kClean);
    EXPECT_TRUE(p.affected.empty());
    EXPECT_THAT(p.model_versions, ElementsAre(1, 1, 1, 1));
    EXPECT_FALSE(p.exposed);
    EXPECT_GE(p.latency_seconds, p.compute_seconds);
  }
}

TEST_F(EngineTest, CallbackFormAnswersExactlyOnce) {
  auto engine = Open("eraser-lazy-wait");
  std::atomic<int> calls{0};
  std::promise<void> done;
  ASSERT_TRUE(engine
                  ->InferAsync(Input(3),
                               [&](StatusOr<Prediction> p) {
                                 EXPECT_TRUE(p.ok());
                                 if (++calls == 1) done.set_value();
                               })
                  .ok());
  done.get_future().wait();
  engine->Close();
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(EngineTest, BadInputsGetClearErrorsAndChangeNothing) {
  auto engine = Open("eraser-lazy-wait");
  std::vector<float> short_input(783, 0.5f);
  StatusOr<Prediction> p = engine->Infer(short_input).get();
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(),
              HasSubstr("expected 784 features, got 783"));
  std::vector<float> nan = Input(0);
  nan[17] = std::nanf("");
  EXPECT_EQ(engine->Infer(nan).get().status().code(),
            StatusCode::kInvalidArgument);

  StatusOr<DeletionSeq> unknown =
      engine->RequestDeletion(DT::Sample(SampleId(999999)));
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown sample 999999"));
  EXPECT_EQ(engine->RequestDeletion(DT::Owner(OwnerId(999999))).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(engine->GetDeletion(DeletionSeq(1)).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(engine->Stats().pending_deletions, 0u);
  EXPECT_TRUE(engine->metrics()->TextExposition().find(
                  "eraser_inference_refused_total{reason=\"bad_input\"} 2") !=
              std::string::npos);
}

TEST_F(EngineTest, CallsAfterCloseAreUnavailable) {
  auto engine = Open("eraser-lazy-wait");
  engine->Close();
  engine->Close();  // idempotent
  EXPECT_EQ(engine->Infer(Input(0)).get().status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(engine->RequestDeletion(DT::Sample(SampleIn(0, 0))).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(engine->Drain().code(), StatusCode::kUnavailable);
}

TEST_F(EngineTest, OptionsAreValidatedNamingTheField) {
  EngineOptions o = Options(data_, "eraser-lazy-wait");
  o.data_dir.clear();
  EXPECT_THAT(Engine::Open(o).status().message(), HasSubstr("data_dir"));
  o = Options(data_, "eraser:batch:4,wait");
  o.policy.batch_size = 0;  // what no policy string can say
  StatusOr<std::unique_ptr<Engine>> bad = Engine::Open(o);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("policy: batch size"));
  o = Options(data_, "eraser-lazy-wait");
  o.inference.threads = 0;
  EXPECT_THAT(Engine::Open(o).status().message(),
              HasSubstr("inference.threads must be in 1..64"));
  o = Options(data_, "eraser-lazy-wait");
  o.unlearning.estimates.safety = 0.5;
  EXPECT_THAT(Engine::Open(o).status().message(),
              HasSubstr("unlearning.estimates.safety"));
  o = Options(data_, "eraser-lazy-wait");
  o.unlearning.retry.max = o.unlearning.retry.initial / 2;
  EXPECT_THAT(Engine::Open(o).status().message(),
              HasSubstr("unlearning.retry.max must be at least "
                        "unlearning.retry.initial"));
  o = Options(data_, "eraser-lazy-wait");
  o.unlearning.retry.initial = Duration(0);
  EXPECT_THAT(Engine::Open(o).status().message(),
              HasSubstr("unlearning.retry.initial must be positive"));
  o = Options(data_, "eraser-lazy-wait");
  o.inference.max_wait = Duration(0);
  EXPECT_THAT(Engine::Open(o).status().message(),
              HasSubstr("inference.max_wait must be positive"));
  o = Options(dir_.Child("nothing-here"), "eraser-lazy-wait");
  EXPECT_EQ(Engine::Open(o).status().code(), StatusCode::kNotFound);
}

// The first retraining's plan rests on the model's own cost, measured when
// it was trained; an operator's positive rate overrides it.
TEST_F(EngineTest, PlansStartFromTheModelsMeasuredCost) {
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({data_, false});
  ASSERT_TRUE(store.ok());
  StatusOr<std::unique_ptr<unlearning::Sisa>> sisa =
      unlearning::Sisa::Open(store->get(), 1);
  ASSERT_TRUE(sisa.ok());
  StatusOr<unlearning::ModelCost> cost = (*sisa)->ReadModelCost();
  ASSERT_TRUE(cost.ok()) << cost.status();
  sisa->reset();
  store->reset();
  {
    std::unique_ptr<Engine> engine = Open("eraser-lazy-wait");
    ASSERT_NE(engine, nullptr);
    const PlanningFigures planning = engine->Stats().planning;
    EXPECT_DOUBLE_EQ(planning.model_cost.train_seconds_per_sample_epoch,
                     cost->train_seconds_per_sample_epoch);
    EXPECT_DOUBLE_EQ(planning.initial_seconds_per_sample_epoch,
                     cost->train_seconds_per_sample_epoch);
    EXPECT_EQ(planning.retrainings_measured, 0u);
    EXPECT_GT(planning.whole_shard_retrain_seconds, 0.0);
    // The MLP trains shards in parallel: the options' slot and the
    // borrowable inference core.
    EXPECT_EQ(planning.slots, 1);
    EXPECT_EQ(planning.borrowable_slots, 1);
  }
  EngineOptions o = Options(data_, "eraser-lazy-wait");
  o.unlearning.estimates.initial_seconds_per_sample_epoch = 0.25;
  std::unique_ptr<Engine> engine = OpenOrDie(o);
  ASSERT_NE(engine, nullptr);
  EXPECT_DOUBLE_EQ(engine->Stats().planning.initial_seconds_per_sample_epoch,
                   0.25);
}

TEST_F(EngineTest, FullQueueIsResourceExhausted) {
  // On a manual clock the first request waits in the queue for a batch to
  // fill until the test moves time, however slow the machine.
  ManualClock clock;
  EngineOptions o = Options(data_, "eraser-lazy-wait");
  o.clock = &clock;
  o.inference.queue_capacity = 1;
  o.inference.max_batch_size = 64;
  o.inference.max_queue_delay = std::chrono::milliseconds(500);
  auto engine = OpenOrDie(o);
  // Admitted before Infer returns; with no arrival rate known yet it waits
  // for its batch until the clock passes its delay.
  std::future<StatusOr<Prediction>> first = engine->Infer(Input(0));
  StatusOr<Prediction> second = engine->Infer(Input(1)).get();
  EXPECT_EQ(second.status().code(), StatusCode::kResourceExhausted);
  clock.Advance(o.inference.max_queue_delay);
  ASSERT_EQ(first.wait_for(eraser::testing::kPatience),
            std::future_status::ready);
  EXPECT_TRUE(first.get().ok());
  // Capacity is back once the first is answered. (Half a second after the
  // first, the queue expects no more requests: the third goes at once; the
  // clock is moved in case it waits.)
  std::future<StatusOr<Prediction>> third = engine->Infer(Input(2));
  clock.Advance(o.inference.max_queue_delay);
  ASSERT_EQ(third.wait_for(eraser::testing::kPatience),
            std::future_status::ready);
  EXPECT_TRUE(third.get().ok());
}

// eraser_inference_refused_total{reason}, 0 before the first.
double RefusedCount(Engine& engine, const std::string& reason) {
  const std::string text = engine.metrics()->TextExposition();
  const std::string series =
      "\neraser_inference_refused_total{reason=\"" + reason + "\"} ";
  const std::size_t at = text.find(series);
  return at == std::string::npos ? 0
                                 : std::stod(text.substr(at + series.size()));
}

// Rows given to InferRowsAsync and each row's answers, in the order they
// came.
struct RowAnswers {
  explicit RowAnswers(std::size_t n) : answers(n) {}
  RowCallback Callback() {
    return [this](std::size_t row, StatusOr<Prediction> p) {
      MutexLock lock(&mu);
      answers[row].push_back(p.status().code());
      if (++total == answers.size()) all.set_value();
    };
  }
  Mutex mu;
  std::vector<std::vector<StatusCode>> answers GUARDED_BY(mu);
  std::size_t total GUARDED_BY(mu) = 0;
  std::promise<void> all;
};

TEST_F(EngineTest, ARowBatchIsAdmittedWholeOrRefusedWhole) {
  EngineOptions o = Options(data_, "eraser-lazy-wait");
  o.inference.queue_capacity = 3;
  auto engine = OpenOrDie(o);
  ASSERT_NE(engine, nullptr);
  const auto refused = [&](const std::string& reason) {
    return RefusedCount(*engine, reason);
  };
  // A bad row refuses the batch, naming the row: no row is answered.
  std::vector<float> nan = Input(1);
  nan[5] = std::nanf("");
  RowAnswers bad(3);
  Status status = engine->InferRowsAsync({Input(0), nan, Input(2)},
                                         bad.Callback(), Duration::max());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("row 1: feature 5"));
  // More rows than the queue holds could never be admitted; none at all
  // is no request.
  RowAnswers big(4);
  status = engine->InferRowsAsync({Input(0), Input(1), Input(2), Input(3)},
                                  big.Callback(), Duration::max());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("1 to 3 rows"));
  EXPECT_EQ(
      engine->InferRowsAsync({}, RowAnswers(0).Callback(), Duration::max())
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(refused("bad_input"), 3);
  // A batch of exactly the capacity is answered, each row once, with the
  // ensemble's answer for it.
  RowAnswers whole(3);
  ASSERT_TRUE(engine
                  ->InferRowsAsync({Input(0), Input(1), Input(2)},
                                   whole.Callback(), Duration::max())
                  .ok());
  ASSERT_EQ(whole.all.get_future().wait_for(eraser::testing::kPatience),
            std::future_status::ready);
  {
    MutexLock lock(&whole.mu);
    for (const auto& row : whole.answers) {
      EXPECT_THAT(row, ElementsAre(StatusCode::kOk));
    }
  }
  EXPECT_EQ(refused("queue_full"), 0);
  {
    MutexLock lock(&bad.mu);
    for (const auto& row : bad.answers) EXPECT_TRUE(row.empty());
  }
}

// The engine closes while a batch is being queued: the rows queued before
// are answered by the closing engine, the rest by InferRowsAsync itself,
// each exactly once, and the call still reports the batch admitted.
TEST_F(EngineTest, ARowBatchTheEngineClosesMidwayIsAnsweredOncePerRow) {
  auto engine = Open("eraser-lazy-wait");
  ASSERT_NE(engine, nullptr);
  int queued = 0;
  SyncPoints::Set("EngineImpl::InferRowsAsync:Queued", [&] {
    if (++queued == 1) engine->Close();
  });
  RowAnswers rows(3);
  const Status status = engine->InferRowsAsync(
      {Input(0), Input(1), Input(2)}, rows.Callback(), Duration::max());
  SyncPoints::ClearAll();
  EXPECT_TRUE(status.ok()) << status;
  ASSERT_EQ(rows.all.get_future().wait_for(eraser::testing::kPatience),
            std::future_status::ready);
  MutexLock lock(&rows.mu);
  // Row 0 was in the queue, which the workers empty before they stop.
  EXPECT_THAT(rows.answers[0], ElementsAre(StatusCode::kOk));
  EXPECT_THAT(rows.answers[1], ElementsAre(StatusCode::kUnavailable));
  EXPECT_THAT(rows.answers[2], ElementsAre(StatusCode::kUnavailable));
  EXPECT_EQ(RefusedCount(*engine, "shutting_down"), 1);
}

TEST_F(EngineTest, DeletionIsDurableAcknowledgedAndApplied) {
  auto engine = Open("eraser:lazy,wait,deadline=1h");
  const SampleId sample = SampleIn(2, 1);
  StatusOr<DeletionSeq> seq = engine->RequestDeletion(DT::Sample(sample));
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, DeletionSeq(1));
  StatusOr<DeletionInfo> info = engine->GetDeletion(*seq);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, storage::DeletionState::kPending);
  EXPECT_THAT(info->shards, ElementsAre(ShardId(2)));
  EXPECT_EQ(info->samples, 1u);
  EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.pending_deletions, 1u);
  EXPECT_THAT(stats.affected_shards, ElementsAre(ShardId(2)));
  EXPECT_EQ(InferOrDie(*engine, 0).deletion_watermark, 1u);

  ASSERT_TRUE(engine->Drain().ok());
  info = engine->GetDeletion(*seq);
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
  ASSERT_TRUE(info->applied.has_value());
  EXPECT_GE(*info->applied, info->arrival);
  EXPECT_THAT(info->excluded_from,
              ElementsAre(std::make_pair(ShardId(2), uint64_t{2})));
  stats = engine->Stats();
  EXPECT_EQ(stats.pending_deletions, 0u);
  EXPECT_THAT(stats.model_versions, ElementsAre(1, 1, 2, 1));

  // Deleting it again is harmless: answered with it, nothing retrained.
  StatusOr<DeletionSeq> again = engine->RequestDeletion(DT::Sample(sample));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *seq);
  EXPECT_EQ(engine->GetDeletion(*again)->state,
            storage::DeletionState::kApplied);
  EXPECT_THAT(engine->Stats().model_versions, ElementsAre(1, 1, 2, 1));
  EXPECT_EQ(InferOrDie(*engine, 0).deletion_watermark, 1u);
  EXPECT_EQ(engine->Stats().retrains, 1u);
  EXPECT_GT(engine->Stats().unlearning_cost.sample_epochs, 0u);
}

TEST_F(EngineTest, ARepeatedDeletionIsAnsweredWithThePendingOneWritingNothing) {
  auto engine = Open("eraser:lazy,wait,deadline=1h");
  const DT target = DT::Sample(SampleIn(2, 1));
  StatusOr<DeletionSeq> first = engine->RequestDeletion(target);
  ASSERT_TRUE(first.ok()) << first.status();
  // A client's retries, or a flood of the same request.
  for (int i = 0; i < 3; ++i) {
    StatusOr<DeletionSeq> again = engine->RequestDeletion(target);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *first);
  }
  // Another sample is another deletion, numbered next: nothing was
  // appended for the repeats.
  StatusOr<DeletionSeq> other =
      engine->RequestDeletion(DT::Sample(SampleIn(2, 1, 1)));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, DeletionSeq(first->value() + 1));
  // The same sample through another target (here its owner, whose only
  // sample it is) is a deletion of its own: the caller reads its own
  // request's record.
  StatusOr<DeletionSeq> owner =
      engine->RequestDeletion(DT::Owner(OwnerId(SampleIn(2, 1).value())));
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*owner, DeletionSeq(first->value() + 2));
  EXPECT_EQ(engine->GetDeletion(*owner)->target,
            DT::Owner(OwnerId(SampleIn(2, 1).value())));
  // Its repeats are answered with it, though the sample's deletion names
  // the same samples and comes first.
  StatusOr<DeletionSeq> owner_again =
      engine->RequestDeletion(DT::Owner(OwnerId(SampleIn(2, 1).value())));
  ASSERT_TRUE(owner_again.ok());
  EXPECT_EQ(*owner_again, *owner);
  EXPECT_EQ(engine->Stats().pending_deletions, 3u);
  const std::string text = engine->metrics()->TextExposition();
  EXPECT_NE(text.find("eraser_deletions_received_total 3"), std::string::npos);
  EXPECT_NE(text.find("eraser_deletions_repeated_total 4"), std::string::npos);
  ASSERT_TRUE(engine->Drain().ok());
  EXPECT_EQ(engine->GetDeletion(*first)->state,
            storage::DeletionState::kApplied);
}

TEST_F(EngineTest, ARepeatOfAnAppliedDeletionWritesNothingAcrossRestarts) {
  const DT sample = DT::Sample(SampleIn(2, 1));
  // Its owner, whose only sample it is: another target.
  const DT owner = DT::Owner(OwnerId(SampleIn(2, 1).value()));
  DeletionSeq first;
  {
    auto engine = Open("eraser:lazy,wait,deadline=1h");
    StatusOr<DeletionSeq> seq = engine->RequestDeletion(sample);
    ASSERT_TRUE(seq.ok()) << seq.status();
    first = *seq;
    ASSERT_TRUE(engine->Drain().ok());
    ASSERT_EQ(engine->GetDeletion(first)->state,
              storage::DeletionState::kApplied);
    // A client's retries, or a flood, after it was applied.
    for (int i = 0; i < 3; ++i) {
      StatusOr<DeletionSeq> again = engine->RequestDeletion(sample);
      ASSERT_TRUE(again.ok()) << again.status();
      EXPECT_EQ(*again, first);
    }
    // The owner's deletion finds nothing left to do, but no deletion of
    // its own: appended once (applied at once), then answered with.
    for (int i = 0; i < 3; ++i) {
      StatusOr<DeletionSeq> again = engine->RequestDeletion(owner);
      ASSERT_TRUE(again.ok()) << again.status();
      EXPECT_EQ(*again, DeletionSeq(first.value() + 1));
    }
    EXPECT_EQ(engine->GetDeletion(DeletionSeq(first.value() + 1))->state,
              storage::DeletionState::kApplied);
    const std::string text = engine->metrics()->TextExposition();
    EXPECT_NE(text.find("eraser_deletions_received_total 2"),
              std::string::npos);
    EXPECT_NE(text.find("eraser_deletions_repeated_total 5"),
              std::string::npos);
  }
  // After a restart, the same answers; the next deletion is numbered
  // next: nothing was appended for the repeats.
  auto engine = Open("eraser:lazy,wait,deadline=1h");
  EXPECT_EQ(*engine->RequestDeletion(sample), first);
  EXPECT_EQ(*engine->RequestDeletion(owner), DeletionSeq(first.value() + 1));
  StatusOr<DeletionSeq> other =
      engine->RequestDeletion(DT::Sample(SampleIn(2, 1, 1)));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(*other, DeletionSeq(first.value() + 2));
}

TEST_F(EngineTest, DeletionsOfOneShardShareOneRetraining) {
  auto engine = Open("eraser:lazy,wait,deadline=1h");
  ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(1, 1, 0))).ok());
  ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(1, 0, 0))).ok());
  ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(1, 1, 0))).ok());
  ASSERT_TRUE(engine->Drain().ok());
  EXPECT_THAT(engine->Stats().model_versions, ElementsAre(1, 2, 1, 1));
  EXPECT_NE(
      engine->metrics()->TextExposition().find("eraser_shard_retrains_total 1"),
      std::string::npos);
}

// Work conservation: with one unlearning slot, a second shard's retraining
// runs on the idle inference core beside the first (each waits, bounded,
// for the other to start), and what both write is what training from
// scratch without the samples writes.
TEST_F(EngineTest, AnIdleInferenceCoreRunsASecondRetraining) {
  EngineOptions o = Options(data_, "immediate");
  ASSERT_EQ(o.unlearning.concurrency, 1);
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  bool together = false;
  o.testing.retrain_fault = [&](ShardId) {
    std::unique_lock<std::mutex> lock(mu);
    ++started;
    cv.notify_all();
    together |= cv.wait_for(lock, std::chrono::seconds(60),
                            [&] { return started >= 2; });
    return OkStatus();
  };
  const std::vector<SampleId> deleted = {SampleIn(0, 1), SampleIn(2, 0)};
  {
    std::unique_ptr<Engine> engine = OpenOrDie(o);
    ASSERT_NE(engine, nullptr);
    EXPECT_TRUE(engine->Stats().planning.idle_cores);
    for (SampleId s : deleted) {
      ASSERT_TRUE(engine->RequestDeletion(DT::Sample(s)).ok());
    }
    ASSERT_TRUE(engine->Drain().ok());
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(together);
    EXPECT_EQ(started, 2);
  }
  EXPECT_EQ(testing::LastCheckpoints(data_),
            testing::ScratchCheckpoints(deleted));
}

// The retraining on the idle inference core yields to inference until its
// deadline needs the core: from the time the Core set in its order, its
// next pause enters the gate with precedence instead of yielding. The
// retrainings are held until the manual clock has passed that time. With a
// borrowed share of 0 the promoted retraining excludes inference while it
// runs, so a gate left held would stop every later answer.
TEST_F(EngineTest, AYieldingRetrainingItsDeadlineNeedsTakesPrecedence) {
  ManualClock clock;
  EngineOptions o = Options(data_, "eraser:shards:0,partial,deadline=30s");
  o.clock = &clock;
  // Plans of 3 s and 2.4 s (1,500 and 1,200 sample-epochs, times 1.25),
  // whatever the model's cost measured on this machine: neither deadline
  // is at risk before the clock moves.
  o.unlearning.estimates.initial_seconds_per_sample_epoch = 1.6e-3;
  o.inference.max_queue_delay = Duration(0);
  o.unlearning.borrowed_inference_share = 0;
  ASSERT_EQ(o.unlearning.concurrency, 1);
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  bool released = false;
  o.testing.retrain_fault = [&](ShardId) {
    std::unique_lock<std::mutex> lock(mu);
    ++started;
    cv.notify_all();
    cv.wait_for(lock, eraser::testing::kPatience, [&] { return released; });
    return OkStatus();
  };
  const std::vector<SampleId> deleted = {SampleIn(0, 1), SampleIn(2, 0)};
  {
    std::unique_ptr<Engine> engine = OpenOrDie(o);
    ASSERT_NE(engine, nullptr);
    for (SampleId s : deleted) {
      ASSERT_TRUE(engine->RequestDeletion(DT::Sample(s)).ok());
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, eraser::testing::kPatience,
                              [&] { return started == 2; }));
    }
    EXPECT_EQ(engine->Stats().retrains_promoted, 0u);
    EXPECT_EQ(engine->Stats().capacity.deadlines_at_risk, 0u);
    clock.Advance(std::chrono::seconds(30));
    EXPECT_EQ(engine->Stats().capacity.deadlines_at_risk, 1u);
    {
      std::lock_guard<std::mutex> lock(mu);
      released = true;
    }
    cv.notify_all();
    ASSERT_TRUE(engine->Drain().ok());
    EXPECT_EQ(engine->Stats().retrains_promoted, 1u);
    EXPECT_THAT(engine->metrics()->TextExposition(),
                HasSubstr("eraser_retrains_promoted_total 1"));
    // The gate was left: inference answers.
    std::future<StatusOr<Prediction>> answer = engine->Infer(Input(0));
    ASSERT_EQ(answer.wait_for(eraser::testing::kPatience),
              std::future_status::ready);
    EXPECT_TRUE(answer.get().ok());
  }
  EXPECT_EQ(testing::LastCheckpoints(data_),
            testing::ScratchCheckpoints(deleted));
}

// Retrainings held in EngineOptions::testing.retrain_fault until released,
// their starts counted by shard, and two sync points counted: the Core's
// interrupts (the control loop) and a Drain about to wait. What the
// late-shard tests below wait on.
class HeldRetrainings {
 public:
  // `hold(shard, call)`: whether the call-th start of `shard` waits for
  // Release (or ReleaseAll); `fail(shard, call)`: whether it fails at once.
  HeldRetrainings(EngineOptions* o, std::function<bool(uint32_t, int)> hold,
                  std::function<bool(uint32_t, int)> fail)
      : hold_(std::move(hold)), fail_(std::move(fail)) {
    o->testing.retrain_fault = [this](ShardId shard) -> Status {
      std::unique_lock<std::mutex> lock(mu_);
      const int call = ++calls_[shard.value()];
      cv_.notify_all();
      if (fail_(shard.value(), call)) return InternalError("planted");
      if (hold_(shard.value(), call)) {
        cv_.wait_for(lock, eraser::testing::kPatience, [&] {
          return all_ || released_.count(shard.value()) > 0;
        });
      }
      return OkStatus();
    };
    for (const char* point :
         {"EngineImpl::ControlLoop:Interrupt", "EngineImpl::Drain:Waiting"}) {
      SyncPoints::Set(point, [this, point] {
        std::lock_guard<std::mutex> lock(mu_);
        ++passed_[point];
        cv_.notify_all();
      });
    }
  }
  ~HeldRetrainings() {
    SyncPoints::Clear("EngineImpl::ControlLoop:Interrupt");
    SyncPoints::Clear("EngineImpl::Drain:Waiting");
    ReleaseAll();
  }
  int Calls(uint32_t shard) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[shard];
  }
  // Waits until `shard`'s retrainings started `n` times.
  bool WaitCalls(uint32_t shard, int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, eraser::testing::kPatience,
                        [&] { return calls_[shard] >= n; });
  }
  // Waits until sync point `point` was passed `n` times.
  bool WaitPassed(const std::string& point, int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, eraser::testing::kPatience,
                        [&] { return passed_[point] >= n; });
  }
  void Release(uint32_t shard) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_.insert(shard);
    }
    cv_.notify_all();
  }
  void ReleaseAll() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      all_ = true;
    }
    cv_.notify_all();
  }

 private:
  const std::function<bool(uint32_t, int)> hold_;
  const std::function<bool(uint32_t, int)> fail_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, int> calls_;
  std::map<std::string, int> passed_;
  std::set<uint32_t> released_;
  bool all_ = false;
};

// Releases every held retraining when it goes out of scope: declared after
// an engine (and a pending Drain), it lets a failing test close them
// without waiting out the holds.
struct ReleaseOnExit {
  HeldRetrainings& held;
  ~ReleaseOnExit() { held.ReleaseAll(); }
};

// Steps a manual clock by 100 ms until a deadline is at risk (a shard past
// its latest start that no slot takes), failing past `limit`.
void StepUntilAtRisk(ManualClock& clock, Engine& engine, TimePoint limit) {
  while (engine.Stats().capacity.deadlines_at_risk == 0) {
    ASSERT_LT(clock.Now(), limit);
    clock.Advance(std::chrono::milliseconds(100));
  }
}

const char* const kInterrupt = "EngineImpl::ControlLoop:Interrupt";

// A late shard that no slot can take, while a yielding retraining due well
// after it holds the idle inference core. Deadline 20 s; plans of 3 s from
// slice 0 and 2.4 s from slice 1 (1,500 and 1,200 sample-epochs at 1.6 ms,
// times 1.25). Shard 0 holds the unlearning slot throughout; shard 2
// (slice 0, due at 20 s) fails once and backs off for 10 s, meanwhile
// shard 1 (slice 1, deleted at 5 s, due at 25 s) starts on the idle core.
// Shard 2 is late from 20 - 1 - 3 = 16 s, even without shard 1's work;
// shard 1, waiting behind it, would not be (25 - 1 - 3 - 2.4 = 18.6 s),
// and is promoted at 25 - 2.4 - 1 = 21.6 s. So at 16 s the Core asks
// shard 1 to stop.
class LateShardTest : public EngineTest {
 protected:
  // With `past_promotion`, the clock passes shard 1's own promotion time
  // before its retraining reaches a pause.
  void Preempt(bool past_promotion) {
    ManualClock clock;
    EngineOptions o = Options(data_, "eraser:shards:0,partial,deadline=20s");
    o.clock = &clock;
    o.unlearning.estimates.initial_seconds_per_sample_epoch = 1.6e-3;
    o.unlearning.retry.initial = std::chrono::seconds(10);
    o.unlearning.log_retrainings = true;
    ASSERT_EQ(o.unlearning.concurrency, 1);
    HeldRetrainings held(
        &o,
        [](uint32_t shard, int call) {
          return shard == 0 || (shard == 1 && call == 1);
        },
        [](uint32_t shard, int call) { return shard == 2 && call == 1; });
    const TimePoint t0 = clock.Now();
    const std::vector<SampleId> deleted = {SampleIn(0, 0), SampleIn(2, 0),
                                           SampleIn(1, 1)};
    {
      std::unique_ptr<Engine> engine = OpenOrDie(o);
      ASSERT_NE(engine, nullptr);
      std::future<Status> drained;
      ReleaseOnExit release{held};
      ASSERT_TRUE(engine->RequestDeletion(DT::Sample(deleted[0])).ok());
      ASSERT_TRUE(held.WaitCalls(0, 1));
      ASSERT_TRUE(engine->RequestDeletion(DT::Sample(deleted[1])).ok());
      ASSERT_TRUE(testing::Eventually(
          [&] { return engine->Stats().retrain_failures == 1; }));
      clock.AdvanceTo(t0 + std::chrono::seconds(5));
      ASSERT_TRUE(engine->RequestDeletion(DT::Sample(deleted[2])).ok());
      ASSERT_TRUE(held.WaitCalls(1, 1));
      ASSERT_NO_FATAL_FAILURE(StepUntilAtRisk(
          clock, *engine, t0 + std::chrono::milliseconds(21'600)));
      EXPECT_GE(clock.Now(), t0 + std::chrono::seconds(15));
      ASSERT_TRUE(held.WaitPassed(kInterrupt, 1));
      EXPECT_EQ(held.Calls(2), 1);
      // A Drain waits across what follows.
      drained = std::async(std::launch::async, [&] { return engine->Drain(); });
      ASSERT_TRUE(held.WaitPassed("EngineImpl::Drain:Waiting", 1));
      if (past_promotion) {
        clock.AdvanceTo(t0 + std::chrono::milliseconds(21'700));
      }
      held.Release(1);
      // Stopped at its first pause, shard 1 gives its core to shard 2
      // while shard 0 still holds the unlearning slot; past its own
      // promotion time, it ends first instead.
      ASSERT_TRUE(held.WaitCalls(2, 2));
      const EngineStats stats = engine->Stats();
      EXPECT_EQ(stats.retrains_preempted, past_promotion ? 0u : 1u);
      EXPECT_EQ(stats.retrains_promoted, past_promotion ? 1u : 0u);
      EXPECT_THAT(
          engine->metrics()->TextExposition(),
          HasSubstr(past_promotion ? "eraser_retrains_preempted_total 0"
                                   : "eraser_retrains_preempted_total 1"));
      EXPECT_EQ(stats.retrain_failures, 1u) << "a stop is not a failure";
      held.ReleaseAll();
      EXPECT_TRUE(drained.get().ok());
      EXPECT_EQ(held.Calls(1), past_promotion ? 1 : 2);
      EXPECT_EQ(engine->Stats().pending_deletions, 0u);
    }
    EXPECT_EQ(testing::LastCheckpoints(data_),
              testing::ScratchCheckpoints(deleted));
  }
};

// The yielding retraining stops at its first pause; the late shard takes
// its core with precedence, the stopped shard is retrained again, the
// Drain under way is not failed, and what is written equals training from
// scratch.
TEST_F(LateShardTest, PreemptsAYieldingRetrainingDueAfterIt) {
  Preempt(/*past_promotion=*/false);
}

// A stop that reaches the yielding retraining after its own promotion time
// is not carried out: it takes precedence and ends instead.
TEST_F(LateShardTest, AStopPastTheRetrainingsOwnPromotionPromotesIt) {
  Preempt(/*past_promotion=*/true);
}

// With the yielding retraining due first, it is promoted at once (before
// its own last safe start) rather than stopped, and ends, freeing the idle
// core for the late shard. Deadline 30 s; plans of 6 s from slice 0 and
// 4.8 s from slice 1 (3.2 ms per sample-epoch, times 1.25). Shard 1 (slice
// 1) and shard 2 (slice 0) are due at 30 s (a tie: shard 1 first); shard 2
// is late from 30 - 1 - 6 = 23 s, shard 1 would be promoted at 30 - 4.8 - 1
// = 24.2 s.
TEST_F(LateShardTest, PromotesAYieldingRetrainingDueFirst) {
  ManualClock clock;
  EngineOptions o = Options(data_, "eraser:shards:0,partial,deadline=30s");
  o.clock = &clock;
  o.unlearning.estimates.initial_seconds_per_sample_epoch = 3.2e-3;
  HeldRetrainings held(
      &o,
      [](uint32_t shard, int call) {
        return shard == 0 || (shard == 1 && call == 1);
      },
      [](uint32_t, int) { return false; });
  const TimePoint t0 = clock.Now();
  const std::vector<SampleId> deleted = {SampleIn(0, 0), SampleIn(1, 1),
                                         SampleIn(2, 0)};
  {
    std::unique_ptr<Engine> engine = OpenOrDie(o);
    ASSERT_NE(engine, nullptr);
    ReleaseOnExit release{held};
    ASSERT_TRUE(engine->RequestDeletion(DT::Sample(deleted[0])).ok());
    ASSERT_TRUE(held.WaitCalls(0, 1));
    ASSERT_TRUE(engine->RequestDeletion(DT::Sample(deleted[1])).ok());
    ASSERT_TRUE(held.WaitCalls(1, 1));
    ASSERT_TRUE(engine->RequestDeletion(DT::Sample(deleted[2])).ok());
    ASSERT_NO_FATAL_FAILURE(StepUntilAtRisk(
        clock, *engine, t0 + std::chrono::milliseconds(24'200)));
    EXPECT_GE(clock.Now(), t0 + std::chrono::seconds(22));
    ASSERT_TRUE(held.WaitPassed(kInterrupt, 1));
    held.Release(1);
    // Promoted at its first pause, it ends; shard 2 takes the idle core.
    ASSERT_TRUE(held.WaitCalls(2, 1));
    EXPECT_LT(clock.Now(), t0 + std::chrono::milliseconds(24'200));
    EXPECT_EQ(engine->Stats().retrains_promoted, 1u);
    EXPECT_EQ(engine->Stats().retrains_preempted, 0u);
    EXPECT_EQ(held.Calls(1), 1);
    held.ReleaseAll();
    ASSERT_TRUE(engine->Drain().ok());
  }
  EXPECT_EQ(testing::LastCheckpoints(data_),
            testing::ScratchCheckpoints(deleted));
}

TEST_F(EngineTest, DrainMatchesTrainingFromScratch) {
  const std::vector<SampleId> deleted = {SampleIn(0, 1), SampleIn(3, 0),
                                         SampleIn(3, 1, 4)};
  {
    auto engine = Open("eraser-lazy-wait");
    for (SampleId s : deleted) {
      ASSERT_TRUE(engine->RequestDeletion(DT::Sample(s)).ok());
    }
    ASSERT_TRUE(engine->Drain().ok());
  }
  EXPECT_EQ(testing::LastCheckpoints(data_),
            testing::ScratchCheckpoints(deleted));
}

// unlearning.log_retrainings: one line per retraining started and applied,
// with what an operator needs to see why a deadline was missed, timed from
// the engine's start (under 100 s here); nothing when off (the default).
TEST_F(EngineTest, LogsEachRetrainingStartedAndAppliedWhenAsked) {
  auto run = [](const std::string& data, bool log) {
    EngineOptions options = Options(data, "eraser:lazy,wait,deadline=1h");
    options.unlearning.log_retrainings = log;
    auto engine = OpenOrDie(options);
    if (engine == nullptr) return std::string();
    ::testing::internal::CaptureStderr();
    EXPECT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(1, 1, 1))).ok());
    EXPECT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(1, 1, 0))).ok());
    EXPECT_TRUE(engine->Drain().ok());
    engine.reset();
    return ::testing::internal::GetCapturedStderr();
  };
  const std::string logged = run(data_, true);
  EXPECT_THAT(
      logged,
      ::testing::ContainsRegex(
          "eraser: [0-9]{1,2}\\.[0-9]{3} s: shard 1 retraining started "
          "\\(drain\\) on an unlearning slot: from slice 1, 2 "
          "deletions, planned [0-9.]+ s, due in 3[56][0-9]{2}\\.[0-9]{2} "
          "s\n"));
  EXPECT_THAT(logged,
              ::testing::ContainsRegex(
                  "eraser: [0-9]{1,2}\\.[0-9]{3} s: shard 1 retraining applied "
                  "after [0-9.]+ s \\(planned [0-9.]+ s, 0\\.00 s yielded to "
                  "inference\\): covered 2 deletions, completed 2, longest "
                  "delay [0-9.]+ s, 0 late\n"));

  eraser::testing::TempDir other;
  const std::string quiet = run(testing::CopyTemplate(other), false);
  EXPECT_THAT(quiet, ::testing::Not(HasSubstr("retraining")));
}

// K = 4. An input on which all four shards agree stays certified with one
// affected shard: u_y = 3 > 0 + 1.
TEST_F(EngineTest, OneAffectedShardStillCertifiesUnanimousAnswers) {
  auto engine = Open("eraser:lazy,reject,deadline=1h");
  ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(1, 0))).ok());
  const std::vector<std::size_t> unanimous = InputsWithAgreement(4);
  ASSERT_GE(unanimous.size(), 5u);
  for (std::size_t i :
       std::vector<std::size_t>(unanimous.begin(), unanimous.begin() + 5)) {
    const Prediction p = InferOrDie(*engine, i);
    EXPECT_EQ(p.decision, Decision::kCertified);
    EXPECT_EQ(p.label, GetTemplate().votes[i][0]);
    EXPECT_EQ(p.margin, 2);  // 3 - 0 - 1
    EXPECT_THAT(p.affected, ElementsAre(ShardId(1)));
  }
  EXPECT_EQ(engine->Stats().pending_deletions, 1u);  // nothing retrained
}

// Three of four shards affected: no answer can be certified.
class UncertifiedTest : public EngineTest {
 protected:
  void AffectThreeShards(Engine& engine) {
    for (uint32_t shard : {0u, 1u, 3u}) {
      ASSERT_TRUE(engine.RequestDeletion(DT::Sample(SampleIn(shard, 1))).ok());
    }
  }
};

TEST_F(UncertifiedTest, PartialAnswersFromUnaffectedShardsWithoutWaiting) {
  auto engine = Open("eraser:lazy,partial,deadline=1h");
  AffectThreeShards(*engine);
  for (std::size_t i = 0; i < 20; ++i) {
    const Prediction p = InferOrDie(*engine, i);
    EXPECT_EQ(p.decision, Decision::kPartial);
    EXPECT_EQ(p.label, GetTemplate().votes[i][2]);  // the unaffected shard
    EXPECT_EQ(p.wait_seconds, 0.0);
    EXPECT_THAT(p.affected, ElementsAre(ShardId(0), ShardId(1), ShardId(3)));
  }
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.pending_deletions, 3u);  // partial never retrains
  EXPECT_THAT(stats.model_versions, ElementsAre(1, 1, 1, 1));
}

// `soft` answers as `partial` does, from the unaffected shards, but by
// their summed probabilities: with shards 0 and 1 affected, shards 2 and 3
// decide, and where they disagree the surer one wins, not the lower label.
// (Where they agree, both rules give their label, and two agreeing shards
// of four can certify it: those inputs are left out.)
TEST_F(UncertifiedTest, SoftAnswersByTheUnaffectedShardsProbabilities) {
  auto engine = Open("eraser:lazy,soft,deadline=1h");
  for (uint32_t shard : {0u, 1u}) {
    ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(shard, 1))).ok());
  }
  const testing::Template& t = GetTemplate();
  const std::vector<uint8_t> affected = {1, 1, 0, 0};
  int differ = 0;
  int checked = 0;
  for (std::size_t i = 0; i < testing::Template::kHeldOut && checked < 100;
       ++i) {
    if (t.votes[i][2] == t.votes[i][3]) continue;
    ++checked;
    const Prediction p = InferOrDie(*engine, i);
    ASSERT_EQ(p.decision, Decision::kPartial);
    const std::optional<int> soft =
        certify::SoftPartialVote(t.probs[i].data(), affected.data(), 4, 10);
    const std::optional<int> hard =
        certify::PartialVote(t.votes[i].data(), affected.data(), 4, 10);
    ASSERT_TRUE(soft.has_value());
    ASSERT_GE(p.label, 0);
    ASSERT_LT(p.label, 10);
    // The engine computed them in another batch shape, which moves
    // probabilities in their last bits: a near tie may go either way.
    auto sum = [&](int c) { return t.probs[i][20 + c] + t.probs[i][30 + c]; };
    EXPECT_GE(sum(p.label), sum(*soft) - certify::kSoftVoteEpsilon)
        << "input " << i;
    differ += soft != hard;
  }
  // The inputs include some where the two rules disagree, or this test
  // could not tell them apart.
  EXPECT_EQ(checked, 100);
  EXPECT_GT(differ, 0);
  EXPECT_EQ(engine->Stats().pending_deletions, 2u);
}

TEST_F(UncertifiedTest, RejectAnswersUnavailable) {
  auto engine = Open("eraser:lazy,reject,deadline=1h");
  AffectThreeShards(*engine);
  const Prediction p = InferOrDie(*engine, 0);
  EXPECT_EQ(p.decision, Decision::kRejected);
  EXPECT_EQ(p.label, -1);
  EXPECT_EQ(engine->Stats().pending_deletions, 3u);
}

TEST_F(UncertifiedTest, WaitAnswersAfterTheNeededSwaps) {
  auto engine = Open("eraser:lazy,wait,deadline=1h");
  AffectThreeShards(*engine);
  const Prediction p = InferOrDie(*engine, 0);
  EXPECT_EQ(p.decision, Decision::kWaited);
  EXPECT_GT(p.wait_seconds, 0.0);
  // It was answered once enough affected shards were retrained; each
  // retrained shard now serves version 2.
  const EngineStats stats = engine->Stats();
  int retrained = 0;
  for (uint64_t v : stats.model_versions) retrained += v == 2;
  EXPECT_GE(retrained, 1);
  EXPECT_EQ(stats.pending_deletions, 3u - retrained);
  EXPECT_EQ(p.affected.size(), 3u - retrained);
  EXPECT_EQ(p.model_versions, stats.model_versions);
  EXPECT_EQ(stats.parked, 0u);
}

TEST_F(EngineTest, ImmediateWaitsForTheRetrainingAndAnswersClean) {
  auto engine = Open("immediate");
  ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(3, 0))).ok());
  const Prediction p = InferOrDie(*engine, 0);
  EXPECT_EQ(p.decision, Decision::kClean);
  EXPECT_TRUE(p.affected.empty());
  // Answered by the retrained shard 3.
  EXPECT_EQ(p.model_versions[3], 2u);
  EXPECT_EQ(engine->Stats().pending_deletions, 0u);
}

TEST_F(EngineTest, InferenceFirstAnswersAtOnceAndExposes) {
  auto engine = Open("inference-first,deadline=1h");
  ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(2, 0))).ok());
  const Prediction p = InferOrDie(*engine, 0);
  EXPECT_EQ(p.decision, Decision::kUncertified);
  EXPECT_TRUE(p.exposed);
  EXPECT_THAT(p.affected, ElementsAre(ShardId(2)));
  EXPECT_THAT(p.model_versions, ElementsAre(1, 1, 1, 1));
  EXPECT_NE(
      engine->metrics()->TextExposition().find("eraser_exposures_total 1"),
      std::string::npos);
}

TEST_F(EngineTest, ExclusiveContextServesAndUnlearns) {
  EngineOptions o = Options(data_, "immediate");
  o.unlearning.context = ExecutionContext::kExclusive;
  auto engine = OpenOrDie(o);
  ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(0, 0))).ok());
  std::vector<std::future<StatusOr<Prediction>>> answers;
  for (std::size_t i = 0; i < 20; ++i)
    answers.push_back(engine->Infer(Input(i)));
  for (auto& f : answers) {
    StatusOr<Prediction> p = f.get();
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->decision, Decision::kClean);
    EXPECT_EQ(p->model_versions[0], 2u);
  }
}

TEST_F(EngineTest, AuditRecordsEveryAnswer) {
  EngineOptions o = Options(data_, "eraser:lazy,partial,deadline=1h");
  o.audit = true;
  std::vector<Prediction> answers;
  {
    auto engine = OpenOrDie(o);
    ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(1, 0))).ok());
    for (std::size_t i = 0; i < 10; ++i)
      answers.push_back(InferOrDie(*engine, i));
  }
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({data_, false});
  ASSERT_TRUE(store.ok());
  for (const Prediction& p : answers) {
    StatusOr<std::string> bytes = (*store)->GetAudit(p.request_id);
    ASSERT_TRUE(bytes.ok()) << p.request_id;
    StatusOr<certify::CertificateRecord> r =
        certify::CertificateRecord::Decode(*bytes);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->decision, p.decision);
    EXPECT_EQ(r->answer, p.label);
    EXPECT_EQ(r->margin, p.margin);
    EXPECT_THAT(r->affected, ElementsAre(ShardId(1)));
    EXPECT_THAT(r->pending, ElementsAre(DeletionSeq(1)));
    EXPECT_EQ(r->model_versions, p.model_versions);
  }
}

TEST_F(EngineTest, ReopenResumesPendingDeletions) {
  {
    auto engine = Open("eraser:lazy,wait,deadline=1h");
    ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(2, 1))).ok());
    ASSERT_TRUE(
        engine->RequestDeletion(DT::Owner(OwnerId(SampleIn(0, 0).value())))
            .ok());
  }
  auto engine = Open("eraser:lazy,wait,deadline=1h");
  EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.pending_deletions, 2u);
  EXPECT_EQ(InferOrDie(*engine, 0).deletion_watermark, 2u);
  EXPECT_THAT(stats.affected_shards, ElementsAre(ShardId(0), ShardId(2)));
  ASSERT_TRUE(engine->Drain().ok());
  EXPECT_EQ(engine->GetDeletion(DeletionSeq(2))->state,
            storage::DeletionState::kApplied);
}

// The apply window, with the process stopped in it: deletions 2 and 3 name
// the sample deletion 1's apply erased, but registered after that apply's
// plan (EngineApply.ADeletionAcknowledgedWhileAnApplyCommitsIsRecorded),
// and the next order never ran. Reopened, each records the shard it left
// and the model version that leaves it out, which an exposure check
// reading excluded_from needs: deletion 2, which named nothing else, is
// applied; deletion 3 still pends for its sample in shard 1.
TEST_F(EngineTest, ReopenRecordsWhereADeletionErasedMeanwhileWasLeftOut) {
  const SampleId sample = SampleIn(2, 1);
  uint64_t version = 0;
  {
    StatusOr<std::unique_ptr<storage::Store>> store =
        storage::Store::Open({data_, false});
    ASSERT_TRUE(store.ok()) << store.status();
    StatusOr<storage::SampleLocation> at = (*store)->LookupSample(sample);
    ASSERT_TRUE(at.ok());
    const TimePoint now = SystemClock::Default()->Now();
    StatusOr<DeletionSeq> first =
        (*store)->AppendDeletion(DT::Sample(sample), {*at}, now);
    StatusOr<DeletionSeq> second = (*store)->AppendDeletion(
        DT::Owner(OwnerId(sample.value())), {*at}, now);
    StatusOr<storage::SampleLocation> other =
        (*store)->LookupSample(SampleIn(1, 0));
    ASSERT_TRUE(other.ok());
    StatusOr<DeletionSeq> third = (*store)->AppendDeletion(
        DT::Owner(OwnerId(SampleIn(1, 0).value())), {*at, *other}, now);
    ASSERT_TRUE(first.ok() && second.ok() && third.ok());
    // Deletion 1's apply: shard 2's checkpoints at a new version (the same
    // models will do here), the sample erased.
    storage::ApplyBatch batch;
    for (uint32_t slice = 0; slice < testing::kSlices; ++slice) {
      StatusOr<storage::Checkpoint> c =
          (*store)->GetCheckpoint(ShardId(2), slice);
      ASSERT_TRUE(c.ok());
      version = ++c->version;
      batch.checkpoints.push_back(*c);
    }
    batch.erase = {sample};
    batch.applied = {*first};
    batch.applied_at = now;
    batch.excluded = {{*first, ShardId(2), version}};
    ASSERT_TRUE((*store)->Apply(batch).ok());
  }
  // Each open records what is missing, once: a second open writes nothing
  // (on a full disk, it could not).
  int recorded = 0;
  eraser::testing::SyncPointsCleared cleared;
  SyncPoints::Set("EngineImpl::Open:RecordExclusions", [&] { ++recorded; });
  Open("eraser:lazy,wait,deadline=1h").reset();
  EXPECT_EQ(recorded, 1);
  auto engine = Open("eraser:lazy,wait,deadline=1h");
  EXPECT_EQ(recorded, 1);
  EXPECT_EQ(engine->Stats().pending_deletions, 1u);
  EXPECT_THAT(engine->Stats().affected_shards, ElementsAre(ShardId(1)));
  StatusOr<DeletionInfo> info = engine->GetDeletion(DeletionSeq(2));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
  EXPECT_THAT(info->shards, ElementsAre(ShardId(2)));
  EXPECT_THAT(info->excluded_from,
              ElementsAre(std::make_pair(ShardId(2), version)));
  info = engine->GetDeletion(DeletionSeq(3));
  EXPECT_EQ(info->state, storage::DeletionState::kPending);
  EXPECT_THAT(info->excluded_from,
              ElementsAre(std::make_pair(ShardId(2), version)));
  ASSERT_TRUE(engine->Drain().ok());
  info = engine->GetDeletion(DeletionSeq(3));
  EXPECT_EQ(info->state, storage::DeletionState::kApplied);
  EXPECT_THAT(info->shards, ElementsAre(ShardId(1), ShardId(2)));
  EXPECT_EQ(info->excluded_from.size(), 2u);
}

TEST_F(EngineTest, MetricsFollowEvents) {
  auto engine = Open("eraser:lazy,partial,deadline=1h");
  InferOrDie(*engine, 0);
  ASSERT_TRUE(engine->RequestDeletion(DT::Sample(SampleIn(1, 0))).ok());
  const std::string before = engine->metrics()->TextExposition();
  EXPECT_NE(
      before.find("eraser_inference_requests_total{decision=\"clean\"} 1"),
      std::string::npos);
  EXPECT_NE(before.find("eraser_deletions_received_total 1"),
            std::string::npos);
  EXPECT_NE(before.find("eraser_pending_deletions 1"), std::string::npos);
  EXPECT_NE(before.find("eraser_affected_shards 1"), std::string::npos);
  ASSERT_TRUE(engine->Drain().ok());
  const std::string after = engine->metrics()->TextExposition();
  EXPECT_NE(after.find("eraser_deletions_applied_total 1"), std::string::npos);
  EXPECT_NE(after.find("eraser_pending_deletions 0"), std::string::npos);
  EXPECT_NE(after.find("eraser_retrain_duration_seconds_count 1"),
            std::string::npos);
  EXPECT_NE(after.find("eraser_deletion_delay_seconds_count 1"),
            std::string::npos);
}

}  // namespace
}  // namespace eraser::engine
