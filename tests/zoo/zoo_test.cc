// The model zoo: every kind of PyTorch classifier tests/zoo/zoo.py defines
// (linear, MLP, LayerNorm + GELU + dropout, BatchNorm1d, Conv2d + BatchNorm2d
// + ReLU + MaxPool, a residual block with GroupNorm + SiLU + F.dropout, a
// frozen layer, buffers that training updates), scripted by Debian's
// python3-torch, trained by eraser on 1,200 Fashion-MNIST images (2 shards x
// 2 slices), and for each:
//  - retraining after deleting samples from two slices and an owner whose
//    samples span both shards is byte-identical to training from scratch
//    without them (DESIGN guarantee 1);
//  - the engine serves it over /v1/infer and /v2/models/eraser/infer, with
//    the labels it computes in process;
//  - (ZooReplay, the plain CI stage only) a replay with deletions under every
//    ERASER preset exposes nothing, agrees with the retrained and the
//    from-scratch oracles and the final state, and misses no deadline.
// Modules eraser cannot train or serve exactly are refused at train, with
// the cause named.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "eraser/engine/engine.h"
#include "eraser/scheduler/policy.h"
#include "eraser/serve/api.h"
#include "eraser/serve/http_server.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/backbone.h"
#include "eraser/unlearning/ensemble.h"
#include "eraser/unlearning/model.h"
#include "eraser/unlearning/sisa.h"
#include "eraser/workloads/replay.h"
#include "testing/data.h"
#include "testing/http_client.h"
#include "testing/temp_dir.h"

namespace eraser {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using unlearning::RetrainRequest;
using unlearning::RetrainResult;
using unlearning::Sisa;
using unlearning::SisaOptions;

constexpr std::size_t kTrain = 1200;
constexpr std::size_t kTest = 300;

const datasets::Dataset& Data() {
  static const datasets::Dataset* data =
      new datasets::Dataset(testing::SmallFashionMnist(kTrain, kTest));
  return *data;
}

// tests/zoo/zoo.py, run once: every module's .pt file.
class Scripts {
 public:
  Scripts() {
    const std::string command = "/usr/bin/python3 " ERASER_SOURCE_DIR
                                "/tests/zoo/zoo.py " +
                                dir_.path();
    ok_ = std::system(command.c_str()) == 0;
  }
  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const {
    return dir_.Child(name + ".pt");
  }

