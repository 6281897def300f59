// TorchScript modules as constituent models (DESIGN guarantee 1 for a model
// eraser did not write): a module scripted by PyTorch with dropout, batch
// norm and layer norm is trained by eraser, and retraining after deleting
// samples from two slices, or an owner spanning shards, leaves checkpoints
// byte-identical to training from scratch without them. Modules that do
// not fit the data are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "eraser/storage/store.h"
#include "eraser/unlearning/model.h"
#include "eraser/unlearning/sisa.h"
#include "testing/data.h"
#include "testing/temp_dir.h"

namespace eraser::unlearning {
namespace {

using ::testing::HasSubstr;

constexpr std::size_t kSamples = 1200;

// Writes the modules with Debian's python3-torch (the same LibTorch).
class Scripts {
 public:
  Scripts() {
    const std::string script =
        "import sys, torch\n"
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, classes: int):\n"
        "        super().__init__()\n"
        "        self.flat = nn.Flatten()\n"
        "        self.fc1 = nn.Linear(784, 24)\n"
        "        self.bn = nn.BatchNorm1d(24)\n"
        "        self.drop = nn.Dropout(0.3)\n"
        "        self.ln = nn.LayerNorm(24)\n"
        "        self.fc2 = nn.Linear(24, classes)\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        h = self.drop(torch.relu(self.bn(self.fc1(self.flat(x)))))\n"
        "        return self.fc2(self.ln(h))\n"
        "class LnGelu(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 32),\n"
        "            nn.LayerNorm(32), nn.GELU(), nn.Dropout(0.1),\n"
        "            nn.Linear(32, 10))\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        return self.body(x)\n"
        "class Feature(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(1, 4, 5, stride=3)\n"
        "        self.drop = nn.Dropout2d(0.2)\n"
        "        self.fc = nn.Linear(4 * 8 * 8, 10)\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        h = self.drop(torch.relu(self.conv(x.reshape(-1, 1, 28, "
        "28))))\n"
        "        h = nn.functional.dropout(h.flatten(1), 0.1, self.training,\n"
        "                                  inplace=True)\n"
        "        return self.fc(h)\n"
        "class Noisy(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(784, 10)\n"
        "        self.drop = nn.Dropout(0.1)\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        x = torch.flatten(x, 1)\n"
        "        if self.training:\n"
        "            x = x + 0.1 * torch.randn_like(x)\n"
        "        return self.fc(self.drop(x))\n"
        "class Alpha(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(784, 10)\n"
        "        self.drop = nn.AlphaDropout(0.1)\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        return self.fc(self.drop(torch.flatten(x, 1)))\n"
        "class Rnn(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.rnn = nn.GRU(28, 8, num_layers=2, dropout=0.2,\n"
        "                          batch_first=True)\n"
        "        self.fc = nn.Linear(8, 10)\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        out, _ = self.rnn(x.reshape(-1, 28, 28))\n"
        "        return self.fc(out[:, -1])\n"
        "torch.manual_seed(0)\n"
        "d = sys.argv[1]\n"
        "torch.jit.script(Net(10)).save(d + '/net.pt')\n"
        "torch.jit.script(Net(3)).save(d + '/three.pt')\n"
        "torch.jit.script(LnGelu()).save(d + '/ln_gelu.pt')\n"
        "torch.jit.script(Feature()).save(d + '/feature.pt')\n"
        "torch.jit.script(Noisy()).save(d + '/noisy.pt')\n"
        "torch.jit.script(Alpha()).save(d + '/alpha.pt')\n"
        "torch.jit.script(Rnn()).save(d + '/rnn.pt')\n";
    testing::WriteFileOrDie(dir_.Child("make.py"), script);
    const std::string command =
        "/usr/bin/python3 " + dir_.Child("make.py") + " " + dir_.path();
    ok_ = std::system(command.c_str()) == 0;
  }
  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const { return dir_.Child(name); }

