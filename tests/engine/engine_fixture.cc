#include "engine_fixture.h"

#include <filesystem>
#include <mutex>
#include <random>

#include "eraser/certify/vote.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/evaluate.h"
#include "testing/data.h"
#include "testing/policies.h"

namespace eraser::engine::testing {
namespace {

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "engine fixture: %s: %s\n", what,
                 s.ToString().c_str());
    std::abort();
  }
}

// Trains an ensemble into `dir` without `deleted`; returns its store.
std::unique_ptr<storage::Store> Build(
    const std::string& dir, const datasets::Dataset& data,
    const std::vector<SampleId>& deleted,
    const unlearning::SisaOptions& options = SmallSisaOptions()) {
  StatusOr<std::unique_ptr<storage::Store>> store = storage::Store::Open({dir});
  Check(store.status(), "open store");
  StatusOr<std::unique_ptr<unlearning::Sisa>> sisa = unlearning::Sisa::Create(
      store->get(), unlearning::ForDataset(options, data));
  Check(sisa.status(), "create sisa");
  Check((*sisa)->Ingest(data).status(), "ingest");
  if (!deleted.empty()) {
    storage::ApplyBatch batch;
    batch.erase = deleted;
    Check((*store)->Apply(batch), "erase");
  }
  Check((*sisa)->TrainAll().status(), "train");
  return std::move(store).value();
}

}  // namespace

unlearning::SisaOptions SmallSisaOptions() {
  unlearning::SisaOptions o;
  o.shards = kShards;
  o.slices = kSlices;
  o.model.hidden = {16};
  o.epochs = {1, 2};
  o.batch_size = 32;
  o.seed = 5;
  o.concurrency = 1;
  return o;
}

const Template& GetTemplate() {
  // The directory is removed at exit, after every test has closed its
  // engine; the template itself (plain data) is kept until then too.
  static eraser::testing::TempDir dir;
  static Template* t = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    t = new Template();
    t->dir = dir.Child("template");
    t->data = eraser::testing::SmallFashionMnist(kTrainSamples,
                                                 10'000 - kTrainSamples);
    std::unique_ptr<storage::Store> store = Build(t->dir, t->data, {});
    for (uint64_t id = 0; id < kTrainSamples; ++id) {
      StatusOr<storage::SampleLocation> loc = store->LookupSample(SampleId(id));
      Check(loc.status(), "lookup");
      t->samples[{loc->shard.value(), loc->slice}].push_back(SampleId(id));
    }
    StatusOr<std::unique_ptr<unlearning::Sisa>> sisa =
        unlearning::Sisa::Open(store.get(), 1);
    Check(sisa.status(), "open sisa");
    StatusOr<std::vector<unlearning::ShardModel>> models =
        (*sisa)->LoadModels();
    Check(models.status(), "load models");
    const std::vector<float> inputs =
        t->data.test.DecodeRows(0, Template::kHeldOut);
    constexpr std::size_t kClasses = 10;
    t->votes.assign(Template::kHeldOut, std::vector<int32_t>(kShards));
    t->probs.assign(Template::kHeldOut, std::vector<float>(kShards * kClasses));
    for (uint32_t k = 0; k < kShards; ++k) {
      std::vector<int32_t> v(Template::kHeldOut);
      std::vector<float> p(Template::kHeldOut * kClasses);
      Check((*models)[k].model->Predict(inputs.data(), Template::kHeldOut,
                                        v.data(), p.data()),
            "predict");
      for (std::size_t i = 0; i < Template::kHeldOut; ++i) {
        t->votes[i][k] = v[i];
        std::copy_n(&p[i * kClasses], kClasses, &t->probs[i][k * kClasses]);
      }
    }
  });
  return *t;
}

std::vector<float> Input(std::size_t i) {
  const datasets::Split& test = GetTemplate().data.test;
  std::vector<float> features(test.feature_count());
  test.Decode(i, features.data());
  return features;
}