 private:
  testing::TempDir dir_;
  bool ok_ = false;
};

const Scripts& GetScripts() {
  // Destroyed at exit, which removes the scripts' directory.
  static const Scripts scripts;
  return scripts;
}

SisaOptions ZooOptions(const std::string& module) {
  SisaOptions o;
  o.shards = 2;
  o.slices = 2;
  o.epochs = {1, 2};
  o.batch_size = 32;
  o.learning_rate = 0.02;
  o.seed = 11;
  o.samples_per_owner = 3;  // owners span shards
  o.concurrency = 2;
  EXPECT_TRUE(
      unlearning::LoadScriptFile(GetScripts().Path(module), &o.model).ok());
  return unlearning::ForDataset(o, Data());
}

// A data directory trained on Data() without `erase` (erased before
// training: "trained from scratch without them").
struct Built {
  testing::TempDir dir;
  std::string path;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<Sisa> sisa;
};

std::unique_ptr<Built> Build(const SisaOptions& options,
                             const std::vector<SampleId>& erase = {}) {
  auto b = std::make_unique<Built>();
  b->path = b->dir.Child("data");
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({b->path});
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return b;
  b->store = std::move(store).value();
  StatusOr<std::unique_ptr<Sisa>> sisa = Sisa::Create(b->store.get(), options);
  EXPECT_TRUE(sisa.ok()) << sisa.status();
  if (!sisa.ok()) return b;
  b->sisa = std::move(sisa).value();
  EXPECT_TRUE(b->sisa->Ingest(Data()).ok());
  if (!erase.empty()) {
    storage::ApplyBatch batch;
    batch.erase = erase;
    EXPECT_TRUE(b->store->Apply(batch).ok());
  }
  StatusOr<unlearning::TrainReport> report = b->sisa->TrainAll();
  EXPECT_TRUE(report.ok()) << report.status();
  return b;
}

std::string Blob(storage::Store& store, uint32_t shard, uint32_t slice) {
  StatusOr<storage::Checkpoint> c = store.GetCheckpoint(ShardId(shard), slice);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->blob : "";
}

// The trained directory of each module, built once per process and closed
// (a replay copies it, an engine opens it): the tests open what they need.
const std::string& TrainedDir(const std::string& module) {
  // Destroyed at exit, which removes the directories.
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Built>> built;
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<Built>& b = built[module];
  if (b == nullptr) {
    b = Build(ZooOptions(module));
    b->sisa.reset();
    b->store.reset();
  }
  return b->path;
}

// A trained directory, opened.
struct Opened {
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<Sisa> sisa;
};

Opened Open(const std::string& path) {
  Opened o;
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({path, false});
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return o;
  o.store = std::move(store).value();
  StatusOr<std::unique_ptr<Sisa>> sisa = Sisa::Open(o.store.get(), 2);
  EXPECT_TRUE(sisa.ok()) << sisa.status();
  if (sisa.ok()) o.sisa = std::move(sisa).value();
  return o;
}

// What a test deletes: one sample of shard 0 in each slice, and every
// sample of an owner that has samples in both shards.
struct Deletions {
  std::vector<SampleId> all;
  std::map<ShardId, std::vector<SampleId>> by_shard;
  std::vector<storage::DeletionTarget> targets;
};

Deletions ChooseDeletions(storage::Store& store) {
  Deletions d;
  std::set<uint32_t> slices_found;
  for (uint64_t id = 0; id < kTrain && slices_found.size() < 2; ++id) {
    StatusOr<storage::SampleLocation> loc = store.LookupSample(SampleId(id));
    if (!loc.ok() || loc->shard != ShardId(0) ||
        !slices_found.insert(loc->slice).second) {
      continue;
    }
    d.all.push_back(SampleId(id));
    d.by_shard[ShardId(0)].push_back(SampleId(id));
    d.targets.push_back(storage::DeletionTarget::Sample(SampleId(id)));
  }
  for (uint64_t owner = 0; owner < kTrain; ++owner) {
    StatusOr<std::vector<storage::SampleLocation>> owned =
        store.OwnerSamples(OwnerId(owner));
    if (!owned.ok()) continue;
    std::set<ShardId> shards;
    for (const auto& s : *owned) shards.insert(s.shard);
    bool fresh = shards.size() == 2;
    for (const auto& s : *owned) {
      for (SampleId taken : d.all) fresh = fresh && taken != s.id;
    }
    if (!fresh) continue;
    for (const auto& s : *owned) {
      d.all.push_back(s.id);
      d.by_shard[s.shard].push_back(s.id);
    }
    d.targets.push_back(storage::DeletionTarget::Owner(OwnerId(owner)));
    break;
  }
  return d;
}

class Zoo : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(GetScripts().ok()) << "python3-torch could not script the zoo";
  }
};

TEST_P(Zoo, RetrainingAfterDeletionsEqualsTrainingFromScratch) {
  const Opened base = Open(TrainedDir(GetParam()));
  ASSERT_NE(base.sisa, nullptr);
  const Deletions d = ChooseDeletions(*base.store);
  ASSERT_EQ(d.targets.size(), 3u) << "two slices and an owner";
  ASSERT_EQ(d.by_shard.size(), 2u);
  std::vector<RetrainRequest> requests;
  for (const auto& [shard, samples] : d.by_shard) {
    requests.push_back({shard, samples});
  }
  StatusOr<std::vector<RetrainResult>> results = base.sisa->Retrain(requests);
  ASSERT_TRUE(results.ok()) << results.status();
  const std::unique_ptr<Built> scratch = Build(ZooOptions(GetParam()), d.all);
  ASSERT_NE(scratch->sisa, nullptr);
  for (const RetrainResult& r : *results) {
    ASSERT_NE(r.model, nullptr);
    if (r.shard == ShardId(0)) {
      EXPECT_EQ(r.first_slice, 0u);
    }
    for (const storage::Checkpoint& c : r.checkpoints) {
      EXPECT_EQ(c.blob, Blob(*scratch->store, r.shard.value(), c.slice))
          << "shard " << r.shard << " slice " << c.slice;
    }
    // And the comparison can fail: the served model did change.
    EXPECT_NE(r.model->Serialize(), Blob(*base.store, r.shard.value(), 1));
  }
}