 private:
  testing::TempDir dir_;
  bool ok_ = false;
};

// Built on first use; its directory is removed at exit.
const Scripts& GetScripts() {
  static const Scripts scripts;
  return scripts;
}

const datasets::Dataset& Data() {
  static const datasets::Dataset* data =
      new datasets::Dataset(testing::SmallFashionMnist(kSamples, 500));
  return *data;
}

SisaOptions ScriptOptions() {
  SisaOptions o;
  o.shards = 2;
  o.slices = 4;
  o.epochs = {1, 1, 1, 2};
  o.batch_size = 32;
  o.seed = 3;
  o.concurrency = 2;
  ModelSpec spec;
  EXPECT_TRUE(LoadScriptFile(GetScripts().Path("net.pt"), &spec).ok());
  o.model = spec;
  return ForDataset(o, Data());
}

struct Built {
  testing::TempDir dir;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<Sisa> sisa;
};

// Trained on Data() without `erase` (erased before training: "from
// scratch without them").
std::unique_ptr<Built> Build(const SisaOptions& options,
                             const std::vector<SampleId>& erase = {}) {
  auto b = std::make_unique<Built>();
  b->store = std::move(storage::Store::Open({b->dir.path()})).value();
  StatusOr<std::unique_ptr<Sisa>> sisa = Sisa::Create(b->store.get(), options);
  EXPECT_TRUE(sisa.ok()) << sisa.status();
  b->sisa = std::move(sisa).value();
  EXPECT_TRUE(b->sisa->Ingest(Data()).ok());
  if (!erase.empty()) {
    storage::ApplyBatch batch;
    batch.erase = erase;
    EXPECT_TRUE(b->store->Apply(batch).ok());
  }
  StatusOr<TrainReport> report = b->sisa->TrainAll();
  EXPECT_TRUE(report.ok()) << report.status();
  return b;
}

std::string Blob(storage::Store& store, uint32_t shard, uint32_t slice) {
  StatusOr<storage::Checkpoint> c = store.GetCheckpoint(ShardId(shard), slice);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->blob : "";
}

class ScriptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(GetScripts().ok()) << "python3-torch could not script the "
                                      "test module";
    base_ = Build(ScriptOptions()).release();
  }
  static void TearDownTestSuite() {
    delete base_;
    base_ = nullptr;
  }
  static Built* base_;
};
Built* ScriptTest::base_ = nullptr;

TEST_F(ScriptTest, TrainsALearningEnsembleAndServesInEvalMode) {
  StatusOr<std::vector<ShardModel>> models = base_->sisa->LoadModels();
  ASSERT_TRUE(models.ok()) << models.status();
  const datasets::Split& test = Data().test;
  const std::vector<float> x = test.DecodeRows(0, test.size());
  for (const ShardModel& m : *models) {
    std::vector<int32_t> votes(test.size());
    std::vector<float> probs(test.size() * 10);
    std::vector<float> again(test.size() * 10);
    ASSERT_TRUE(
        m.model->Predict(x.data(), test.size(), votes.data(), probs.data())
            .ok());
    // Dropout is off when serving: the same input gives the same output.
    ASSERT_TRUE(
        m.model->Predict(x.data(), test.size(), votes.data(), again.data())
            .ok());
    EXPECT_EQ(probs, again);
    std::size_t correct = 0;
    for (std::size_t i = 0; i < test.size(); ++i) {
      correct += static_cast<uint32_t>(votes[i]) == test.labels[i];
    }
    EXPECT_GT(correct, test.size() / 2) << "shard " << m.shard;
  }
}

// Trained on one new thread and served on another, as the engine trains on
// its arena and serves on its inference workers, with the module of the
// issue that found it (LayerNorm, GELU, dropout). LibTorch keeps
// TorchScript's optimisation setting per thread: a thread left with the
// profiling executor swapped in a differentiable graph after a few training
// runs, and serving that module under InferenceMode then failed
// ("Inference tensors cannot be saved for backward").
TEST(ScriptModule, TrainsAndServesOnAnyThread) {
  ASSERT_TRUE(GetScripts().ok());
  SisaOptions options = ScriptOptions();
  ASSERT_TRUE(
      LoadScriptFile(GetScripts().Path("ln_gelu.pt"), &options.model).ok());
  std::unique_ptr<Built> b = Build(options);
  StatusOr<std::shared_ptr<const Model>> model = InternalError("not run");
  std::thread([&] {
    model = b->sisa->TrainFromScratch(ShardId(0), {});
  }).join();
  ASSERT_TRUE(model.ok()) << model.status();
  // The same bytes as the ensemble trained on the arena's threads.
  EXPECT_EQ((*model)->Serialize(), Blob(*b->store, 0, 3));
  const datasets::Split& test = Data().test;
  const std::vector<float> x = test.DecodeRows(0, 64);
  std::vector<int32_t> votes(64);
  Status served;
  std::thread([&] {
    // The profiling executor changes its plan after a few runs.
    for (int i = 0; i < 5 && served.ok(); ++i) {
      served = (*model)->Predict(x.data(), 64, votes.data(), nullptr);
    }
  }).join();
  EXPECT_TRUE(served.ok()) << served;
}