void BuildInto(const std::string& location,
               const unlearning::SisaOptions& options) {
  Build(location, GetTemplate().data, {}, options).reset();
}

std::string CopyTemplate(const eraser::testing::TempDir& dir) {
  return CopyTemplate(dir.path());
}

std::string CopyTemplate(const std::string& dir) {
  const std::string path = dir + "/data";
  std::filesystem::copy(GetTemplate().dir, path,
                        std::filesystem::copy_options::recursive);
  return path;
}

EngineOptions Options(const std::string& data_dir, const std::string& policy) {
  EngineOptions o;
  o.data_dir = data_dir;
  o.policy = eraser::testing::PolicyOrDie(policy);
  o.inference.max_queue_delay = std::chrono::milliseconds(1);
  o.unlearning.concurrency = 1;
  return o;
}

datasets::Dataset OwnersDataset() {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> value(-1, 1);
  datasets::Dataset d;
  d.source = "test:owners";
  d.classes = 2;
  for (datasets::Split* s : {&d.train, &d.test}) {
    s->type = datasets::FeatureType::kFloat32;
    s->shape = {static_cast<uint32_t>(8)};
  }
  auto add = [&](datasets::Split* s, uint64_t owner) {
    float sum = 0;
    for (std::size_t j = 0; j < 8; ++j) {
      const float v = value(rng);
      sum += v;
      const auto* bytes = reinterpret_cast<const uint8_t*>(&v);
      s->features.insert(s->features.end(), bytes, bytes + sizeof(v));
    }
    s->labels.push_back(sum > 0 ? 1 : 0);
    s->owners.push_back(owner);
  };
  for (int i = 0; i < 60 * 4; ++i) {
    add(&d.train, static_cast<uint64_t>(i % 60));
  }
  for (int i = 0; i < 10 * 3; ++i) {
    add(&d.test, 1000 + static_cast<uint64_t>(i % 10));
  }
  for (int i = 0; i < 3; ++i) add(&d.test, 7);
  return d;
}

EngineOptions OwnersOptions(const std::string& location,
                            const datasets::Dataset* train,
                            const std::string& policy) {
  EngineOptions o = Options(location, policy);
  o.train_data = train;
  o.sisa.shards = 2;
  o.sisa.slices = 2;
  o.sisa.model.hidden = {8};
  o.sisa.epochs = {1, 1};
  o.sisa.batch_size = 16;
  o.sisa.seed = 3;
  o.sisa.concurrency = 1;
  return o;
}

std::vector<std::size_t> InputsWithAgreement(int agree) {
  const Template& t = GetTemplate();
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < Template::kHeldOut; ++i) {
    std::vector<int> counts(10, 0);
    for (int32_t v : t.votes[i]) ++counts[v];
    const int top = *std::max_element(counts.begin(), counts.end());
    if (top == agree) out.push_back(i);
  }
  return out;
}

SampleId SampleIn(uint32_t shard, uint32_t slice, std::size_t n) {
  return GetTemplate().samples.at({shard, slice}).at(n);
}

std::vector<std::string> LastCheckpoints(const std::string& data_dir) {
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({data_dir, /*create_if_missing=*/false});
  Check(store.status(), "reopen store");
  std::vector<std::string> blobs;
  for (uint32_t k = 0; k < kShards; ++k) {
    StatusOr<storage::Checkpoint> c =
        (*store)->GetCheckpoint(ShardId(k), kSlices - 1);
    Check(c.status(), "checkpoint");
    blobs.push_back(c->blob);
  }
  return blobs;
}

std::vector<std::string> ScratchCheckpoints(
    const std::vector<SampleId>& deleted,
    const unlearning::SisaOptions& options) {
  eraser::testing::TempDir dir;
  const std::string path = dir.Child("scratch");
  Build(path, GetTemplate().data, deleted, options).reset();
  return LastCheckpoints(path);
}

}  // namespace eraser::engine::testing