TEST_P(Zoo, ServesOverV1AndTheOpenInferenceProtocol) {
  const std::string& base = TrainedDir(GetParam());
  testing::TempDir work;
  const std::string data = work.Child("data");
  std::filesystem::copy(base, data, std::filesystem::copy_options::recursive);
  engine::EngineOptions options;
  options.data_dir = data;
  options.policy = *scheduler::ParsePolicy("eraser-lazy-wait");
  // Dropout draws from each training stage's own generator, so a module
  // trains two shards at once and may borrow the inference core; one with
  // another random operation (input_noise) draws from Torch's global
  // generator and trains one shard at a time: a second slot or the borrowed
  // core would only wait (docs/engine.md).
  options.unlearning.concurrency = 2;
  StatusOr<std::unique_ptr<engine::Engine>> engine =
      engine::Engine::Open(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const bool parallel = GetParam() != "input_noise";
  EXPECT_EQ((*engine)->Stats().planning.slots, parallel ? 2 : 1);
  EXPECT_EQ((*engine)->Stats().planning.borrowable_slots, parallel ? 1 : 0);
  serve::Api api(engine->get());
  serve::HttpServerOptions http;
  http.listen = "127.0.0.1:0";
  StatusOr<std::unique_ptr<serve::HttpServer>> server =
      serve::HttpServer::Start(
          http, [&api](serve::Request r, serve::Respond respond) {
            api.Handle(std::move(r), std::move(respond));
          });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  const datasets::Split& test = Data().test;
  for (std::size_t i = 0; i < 3; ++i) {
    std::vector<float> x(test.feature_count());
    test.Decode(i, x.data());
    StatusOr<engine::Prediction> expected = (*engine)->Infer(x).get();
    ASSERT_TRUE(expected.ok()) << expected.status();
    testing::HttpResult v1 = testing::Http(port, "POST", "/v1/infer",
                                           json{{"test_index", i}}.dump());
    ASSERT_EQ(v1.status, 200) << v1.body;
    EXPECT_EQ(v1.json()["label"], expected->label);
    EXPECT_EQ(v1.json()["decision"], "clean");
    const json v2_body = {{"inputs",
                           {{{"name", "input"},
                             {"shape", {1, 28, 28}},
                             {"datatype", "FP32"},
                             {"data", x}}}}};
    testing::HttpResult v2 =
        testing::Http(port, "POST", "/v2/models/eraser/infer", v2_body.dump());
    ASSERT_EQ(v2.status, 200) << v2.body;
    EXPECT_EQ(v2.json()["outputs"][0]["data"][0], expected->label);
  }
  (*server)->BeginShutdown(std::chrono::milliseconds(0));
  (*engine)->Close();
  (*server)->Stop();
  api.Join();  // its threads hold the server's connections
}

// A 2 s trace at 40 inferences per second on test rows, with the three
// deletions of ChooseDeletions in its first second: most answers are
// computed with shards affected.
workloads::Trace ZooTrace(const Deletions& d) {
  workloads::Trace t;
  for (int i = 0; i < 80; ++i) {
    workloads::TraceEvent e;
    e.time_ms = i * 25.0;
    e.test_index = static_cast<uint64_t>((i * 7) % kTest);
    t.events.push_back(e);
  }
  for (std::size_t k = 0; k < d.targets.size(); ++k) {
    workloads::TraceEvent e;
    e.time_ms = 100.0 + 300.0 * static_cast<double>(k) + 1;
    e.op = workloads::TraceEvent::Op::kDelete;
    e.deletion = d.targets[k];
    t.events.push_back(e);
  }
  std::stable_sort(
      t.events.begin(), t.events.end(),
      [](const workloads::TraceEvent& a, const workloads::TraceEvent& b) {
        return a.time_ms < b.time_ms;
      });
  return t;
}

class ZooReplay : public Zoo {};

TEST_P(ZooReplay, EveryEraserPresetKeepsEveryGuarantee) {
  const std::string& base = TrainedDir(GetParam());
  Deletions d;
  {
    const Opened opened = Open(base);
    ASSERT_NE(opened.store, nullptr);
    d = ChooseDeletions(*opened.store);
  }
  testing::TempDir work;
  workloads::ReplayConfig config;
  for (const auto& [name, text] : scheduler::Presets()) {
    if (name.rfind("eraser-", 0) == 0) {
      config.policies.push_back(*scheduler::ParsePolicy(name));
    }
  }
  ASSERT_GE(config.policies.size(), 9u);
  config.work_dir = work.path();
  config.speed = 4;                          // 0.5 s per preset
  config.oracle_from_scratch_sample = 1000;  // every answer
  StatusOr<workloads::ReplayReport> report =
      workloads::RunReplay(ZooTrace(d), base, config);
  ASSERT_TRUE(report.ok()) << report.status();
  const json j = json::parse(report->ToJson());
  for (const json& p : j["policies"]) {
    SCOPED_TRACE(p["name"].get<std::string>());
    const json& privacy = p["privacy"];
    EXPECT_EQ(privacy["exposures"], 0);
    EXPECT_EQ(privacy["soundness_violations"], 0);
    EXPECT_GT(privacy["oracle_checked"].get<int>(), 0);
    EXPECT_EQ(privacy["oracle_from_scratch_checked"],
              privacy["oracle_checked"]);
    EXPECT_EQ(privacy["oracle_from_scratch_violations"], 0);
    EXPECT_EQ(privacy["final_state_violations"], 0);
    EXPECT_EQ(p["unlearning"]["deadline_misses"], 0);
    EXPECT_EQ(p["inference"]["decisions"]["uncertified"], 0);
  }
}

const std::vector<std::string> kModules = {"linear",
                                           "mlp",
                                           "layernorm_gelu_dropout",
                                           "batchnorm1d",
                                           "conv_bn_relu_maxpool",
                                           "residual_groupnorm_silu",
                                           "frozen_layer",
                                           "buffer_updated_by_training",
                                           "input_noise"};

INSTANTIATE_TEST_SUITE_P(Modules, Zoo, ::testing::ValuesIn(kModules));
INSTANTIATE_TEST_SUITE_P(Modules, ZooReplay, ::testing::ValuesIn(kModules));

// A frozen backbone (tests/zoo/zoo.py backbone_cnn, 28x28 images to 64
// floats) with an MLP head: the store holds each sample's embedding as its
// features; the heads retrain exactly; the served models take raw images,
// and the ensemble runs the backbone once per batch.
TEST(ZooBackbone, HeadsRetrainExactlyAndServeRawImages) {
  ASSERT_TRUE(GetScripts().ok());
  SisaOptions options;
  options.shards = 2;
  options.slices = 2;
  options.epochs = {1, 2};
  options.batch_size = 32;
  options.seed = 11;
  options.samples_per_owner = 3;
  options.model.hidden = {16};
  ASSERT_TRUE(unlearning::LoadBackboneFile(GetScripts().Path("backbone_cnn"),
                                           &options.backbone)
                  .ok());
  ASSERT_TRUE(
      unlearning::CheckBackbone(Data().train.shape, &options.backbone).ok());
  EXPECT_EQ(options.backbone.embedding_size, 64u);
  options = unlearning::ForDataset(options, Data());
  ASSERT_TRUE(options.Validate().ok()) << options.Validate();
  std::unique_ptr<Built> base = Build(options);
  ASSERT_NE(base->sisa, nullptr);
  // Embeddings, not images, are stored.
  std::size_t scanned = 0;
  ASSERT_TRUE(base->store
                  ->ScanShard(ShardId(0), 0, 2,
                              [&](const storage::SampleView& v) {
                                EXPECT_EQ(v.feature_size, 64 * sizeof(float));
                                ++scanned;
                                return OkStatus();
                              })
                  .ok());
  EXPECT_GT(scanned, 0u);
  // Served models take raw images and run one shared backbone.
  StatusOr<std::vector<unlearning::ShardModel>> models =
      base->sisa->LoadModels();
  ASSERT_TRUE(models.ok()) << models.status();
  std::vector<std::shared_ptr<const unlearning::Model>> served;
  for (const auto& m : *models) {
    EXPECT_EQ(m.model->spec().input_size(), 784u);
    EXPECT_NE(unlearning::PartsOf(*m.model).backbone, nullptr);
    served.push_back(m.model);
  }
  StatusOr<std::unique_ptr<unlearning::Ensemble>> ensemble =
      unlearning::Ensemble::Create(served);
  ASSERT_TRUE(ensemble.ok()) << ensemble.status();
  const std::vector<float> x = Data().test.DecodeRows(0, 32);
  std::vector<int32_t> together(2 * 32), alone(32);
  ASSERT_TRUE(
      (*ensemble)->Predict(x.data(), 32, together.data(), nullptr).ok());
  for (std::size_t k = 0; k < 2; ++k) {
    ASSERT_TRUE(served[k]->Predict(x.data(), 32, alone.data(), nullptr).ok());
    EXPECT_EQ(std::vector<int32_t>(together.begin() + k * 32,
                                   together.begin() + (k + 1) * 32),
              alone);
  }
  // The heads retrain exactly.
  const Deletions d = ChooseDeletions(*base->store);
  ASSERT_EQ(d.by_shard.size(), 2u);
  std::vector<RetrainRequest> requests;
  for (const auto& [shard, samples] : d.by_shard) {
    requests.push_back({shard, samples});
  }
  StatusOr<std::vector<RetrainResult>> results = base->sisa->Retrain(requests);
  ASSERT_TRUE(results.ok()) << results.status();
  const std::unique_ptr<Built> scratch = Build(options, d.all);
  for (const RetrainResult& r : *results) {
    for (const storage::Checkpoint& c : r.checkpoints) {
      EXPECT_EQ(c.blob, Blob(*scratch->store, r.shard.value(), c.slice))
          << "shard " << r.shard << " slice " << c.slice;
    }
    EXPECT_NE(unlearning::PartsOf(*r.model).backbone, nullptr);
  }
  // A directory reopened runs the same backbone.
  base->sisa.reset();
  StatusOr<std::unique_ptr<Sisa>> reopened = Sisa::Open(base->store.get(), 1);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->options().backbone.embedding_size, 64u);
  reopened->reset();
  base->store.reset();
  // The engine serves raw images (its feature size is the image's).
  engine::EngineOptions engine_options;
  engine_options.data_dir = base->path;
  engine_options.policy = *scheduler::ParsePolicy("eraser-lazy-wait");
  StatusOr<std::unique_ptr<engine::Engine>> engine =
      engine::Engine::Open(engine_options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->feature_size(), 784u);
  StatusOr<engine::Prediction> p =
      (*engine)->Infer(std::vector<float>(x.begin(), x.begin() + 784)).get();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->decision, certify::Decision::kClean);
  EXPECT_GT(
      (*engine)->Stats().planning.model_cost.ensemble_infer_seconds_per_row,
      0.0);
}