// Every checkpoint of a training from scratch, as bytes.
std::vector<std::string> Checkpoints(const Built& b,
                                     const SisaOptions& options) {
  std::vector<std::string> blobs;
  for (uint32_t shard = 0; shard < options.shards; ++shard) {
    for (uint32_t slice = 0; slice < options.slices; ++slice) {
      blobs.push_back(Blob(*b.store, shard, slice));
    }
  }
  return blobs;
}

// Dropout (nn.Dropout, nn.Dropout2d, F.dropout in place) draws from the
// training stage's own generator (script_model.cc), so a module whose only
// random operation is dropout trains its shards at once, and what it trains
// does not depend on how many train at once. Fails if dropout draws from
// Torch's global generator without the lock: two stages at once interleave
// their draws.
TEST(ScriptModule, DropoutOnlyModulesTrainShardsAtOnceExactly) {
  ASSERT_TRUE(GetScripts().ok());
  for (const char* name : {"net.pt", "ln_gelu.pt", "feature.pt"}) {
    SisaOptions options = ScriptOptions();
    ASSERT_TRUE(LoadScriptFile(GetScripts().Path(name), &options.model).ok());
    EXPECT_TRUE(TrainsInParallel(options.model)) << name;
    ASSERT_EQ(options.concurrency, 2);
    const std::vector<std::string> together =
        Checkpoints(*Build(options), options);
    options.concurrency = 1;
    EXPECT_EQ(Checkpoints(*Build(options), options), together) << name;
  }
}

// A module with another random operation draws from Torch's global
// generator: Gaussian noise on the inputs in training (beside dropout),
// alpha dropout, and a two-layer GRU whose CPU kernel runs dropout between
// its layers. Its stages run one at a time, each seeding that generator
// first, and train exactly.
TEST(ScriptModule, AModuleWithAnotherRandomOperationTrainsOneShardAtATime) {
  ASSERT_TRUE(GetScripts().ok());
  for (const char* name : {"noisy.pt", "alpha.pt", "rnn.pt"}) {
    SisaOptions options = ScriptOptions();
    ASSERT_TRUE(LoadScriptFile(GetScripts().Path(name), &options.model).ok());
    ASSERT_TRUE(CheckModelSpec(options.model).ok())
        << name << ": " << CheckModelSpec(options.model);
    EXPECT_FALSE(TrainsInParallel(options.model)) << name;
    const std::vector<std::string> first =
        Checkpoints(*Build(options), options);
    EXPECT_EQ(Checkpoints(*Build(options), options), first) << name;
    options.concurrency = 1;
    EXPECT_EQ(Checkpoints(*Build(options), options), first) << name;
  }
}

TEST_F(ScriptTest, CheckpointsHoldParametersAndBuffers) {
  // The batch norm statistics moved during training and are in the blob: a
  // blob of the untrained module differs from the trained one, and a model
  // loaded from the trained blob serializes to it again.
  StatusOr<std::vector<ShardModel>> models = base_->sisa->LoadModels();
  ASSERT_TRUE(models.ok());
  const std::string blob = Blob(*base_->store, 0, 3);
  EXPECT_EQ((*models)[0].model->Serialize(), blob);
  EXPECT_THAT(blob, HasSubstr("b:bn.running_mean"));
  EXPECT_THAT(blob, HasSubstr("b:bn.num_batches_tracked"));
  EXPECT_THAT(blob, HasSubstr("p:ln.weight"));
}

