// SISA training and exact unlearning (DESIGN guarantee 1) on a small
// configuration: 2,400 Fashion-MNIST images, 2 shards x 4 slices, a 16-unit
// MLP.
#include "eraser/unlearning/sisa.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "eraser/storage/store.h"
#include "testing/comma_locale.h"
#include "testing/data.h"
#include "testing/temp_dir.h"

namespace eraser::unlearning {
namespace {

using storage::Store;

constexpr std::size_t kSamples = 2400;

// The first kSamples t10k images to train on, the next 2,000 to test.
const datasets::Dataset& Data() {
  static const datasets::Dataset* data =
      new datasets::Dataset(testing::SmallFashionMnist(kSamples, 2000));
  return *data;
}

SisaOptions SmallOptions() {
  SisaOptions o;
  o.shards = 2;
  o.slices = 4;
  o.model.hidden = {16};
  o.epochs = {1, 1, 1, 2};
  o.batch_size = 32;
  o.seed = 7;
  o.concurrency = 2;
  return o;
}

// A data directory with the first kSamples images ingested and, unless
// `erase` is given, trained. Samples in `erase` are erased before training,
// which makes it "the same ensemble trained from scratch without them".
struct Built {
  testing::TempDir dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<Sisa> sisa;
  TrainReport report;
};

std::unique_ptr<Built> Build(const SisaOptions& options,
                             const std::vector<SampleId>& erase = {}) {
  auto b = std::make_unique<Built>();
  StatusOr<std::unique_ptr<Store>> store = Store::Open({b->dir.path()});
  EXPECT_TRUE(store.ok()) << store.status();
  b->store = std::move(store).value();
  StatusOr<std::unique_ptr<Sisa>> sisa =
      Sisa::Create(b->store.get(), ForDataset(options, Data()));
  EXPECT_TRUE(sisa.ok()) << sisa.status();
  b->sisa = std::move(sisa).value();
  StatusOr<bool> ingested = b->sisa->Ingest(Data());
  EXPECT_TRUE(ingested.ok() && *ingested) << ingested.status();
  if (!erase.empty()) {
    storage::ApplyBatch batch;
    batch.erase = erase;
    EXPECT_TRUE(b->store->Apply(batch).ok());
  }
  StatusOr<TrainReport> report = b->sisa->TrainAll();
  EXPECT_TRUE(report.ok()) << report.status();
  if (report.ok()) b->report = *report;
  return b;
}

std::string Blob(Store& store, uint32_t shard, uint32_t slice) {
  StatusOr<storage::Checkpoint> c = store.GetCheckpoint(ShardId(shard), slice);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->blob : "";
}

// The first sample (by id) of `shard` in each of `slices`.
std::vector<SampleId> OnePerSlice(Store& store, uint32_t shard,
                                  const std::set<uint32_t>& slices) {
  std::map<uint32_t, SampleId> found;
  for (uint64_t id = 0; id < kSamples && found.size() < slices.size(); ++id) {
    StatusOr<storage::SampleLocation> loc = store.LookupSample(SampleId(id));
    if (loc.ok() && loc->shard == ShardId(shard) && slices.count(loc->slice) &&
        !found.count(loc->slice)) {
      found[loc->slice] = SampleId(id);
    }
  }
  std::vector<SampleId> out;
  for (const auto& [slice, id] : found) out.push_back(id);
  EXPECT_EQ(out.size(), slices.size());
  return out;
}

class SisaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { base_ = Build(SmallOptions()).release(); }
  static void TearDownTestSuite() {
    delete base_;
    base_ = nullptr;
  }
  static Built* base_;
};
Built* SisaTest::base_ = nullptr;

TEST_F(SisaTest, TrainsEveryShardAndCountsCost) {
  ASSERT_EQ(base_->report.shards.size(), 2u);
  uint64_t total = 0;
  for (const ShardTrainReport& s : base_->report.shards) {
    EXPECT_EQ(s.samples, kSamples / 2);
    // Stages see 1/4, 2/4, 3/4 and 4/4 of the shard for 1, 1, 1, 2 epochs.
    EXPECT_EQ(s.cost.sample_epochs, 300u + 600u + 900u + 2u * 1200u);
    EXPECT_GT(s.cost.cpu_seconds, 0.0);
    total += s.cost.sample_epochs;
  }
  EXPECT_EQ(base_->report.total.sample_epochs, total);
  EXPECT_TRUE(*base_->sisa->IsTrained());
  for (uint32_t k = 0; k < 2; ++k) {
    for (uint32_t r = 0; r < 4; ++r) {
      StatusOr<storage::Checkpoint> c =
          base_->store->GetCheckpoint(ShardId(k), r);
      ASSERT_TRUE(c.ok()) << "shard " << k << " slice " << r;
      EXPECT_EQ(c->version, 1u);
    }
  }
}

// The model's cost, measured at train and stored with the ensemble: what
// the unlearning planner starts from (docs/engine.md).
TEST_F(SisaTest, TrainingMeasuresAndStoresTheModelsCost) {
  const ModelCost& measured = base_->report.model_cost;
  EXPECT_GT(measured.train_seconds_per_sample_epoch, 0.0);
  EXPECT_GT(measured.infer_seconds_per_row, 0.0);
  EXPECT_GT(measured.ensemble_infer_seconds_per_row, 0.0);
  EXPECT_DOUBLE_EQ(measured.train_seconds_per_sample_epoch,
                   base_->report.total.cpu_seconds /
                       static_cast<double>(base_->report.total.sample_epochs));
  StatusOr<ModelCost> stored = base_->sisa->ReadModelCost();
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_DOUBLE_EQ(stored->train_seconds_per_sample_epoch,
                   measured.train_seconds_per_sample_epoch);
  EXPECT_DOUBLE_EQ(stored->infer_seconds_per_row,
                   measured.infer_seconds_per_row);
  // A directory that predates costs has none; a corrupt record is refused.
  testing::TempDir dir;
  StatusOr<std::unique_ptr<Store>> store = Store::Open({dir.path()});
  ASSERT_TRUE(store.ok());
  StatusOr<std::unique_ptr<Sisa>> sisa =
      Sisa::Create(store->get(), ForDataset(SmallOptions(), Data()));
  ASSERT_TRUE(sisa.ok());
  EXPECT_EQ((*sisa)->ReadModelCost().status().code(), StatusCode::kNotFound);
  ASSERT_TRUE((*store)
                  ->PutMeta("model/cost",
                            "{\"train_seconds_per_"
                            "sample_epoch\": -1}")
                  .ok());
  EXPECT_EQ((*sisa)->ReadModelCost().status().code(), StatusCode::kDataLoss);
}

TEST_F(SisaTest, EnsembleLearnsSomething) {
  StatusOr<std::vector<ShardModel>> models = base_->sisa->LoadModels();
  ASSERT_TRUE(models.ok()) << models.status();
  const datasets::Split& test = Data().test;
  const std::size_t n = test.size();
  const std::vector<float> x = test.DecodeRows(0, n);
  for (const ShardModel& m : *models) {
    std::vector<int32_t> votes(n);
    ASSERT_TRUE(m.model->Predict(x.data(), n, votes.data(), nullptr).ok());
    std::size_t correct = 0;
    for (std::size_t i = 0; i < n; ++i) {
      correct += static_cast<uint32_t>(votes[i]) == test.labels[i];
    }
    EXPECT_GT(correct, n * 6 / 10) << "shard " << m.shard;
  }
}

TEST_F(SisaTest, RetrainIsBitIdenticalToTrainingWithoutTheSamples) {
  const std::vector<SampleId> deleted = OnePerSlice(*base_->store, 0, {1, 3});
  StatusOr<std::vector<RetrainResult>> results =
      base_->sisa->Retrain({{ShardId(0), deleted}});
  ASSERT_TRUE(results.ok()) << results.status();
  const RetrainResult& r = (*results)[0];
  EXPECT_EQ(r.first_slice, 1u);
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(std::set<SampleId>(r.excluded.begin(), r.excluded.end()),
            std::set<SampleId>(deleted.begin(), deleted.end()));
  EXPECT_EQ(r.samples, kSamples / 2 - 2);
  ASSERT_EQ(r.checkpoints.size(), 3u);

  std::unique_ptr<Built> scratch = Build(SmallOptions(), deleted);
  for (uint32_t slice = 1; slice < 4; ++slice) {
    EXPECT_EQ(r.checkpoints[slice - 1].slice, slice);
    EXPECT_EQ(r.checkpoints[slice - 1].blob, Blob(*scratch->store, 0, slice))
        << "slice " << slice;
  }
  EXPECT_EQ(r.model->Serialize(), Blob(*scratch->store, 0, 3));
  // The untouched prefix and the other shard agree as well.
  EXPECT_EQ(Blob(*base_->store, 0, 0), Blob(*scratch->store, 0, 0));
  EXPECT_EQ(Blob(*base_->store, 1, 3), Blob(*scratch->store, 1, 3));
  // And the comparison can fail: the served model did change.
  EXPECT_NE(r.model->Serialize(), Blob(*base_->store, 0, 3));
}

// A retraining on an idle inference core yields between mini-batches: the
// pause is called before each one, and whatever runs in it (here a real
// inference on the same thread) cannot change what is trained.
TEST_F(SisaTest, APausedRetrainingIsBitIdenticalToAnUnpausedOne) {
  const std::vector<SampleId> deleted = OnePerSlice(*base_->store, 0, {1, 3});
  StatusOr<std::vector<RetrainResult>> plain =
      base_->sisa->Retrain({{ShardId(0), deleted}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  StatusOr<std::vector<ShardModel>> served = base_->sisa->LoadModels();
  ASSERT_TRUE(served.ok()) << served.status();
  const std::size_t dim = (*served)[0].model->spec().input_size();
  const std::vector<float> rows(4 * dim, 0.5f);
  std::vector<int32_t> votes(4);
  std::size_t pauses = 0;
  StatusOr<std::vector<RetrainResult>> paused =
      base_->sisa->Retrain({{ShardId(0), deleted}}, [&] {
        ++pauses;
        EXPECT_TRUE((*served)[1]
                        .model->Predict(rows.data(), 4, votes.data(), nullptr)
                        .ok());
        return OkStatus();
      });
  ASSERT_TRUE(paused.ok()) << paused.status();
  // One pause per mini-batch of stages 1..3: stage r trains every epoch on
  // slices 0..r less the deleted sample of slice 1 (and of 3 at stage 3).
  StatusOr<std::vector<uint64_t>> sizes = base_->sisa->SliceSizes(ShardId(0));
  ASSERT_TRUE(sizes.ok()) << sizes.status();
  const std::vector<uint32_t> epochs = base_->sisa->options().EpochSchedule();
  const uint64_t batch = base_->sisa->options().batch_size;
  std::size_t batches = 0;
  uint64_t rows_before = (*sizes)[0];
  for (uint32_t r = 1; r < 4; ++r) {
    rows_before += (*sizes)[r] - (r == 1 || r == 3 ? 1 : 0);
    batches += epochs[r] * ((rows_before + batch - 1) / batch);
  }
  EXPECT_EQ(pauses, batches);
  ASSERT_EQ((*paused)[0].checkpoints.size(), (*plain)[0].checkpoints.size());
  for (std::size_t i = 0; i < (*plain)[0].checkpoints.size(); ++i) {
    EXPECT_EQ((*paused)[0].checkpoints[i].blob, (*plain)[0].checkpoints[i].blob)
        << "stage " << (*plain)[0].checkpoints[i].slice;
  }
}

// A pause that returns an error stops the retraining there (the engine
// preempts a yielding retraining so): no further mini-batch runs, the error
// comes back as it was, and a retraining afterwards is the same as the one
// before the stop.
TEST_F(SisaTest, APauseThatFailsStopsTheRetrainingWithItsError) {
  const std::vector<SampleId> deleted = OnePerSlice(*base_->store, 0, {1});
  StatusOr<std::vector<RetrainResult>> before =
      base_->sisa->Retrain({{ShardId(0), deleted}});
  ASSERT_TRUE(before.ok()) << before.status();
  std::size_t pauses = 0;
  StatusOr<std::vector<RetrainResult>> stopped =
      base_->sisa->Retrain({{ShardId(0), deleted}}, [&] {
        return ++pauses < 3 ? OkStatus() : UnavailableError("preempted");
      });
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(stopped.status().message(), "preempted");
  EXPECT_EQ(pauses, 3u);
  StatusOr<std::vector<RetrainResult>> after =
      base_->sisa->Retrain({{ShardId(0), deleted}});
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ((*after)[0].checkpoints.size(), (*before)[0].checkpoints.size());
  for (std::size_t i = 0; i < (*before)[0].checkpoints.size(); ++i) {
    EXPECT_EQ((*after)[0].checkpoints[i].blob,
              (*before)[0].checkpoints[i].blob);
  }
}

TEST(SisaOwners, RetrainOfAnOwnerSpanningShardsIsExact) {
  SisaOptions options = SmallOptions();
  options.samples_per_owner = 5;
  std::unique_ptr<Built> base = Build(options);
  // An owner whose samples sit in both shards.
  std::vector<storage::SampleLocation> samples;
  for (uint64_t owner = 0; samples.empty(); ++owner) {
    StatusOr<std::vector<storage::SampleLocation>> owned =
        base->store->OwnerSamples(OwnerId(owner));
    ASSERT_TRUE(owned.ok()) << owned.status();
    ASSERT_EQ(owned->size(), 5u);
    std::set<ShardId> shards;
    for (const auto& s : *owned) shards.insert(s.shard);
    if (shards.size() == 2) samples = *owned;
  }
  std::vector<SampleId> ids;
  std::map<ShardId, std::vector<SampleId>> by_shard;
  for (const auto& s : samples) {
    ids.push_back(s.id);
    by_shard[s.shard].push_back(s.id);
  }
  std::vector<RetrainRequest> requests;
  for (const auto& [shard, deleted] : by_shard) {
    requests.push_back({shard, deleted});
  }
  StatusOr<std::vector<RetrainResult>> results = base->sisa->Retrain(requests);
  ASSERT_TRUE(results.ok()) << results.status();
  std::unique_ptr<Built> scratch = Build(options, ids);
  ASSERT_EQ(results->size(), 2u);
  for (const RetrainResult& r : *results) {
    EXPECT_EQ(r.model->Serialize(), Blob(*scratch->store, r.shard.value(), 3))
        << "shard " << r.shard;
  }
}

TEST_F(SisaTest, SampleEpochsFollowTheSchedule) {
  const std::vector<uint32_t> epochs = {1, 1, 1, 2};
  StatusOr<std::vector<uint64_t>> sizes = base_->sisa->SliceSizes(ShardId(1));
  ASSERT_TRUE(sizes.ok());
  ASSERT_EQ(*sizes, (std::vector<uint64_t>{300, 300, 300, 300}));
  for (uint32_t r = 0; r < 4; ++r) {
    const std::vector<SampleId> deleted = OnePerSlice(*base_->store, 1, {r});
    StatusOr<std::vector<RetrainResult>> results =
        base_->sisa->Retrain({{ShardId(1), deleted}});
    ASSERT_TRUE(results.ok()) << results.status();
    // Stages r..3 retrain on slices 0..j, one sample fewer from slice r on.
    uint64_t expected = 0;
    for (uint32_t j = r; j < 4; ++j)
      expected += epochs[j] * (300 * (j + 1) - 1);
    EXPECT_EQ((*results)[0].cost.sample_epochs, expected) << "slice " << r;
    EXPECT_EQ((*results)[0].checkpoints.size(), 4u - r);
    std::vector<uint64_t> after = *sizes;
    --after[r];
    EXPECT_EQ(base_->sisa->StageSampleEpochs(after, r), expected);
  }
}

TEST_F(SisaTest, RetrainWritesNothingAndApplyTouchesOnlyItsShard) {
  std::unique_ptr<Built> b = Build(SmallOptions());
  std::map<std::pair<uint32_t, uint32_t>, std::string> before;
  for (uint32_t k = 0; k < 2; ++k) {
    for (uint32_t r = 0; r < 4; ++r) before[{k, r}] = Blob(*b->store, k, r);
  }
  const std::vector<SampleId> deleted = OnePerSlice(*b->store, 0, {2});
  StatusOr<std::vector<RetrainResult>> results =
      b->sisa->Retrain({{ShardId(0), deleted}});
  ASSERT_TRUE(results.ok());
  for (const auto& [key, blob] : before) {
    EXPECT_EQ(Blob(*b->store, key.first, key.second), blob);
  }
  storage::ApplyBatch batch;
  batch.checkpoints = (*results)[0].checkpoints;
  batch.erase = (*results)[0].excluded;
  ASSERT_TRUE(b->store->Apply(batch).ok());
  for (const auto& [key, blob] : before) {
    const bool replaced = key.first == 0 && key.second >= 2;
    EXPECT_EQ(Blob(*b->store, key.first, key.second) == blob, !replaced)
        << "shard " << key.first << " slice " << key.second;
  }
  StatusOr<std::vector<ShardModel>> models = b->sisa->LoadModels();
  ASSERT_TRUE(models.ok());
  EXPECT_EQ((*models)[0].version, 2u);
  EXPECT_EQ((*models)[1].version, 1u);
  EXPECT_EQ((*models)[0].model->Serialize(), (*results)[0].model->Serialize());
}

TEST_F(SisaTest, DeterministicAcrossRunsAndConcurrency) {
  SisaOptions serial = SmallOptions();
  serial.concurrency = 1;
  std::unique_ptr<Built> again = Build(SmallOptions());
  std::unique_ptr<Built> one_thread = Build(serial);
  for (uint32_t k = 0; k < 2; ++k) {
    for (uint32_t r = 0; r < 4; ++r) {
      const std::string blob = Blob(*base_->store, k, r);
      EXPECT_EQ(Blob(*again->store, k, r), blob);
      EXPECT_EQ(Blob(*one_thread->store, k, r), blob);
    }
  }
  SisaOptions other_seed = SmallOptions();
  other_seed.seed = 8;
  std::unique_ptr<Built> other = Build(other_seed);
  EXPECT_NE(Blob(*other->store, 0, 3), Blob(*base_->store, 0, 3));
}

// Two retrainings submitted at once from two threads, as the engine's
// retrainers submit them, onto an arena with room for one thread: the
// second submission is handed to the thread already in the arena, which
// runs it. Each result is byte-identical to the same retraining run alone.
// Under ThreadSanitizer this is the hand-off that oneTBB orders inside its
// uninstrumented library (tests/tsan.supp says why it is not reported).
TEST_F(SisaTest, TwoRetrainingsAtOnceOnOneArena) {
  StatusOr<std::unique_ptr<Sisa>> sisa = Sisa::Open(base_->store.get(), 1);
  ASSERT_TRUE(sisa.ok()) << sisa.status();
  const std::vector<RetrainRequest> requests = {
      {ShardId(0), OnePerSlice(*base_->store, 0, {2})},
      {ShardId(1), OnePerSlice(*base_->store, 1, {3})}};
  std::vector<std::string> alone;
  for (const RetrainRequest& request : requests) {
    StatusOr<std::vector<RetrainResult>> r = (*sisa)->Retrain({request});
    ASSERT_TRUE(r.ok()) << r.status();
    alone.push_back((*r)[0].model->Serialize());
  }
  EXPECT_NE(alone[0], Blob(*base_->store, 0, 3));
  for (int round = 0; round < 3; ++round) {
    std::vector<StatusOr<std::vector<RetrainResult>>> results(
        2, InternalError("not run"));
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 2; ++i) {
      threads.emplace_back(
          [&, i] { results[i] = (*sisa)->Retrain({requests[i]}); });
    }
    for (std::thread& t : threads) t.join();
    for (std::size_t i = 0; i < 2; ++i) {
      ASSERT_TRUE(results[i].ok()) << results[i].status();
      EXPECT_EQ((*results[i])[0].model->Serialize(), alone[i])
          << "round " << round << ", shard " << i;
    }
  }
}

TEST_F(SisaTest, NothingToRetrainWhenNoDeletedSampleIsInTheShard) {
  const std::vector<SampleId> in_shard_0 = OnePerSlice(*base_->store, 0, {0});
  StatusOr<std::vector<RetrainResult>> results =
      base_->sisa->Retrain({{ShardId(1), in_shard_0}});
  ASSERT_TRUE(results.ok());
  EXPECT_EQ((*results)[0].first_slice, 4u);
  EXPECT_TRUE((*results)[0].checkpoints.empty());
  EXPECT_EQ((*results)[0].model, nullptr);
  EXPECT_EQ((*results)[0].cost.sample_epochs, 0u);
}

TEST_F(SisaTest, BadRequestsAreRefused) {
  EXPECT_EQ(base_->sisa->Retrain({{ShardId(0), {}}, {ShardId(0), {}}})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(base_->sisa->Retrain({{ShardId(2), {}}}).status().code(),
            StatusCode::kInvalidArgument);
  SisaOptions other = SmallOptions();
  other.shards = 3;
  EXPECT_EQ(Sisa::Create(base_->store.get(), other).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(SisaTest, OpenReadsTheStoredConfiguration) {
  StatusOr<std::unique_ptr<Sisa>> opened = Sisa::Open(base_->store.get(), 1);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->options().ToConfig(),
            ForDataset(SmallOptions(), Data()).ToConfig());
  EXPECT_EQ((*opened)->options().concurrency, 1);
  StatusOr<std::vector<ShardModel>> models = (*opened)->LoadModels();
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->size(), 2u);

  testing::TempDir empty;
  StatusOr<std::unique_ptr<Store>> store = Store::Open({empty.path()});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(Sisa::Open(store->get(), 1).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(SisaIngest, RejectsDataThatDoesNotFit) {
  testing::TempDir dir;
  StatusOr<std::unique_ptr<Store>> store = Store::Open({dir.path()});
  ASSERT_TRUE(store.ok());
  StatusOr<std::unique_ptr<Sisa>> sisa =
      Sisa::Create(store->get(), ForDataset(SmallOptions(), Data()));
  ASSERT_TRUE(sisa.ok());
  EXPECT_EQ((*sisa)->TrainAll().status().code(),
            StatusCode::kFailedPrecondition);
  datasets::Dataset narrow = Data();
  narrow.train.shape = {28, 27};  // another shape than the model's
  narrow.train.features.resize(narrow.train.size() * 28 * 27);
  narrow.test = narrow.train;
  EXPECT_EQ((*sisa)->Ingest(narrow).status().code(),
            StatusCode::kInvalidArgument);
  datasets::Dataset bad_label = Data();
  bad_label.train.labels[17] = 10;
  EXPECT_EQ((*sisa)->Ingest(bad_label).status().code(),
            StatusCode::kInvalidArgument);
  datasets::Dataset tiny = Data();
  tiny.train = testing::Rows(Data().train, 0, 5);
  EXPECT_EQ((*sisa)->Ingest(tiny).status().code(),
            StatusCode::kInvalidArgument);  // 5 samples cannot fill 2 x 4
  datasets::Dataset owned = Data();
  owned.train.owners.assign(owned.train.size(), 3);
  EXPECT_EQ((*sisa)->Ingest(owned).status().code(),
            StatusCode::kInvalidArgument);  // the options assign owners
  EXPECT_EQ(*(*store)->CountSamples(ShardId(0)), 0u);
}

TEST(SisaOptionsTest, ValidateAndRoundTrip) {
  SisaOptions o = SmallOptions();
  EXPECT_TRUE(o.Validate().ok());
  StatusOr<SisaOptions> back = SisaOptions::FromConfig(o.ToConfig());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToConfig(), o.ToConfig());

  o.epochs = {1, 2};
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  o = SmallOptions();
  o.momentum = 1.0;
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  o = SmallOptions();
  o.shards = 0;
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DefaultEpochs(4), (std::vector<uint32_t>{4, 4, 4, 8}));

  storage::StoreConfig bad = SmallOptions().ToConfig();
  bad["learning_rate"] = "fast";
  EXPECT_EQ(SisaOptions::FromConfig(bad).status().code(),
            StatusCode::kDataLoss);
  bad.erase("learning_rate");
  EXPECT_EQ(SisaOptions::FromConfig(bad).status().code(),
            StatusCode::kDataLoss);
}

// The stored configuration is the same text, and reads back, whatever the
// C locale of the process that writes or reads it (a German one would
// write the learning rate "0,05...", which no other process could read).
TEST(SisaOptionsTest, TheStoredConfigurationIgnoresTheCLocale) {
  SisaOptions o = SmallOptions();
  o.learning_rate = 0.05;
  o.momentum = 0.9;
  const storage::StoreConfig in_c = o.ToConfig();
  EXPECT_EQ(in_c.at("learning_rate"), "0.050000000000000003");
  testing::CommaDecimalLocale german;
  ASSERT_TRUE(german.active());
  EXPECT_EQ(o.ToConfig(), in_c);
  StatusOr<SisaOptions> back = SisaOptions::FromConfig(in_c);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->learning_rate, 0.05);
  EXPECT_EQ(back->momentum, 0.9);
  // What such a host wrote before numbers were written in the C locale.
  storage::StoreConfig old = in_c;
  old["learning_rate"] = "0,050000000000000003";
  back = SisaOptions::FromConfig(old);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->learning_rate, 0.05);
  old["learning_rate"] = "0,05,1";
  EXPECT_EQ(SisaOptions::FromConfig(old).status().code(),
            StatusCode::kDataLoss);
}

}  // namespace
}  // namespace eraser::unlearning