// The raw bytes of tensor `name` in a checkpoint blob (name, then a u32
// dtype code, a u64 element count and the elements; docs/unlearning.md).
std::string TensorBytes(const std::string& blob, const std::string& name) {
  const std::size_t at = blob.find(name);
  if (at == std::string::npos) return "";
  const std::size_t header = at + name.size();
  uint32_t code = 0;
  uint64_t numel = 0;
  std::memcpy(&code, blob.data() + header, 4);
  std::memcpy(&numel, blob.data() + header + 4, 8);
  const std::size_t width = code == 1 ? 4 : 8;
  return blob.substr(header + 12, numel * width);
}

// The frozen layer stays as the module was saved (both shards start from the
// file's weights and never train it; their heads differ), and the buffers
// that training updates are checkpointed with what training left in them.
TEST(ZooModules, FrozenParametersStayAndTrainedBuffersAreCheckpointed) {
  ASSERT_TRUE(GetScripts().ok());
  const Opened frozen = Open(TrainedDir("frozen_layer"));
  ASSERT_NE(frozen.store, nullptr);
  const std::string shard0 = Blob(*frozen.store, 0, 1);
  const std::string shard1 = Blob(*frozen.store, 1, 1);
  ASSERT_FALSE(TensorBytes(shard0, "p:features.weight").empty());
  EXPECT_EQ(TensorBytes(shard0, "p:features.weight"),
            TensorBytes(shard1, "p:features.weight"));
  EXPECT_NE(TensorBytes(shard0, "p:head.weight"),
            TensorBytes(shard1, "p:head.weight"));
  const Opened running = Open(TrainedDir("buffer_updated_by_training"));
  ASSERT_NE(running.store, nullptr);
  const std::string batches =
      TensorBytes(Blob(*running.store, 0, 1), "b:batches");
  ASSERT_EQ(batches.size(), 8u);
  int64_t count = 0;
  std::memcpy(&count, batches.data(), 8);
  EXPECT_GT(count, 0) << "training updates the buffer";
  EXPECT_NE(TensorBytes(Blob(*running.store, 0, 1), "b:mean"),
            std::string(784 * 4, '\0'));
}