TEST_F(ScriptTest, RetrainAfterDeletingFromTwoSlicesIsBitIdentical) {
  // One sample of shard 0 in slice 1 and one in slice 3.
  std::map<uint32_t, SampleId> found;
  for (uint64_t id = 0; id < kSamples && found.size() < 2; ++id) {
    StatusOr<storage::SampleLocation> loc =
        base_->store->LookupSample(SampleId(id));
    ASSERT_TRUE(loc.ok());
    if (loc->shard == ShardId(0) && (loc->slice == 1 || loc->slice == 3) &&
        !found.count(loc->slice)) {
      found[loc->slice] = SampleId(id);
    }
  }
  const std::vector<SampleId> deleted = {found.at(1), found.at(3)};
  StatusOr<std::vector<RetrainResult>> results =
      base_->sisa->Retrain({{ShardId(0), deleted}});
  ASSERT_TRUE(results.ok()) << results.status();
  const RetrainResult& r = (*results)[0];
  EXPECT_EQ(r.first_slice, 1u);
  ASSERT_EQ(r.checkpoints.size(), 3u);
  std::unique_ptr<Built> scratch = Build(ScriptOptions(), deleted);
  for (uint32_t slice = 1; slice < 4; ++slice) {
    EXPECT_EQ(r.checkpoints[slice - 1].blob, Blob(*scratch->store, 0, slice))
        << "slice " << slice;
  }
  EXPECT_EQ(Blob(*base_->store, 0, 0), Blob(*scratch->store, 0, 0));
  EXPECT_EQ(Blob(*base_->store, 1, 3), Blob(*scratch->store, 1, 3));
  EXPECT_NE(r.model->Serialize(), Blob(*base_->store, 0, 3));
}

TEST(ScriptOwners, RetrainOfAnOwnerSpanningShardsIsBitIdentical) {
  ASSERT_TRUE(GetScripts().ok());
  SisaOptions options = ScriptOptions();
  options.samples_per_owner = 4;
  std::unique_ptr<Built> base = Build(options);
  std::vector<storage::SampleLocation> samples;
  for (uint64_t owner = 0; samples.empty(); ++owner) {
    StatusOr<std::vector<storage::SampleLocation>> owned =
        base->store->OwnerSamples(OwnerId(owner));
    ASSERT_TRUE(owned.ok()) << owned.status();
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

TEST(ScriptModule, TheDirectoryKeepsTheModule) {
  ASSERT_TRUE(GetScripts().ok());
  testing::TempDir dir;
  const SisaOptions options = ScriptOptions();
  {
    auto store = std::move(storage::Store::Open({dir.path()})).value();
    auto sisa = std::move(Sisa::Create(store.get(), options)).value();
    ASSERT_TRUE(sisa->Ingest(Data()).ok());
    ASSERT_TRUE(sisa->TrainAll().ok());
  }
  // Opened without the file: the module comes from the data directory.
  auto store = std::move(storage::Store::Open({dir.path()})).value();
  StatusOr<std::unique_ptr<Sisa>> opened = Sisa::Open(store.get(), 1);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->options().model.ToString(), options.model.ToString());
  EXPECT_TRUE((*opened)->LoadModels().ok());
  // Another module is another configuration.
  SisaOptions other = options;
  ASSERT_TRUE(LoadScriptFile(GetScripts().Path("three.pt"), &other.model).ok());
  EXPECT_EQ(
      Sisa::Create(store.get(), ForDataset(other, Data())).status().code(),
      StatusCode::kFailedPrecondition);
}

TEST(ScriptModule, ModulesThatDoNotFitAreRefused) {
  ASSERT_TRUE(GetScripts().ok());
  ModelSpec spec = ScriptOptions().model;
  EXPECT_TRUE(CheckModelSpec(spec).ok());
  // Three outputs for a ten-class dataset.
  ModelSpec three = spec;
  ASSERT_TRUE(LoadScriptFile(GetScripts().Path("three.pt"), &three).ok());
  Status s = CheckModelSpec(three);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("three.pt"));
  EXPECT_THAT(s.message(), HasSubstr("to [2, 3]"));
  EXPECT_THAT(s.message(), HasSubstr("10 classes"));
  // Inputs of another shape than the module takes.
  ModelSpec narrow = spec;
  narrow.input_shape = {30};
  s = CheckModelSpec(narrow);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("forward fails on a float input of "
                                     "shape [2, 30]"));
  // Not a TorchScript file at all.
  testing::TempDir dir;
  testing::WriteFileOrDie(dir.Child("notes.pt"), "these are not weights\n");
  ModelSpec text = spec;
  ASSERT_TRUE(LoadScriptFile(dir.Child("notes.pt"), &text).ok());
  s = CheckModelSpec(text);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("notes.pt is not a TorchScript module"));
  EXPECT_EQ(LoadScriptFile(dir.Child("missing.pt"), &text).code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace eraser::unlearning