// What eraser cannot serve or retrain exactly is refused before anything is
// written, with the cause.
TEST(ZooRefused, ModulesEraserCannotServeOrTrainAreRefusedWithTheCause) {
  ASSERT_TRUE(GetScripts().ok());
  const std::pair<const char*, const char*> refused[] = {
      {"refused_inference_dropout", "different outputs for the same input"},
      {"refused_counts_requests", "changes buffer 'calls' in eval mode"},
      {"refused_squeezes_batch_of_one",
       "maps a batch of 1 [1, 28, 28] to [10]"},
      {"refused_batch_statistics", "other logits alone than in a batch"},
      {"refused_batchnorm_without_running_stats",
       "fails on a batch of 1 [1, 28, 28]"},
      {"refused_nan_logits", "NaN or infinite logits"},
      {"refused_half_logits", "returns Half values"},
      {"refused_softmax_outputs", "returns probabilities"},
      {"refused_inplace_breaks_backward", "modified by an inplace operation"},
      {"refused_fork_dropout", "forks a task (torch.jit.fork)"},
      {"refused_overflows", "training diverged"},
      {"refused_small_batches_only", "fails on a batch of 1000"}};
  for (const auto& [module, cause] : refused) {
    unlearning::ModelSpec spec;
    ASSERT_TRUE(
        unlearning::LoadScriptFile(GetScripts().Path(module), &spec).ok());
    spec.input_shape = {28, 28};
    spec.classes = 10;
    const Status s = unlearning::CheckModelSpec(spec);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << module;
    EXPECT_THAT(s.message(), HasSubstr(cause)) << module;
  }
  std::vector<std::string> accepted = kModules;
  accepted.insert(accepted.end(), {"gru_rows", "attention_rows", "sqrt_pixels",
                                   "log_softmax_outputs", "dropout_zero"});
  for (const std::string& module : accepted) {
    unlearning::ModelSpec spec;
    ASSERT_TRUE(
        unlearning::LoadScriptFile(GetScripts().Path(module), &spec).ok());
    spec.input_shape = {28, 28};
    spec.classes = 10;
    EXPECT_TRUE(unlearning::CheckModelSpec(spec).ok())
        << module << ": " << unlearning::CheckModelSpec(spec);
    // Dropout and batch norm that train as scripted (a dropout of 0
    // included): no warning.
    EXPECT_THAT(unlearning::ModelSpecWarnings(spec), ::testing::IsEmpty())
        << module;
  }
  // Traced in eval mode: accepted, with a warning that names the cause.
  {
    unlearning::ModelSpec spec;
    ASSERT_TRUE(unlearning::LoadScriptFile(
                    GetScripts().Path("traced_in_eval_mode"), &spec)
                    .ok());
    spec.input_shape = {28, 28};
    spec.classes = 10;
    EXPECT_TRUE(unlearning::CheckModelSpec(spec).ok())
        << unlearning::CheckModelSpec(spec);
    const std::vector<std::string> warnings =
        unlearning::ModelSpecWarnings(spec);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_THAT(warnings[0], HasSubstr("BatchNorm1d"));
    EXPECT_THAT(warnings[0], HasSubstr("torch.jit.trace"));
  }
  // Backbones: embeddings that depend on the batch, a forward that fails
  // on train's evaluation batches, and one that forks a task.
  const std::pair<const char*, const char*> refused_backbones[] = {
      {"refused_backbone_centred", "another embedding alone than in a batch"},
      {"refused_backbone_small_batches_only", "fails on a batch of 1000"},
      {"refused_backbone_forked", "forks a task"}};
  for (const auto& [module, cause] : refused_backbones) {
    unlearning::BackboneSpec backbone;
    ASSERT_TRUE(
        unlearning::LoadBackboneFile(GetScripts().Path(module), &backbone)
            .ok());
    const Status s = unlearning::CheckBackbone({28, 28}, &backbone);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << module;
    EXPECT_THAT(s.message(), HasSubstr(cause)) << module;
  }
}

}  // namespace
}  // namespace eraser
