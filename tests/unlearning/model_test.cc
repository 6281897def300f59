#include "eraser/unlearning/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "eraser/common/random.h"
#include "eraser/unlearning/evaluate.h"
#include "network.h"
#include "testing/data.h"
#include "testing/temp_dir.h"

namespace eraser::unlearning {
namespace {

std::vector<float> RandomInputs(std::size_t n, std::size_t dim) {
  Rng rng(3);
  std::vector<float> x(n * dim);
  for (float& v : x) v = rng.UniformFloat();
  return x;
}

// An architecture with its hidden layers: the built-in models.
struct Arch {
  Architecture arch;
  std::vector<uint32_t> hidden;
  const char* name;
};

class ModelTest : public ::testing::TestWithParam<Arch> {
 protected:
  ModelSpec Spec() const {
    ModelSpec spec;
    spec.arch = GetParam().arch;
    spec.hidden = GetParam().hidden;
    return spec;
  }
};

TEST_P(ModelTest, VotesAreTheArgmaxOfProbabilities) {
  StatusOr<std::unique_ptr<internal::TrainableModel>> model =
      internal::TrainableModel::Create(Spec(), 11);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::size_t n = 17;
  const std::vector<float> x = RandomInputs(n, 784);
  std::vector<int32_t> votes(n);
  std::vector<float> probs(n * 10);
  ASSERT_TRUE((*model)->Predict(x.data(), n, votes.data(), probs.data()).ok());
  for (std::size_t i = 0; i < n; ++i) {
    double sum = 0;
    int best = 0;
    for (int c = 0; c < 10; ++c) {
      sum += probs[i * 10 + c];
      if (probs[i * 10 + c] > probs[i * 10 + best]) best = c;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_EQ(votes[i], best);
  }
  // A batch of one answers like the same row inside a larger batch.
  int32_t single = -1;
  ASSERT_TRUE((*model)->Predict(x.data() + 5 * 784, 1, &single, nullptr).ok());
  EXPECT_EQ(single, votes[5]);
}

TEST_P(ModelTest, SerializeRoundTrips) {
  StatusOr<std::unique_ptr<internal::TrainableModel>> model =
      internal::TrainableModel::Create(Spec(), 11);
  ASSERT_TRUE(model.ok());
  const std::string blob = (*model)->Serialize();
  StatusOr<std::shared_ptr<const Model>> loaded = LoadModel(Spec(), blob);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->Serialize(), blob);
  const std::vector<float> x = RandomInputs(8, 784);
  std::vector<float> a(80);
  std::vector<float> b(80);
  std::vector<int32_t> va(8);
  std::vector<int32_t> vb(8);
  ASSERT_TRUE((*model)->Predict(x.data(), 8, va.data(), a.data()).ok());
  ASSERT_TRUE((*loaded)->Predict(x.data(), 8, vb.data(), b.data()).ok());
  EXPECT_EQ(a, b);
  EXPECT_EQ(va, vb);
}

TEST_P(ModelTest, InitialWeightsDependOnlyOnTheSeed) {
  auto a = internal::TrainableModel::Create(Spec(), 1);
  auto b = internal::TrainableModel::Create(Spec(), 1);
  auto c = internal::TrainableModel::Create(Spec(), 2);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ((*a)->Serialize(), (*b)->Serialize());
  EXPECT_NE((*a)->Serialize(), (*c)->Serialize());
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, ModelTest,
    ::testing::Values(Arch{Architecture::kLinear, {}, "linear"},
                      Arch{Architecture::kMlp, {32}, "mlp"},
                      Arch{Architecture::kMlp, {32, 16}, "mlp2"},
                      Arch{Architecture::kCnn, {}, "cnn"}),
    [](const auto& info) { return std::string(info.param.name); });

// A learning rate far too high: the parameters become NaN or infinite,
// and the training says so instead of keeping a model that answers one
// class for every input.
TEST(TrainTest, ATrainingThatDivergesIsAnErrorNamingTheCause) {
  ModelSpec spec;
  spec.arch = Architecture::kMlp;
  spec.hidden = {16};
  StatusOr<std::unique_ptr<internal::TrainableModel>> model =
      internal::TrainableModel::Create(spec, 11);
  ASSERT_TRUE(model.ok());
  const std::size_t n = 64;
  const std::vector<float> x = RandomInputs(n, 784);
  std::vector<int64_t> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<int64_t>(i % 10);
  const internal::TrainingData data{784, x.data(), y.data()};
  internal::SgdOptions sgd;
  sgd.batch_size = 16;
  sgd.learning_rate = 1e30;
  const Status s = (*model)->Train(data, n, 3, sgd, 7);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("training diverged"), std::string::npos) << s;
  // A forward that is not finite from the start (here a NaN feature in
  // every row; for a module, an operation undefined on the inputs) is named
  // as such.
  std::vector<float> bad = x;
  for (std::size_t i = 0; i < n; ++i) bad[i * 784 + 5] = std::nanf("");
  const internal::TrainingData nan_data{784, bad.data(), y.data()};
  sgd.learning_rate = 0.05;
  StatusOr<std::unique_ptr<internal::TrainableModel>> other =
      internal::TrainableModel::Create(spec, 11);
  ASSERT_TRUE(other.ok());
  const Status nan = (*other)->Train(nan_data, n, 3, sgd, 7);
  EXPECT_EQ(nan.code(), StatusCode::kInvalidArgument) << nan;
  EXPECT_NE(nan.message().find("forward returns NaN or infinite logits"),
            std::string::npos)
      << nan;
  // A learning rate that converges trains.
  StatusOr<std::unique_ptr<internal::TrainableModel>> fresh =
      internal::TrainableModel::Create(spec, 11);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE((*fresh)->Train(data, n, 3, sgd, 7).ok());
}

// What `eraser train` warns on: an ensemble no more accurate than
// answering the most frequent test label (a training that diverged or
// collapsed: a learning rate too high leaves every ReLU dead). Here a
// model trained on one label only, which answers it whatever the input,
// against one trained on the real labels.
TEST(TrainTest, TheEvaluationScoresAnsweringTheMostFrequentLabel) {
  const datasets::Dataset data = eraser::testing::SmallFashionMnist(1200, 300);
  const std::vector<float> x = data.train.DecodeRows(0, data.train.size());
  const std::vector<int64_t> y(data.train.labels.begin(),
                               data.train.labels.end());
  const std::vector<int64_t> threes(y.size(), 3);
  const std::vector<float> tx = data.test.DecodeRows(0, data.test.size());
  ModelSpec spec;
  spec.arch = Architecture::kMlp;
  spec.hidden = {32};
  spec.classes = 10;
  std::size_t counts[10] = {};
  for (uint32_t label : data.test.labels) ++counts[label];
  const double majority =
      static_cast<double>(*std::max_element(counts, counts + 10)) /
      data.test.size();
  EnsembleEvaluation evaluations[2];
  for (int r = 0; r < 2; ++r) {
    StatusOr<std::unique_ptr<internal::TrainableModel>> model =
        internal::TrainableModel::Create(spec, 11);
    ASSERT_TRUE(model.ok());
    const internal::TrainingData train{784, x.data(),
                                       r == 0 ? threes.data() : y.data()};
    ASSERT_TRUE(
        (*model)
            ->Train(train, data.train.size(), 2, internal::SgdOptions(), 7)
            .ok());
    std::vector<ShardModel> models = {
        {ShardId(0), 1, std::shared_ptr<const Model>(std::move(*model))}};
    StatusOr<EnsembleEvaluation> e = EvaluateEnsemble(
        models, tx.data(), data.test.labels.data(), data.test.size());
    ASSERT_TRUE(e.ok()) << e.status();
    evaluations[r] = *e;
  }
  EXPECT_DOUBLE_EQ(evaluations[0].majority_share, majority);
  EXPECT_DOUBLE_EQ(evaluations[1].majority_share, majority);
  // Always 3: its share, no more than the most frequent label's.
  EXPECT_DOUBLE_EQ(evaluations[0].hard_vote_accuracy,
                   static_cast<double>(counts[3]) / data.test.size());
  EXPECT_LE(evaluations[0].hard_vote_accuracy, evaluations[0].majority_share);
  EXPECT_GT(evaluations[1].hard_vote_accuracy,
            evaluations[1].majority_share + 0.3);
}

TEST(LoadModel, CorruptOrMismatchedBlobsAreDataLoss) {
  ModelSpec spec;
  spec.hidden = {8};
  auto model = internal::TrainableModel::Create(spec, 1);
  ASSERT_TRUE(model.ok());
  const std::string blob = (*model)->Serialize();
  EXPECT_EQ(LoadModel(spec, "").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(LoadModel(spec, "XXXX" + blob.substr(4)).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(LoadModel(spec, blob.substr(0, blob.size() - 1)).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(LoadModel(spec, blob + "x").status().code(), StatusCode::kDataLoss);
  ModelSpec wider = spec;
  wider.hidden = {9};
  EXPECT_EQ(LoadModel(wider, blob).status().code(), StatusCode::kDataLoss);
  ModelSpec deeper = spec;
  deeper.hidden = {8, 8};
  EXPECT_EQ(LoadModel(deeper, blob).status().code(), StatusCode::kDataLoss);
  ModelSpec cnn = spec;
  cnn.arch = Architecture::kCnn;
  cnn.hidden.clear();
  EXPECT_EQ(LoadModel(cnn, blob).status().code(), StatusCode::kDataLoss);
}

// Every image the CNN's check accepts builds a model: 12x12 to 15x15 passed
// the check and then failed inside LibTorch (a linear layer of no inputs).
TEST(ModelSpecTest, EveryImageSizeTheCnnAcceptsBuilds) {
  for (uint32_t rows = 1; rows <= 40; ++rows) {
    for (uint32_t cols : {rows, 28u}) {
      ModelSpec spec;
      spec.arch = Architecture::kCnn;
      spec.hidden.clear();
      spec.input_shape = {rows, cols};
      const Status valid = spec.Validate();
      if (!valid.ok()) {
        EXPECT_NE(valid.message().find("at least 16x16"), std::string::npos)
            << valid;
        continue;
      }
      EXPECT_GE(std::min(rows, cols), 16u);
      StatusOr<std::unique_ptr<internal::TrainableModel>> model =
          internal::TrainableModel::Create(spec, 1);
      EXPECT_TRUE(model.ok()) << rows << "x" << cols << ": " << model.status();
    }
  }
  ModelSpec channels;
  channels.arch = Architecture::kCnn;
  channels.hidden.clear();
  channels.input_shape = {1, 28, 28};
  EXPECT_NE(channels.Validate().message().find("no channel axis"),
            std::string::npos)
      << channels.Validate();
}

TEST(ModelSpecTest, ValidateAndNames) {
  ModelSpec spec;
  EXPECT_TRUE(spec.Validate().ok());
  EXPECT_EQ(spec.ToString(), "mlp-784-128-10");
  spec.classes = 1;
  EXPECT_EQ(spec.Validate().code(), StatusCode::kInvalidArgument);
  spec = ModelSpec();
  spec.arch = Architecture::kCnn;
  spec.hidden.clear();
  EXPECT_TRUE(spec.Validate().ok());
  EXPECT_EQ(spec.ToString(), "cnn-28x28-10");
  spec.input_shape = {8, 28};
  EXPECT_EQ(spec.Validate().code(), StatusCode::kInvalidArgument);
  spec.input_shape = {784};  // the CNN needs an image
  EXPECT_EQ(spec.Validate().code(), StatusCode::kInvalidArgument);
  spec = ModelSpec();
  spec.hidden.clear();  // an MLP needs a hidden layer
  EXPECT_EQ(spec.Validate().code(), StatusCode::kInvalidArgument);
  spec.arch = Architecture::kLinear;
  spec.input_shape = {30};
  spec.classes = 2;
  EXPECT_TRUE(spec.Validate().ok());
  EXPECT_EQ(spec.ToString(), "linear-30-2");
  spec.hidden = {4};  // a linear model takes none
  EXPECT_EQ(spec.Validate().code(), StatusCode::kInvalidArgument);
  spec.arch = Architecture::kMlp;
  spec.hidden = {64, 32};
  EXPECT_EQ(spec.ToString(), "mlp-30-64x32-2");
  spec.arch = Architecture::kTorchScript;
  spec.hidden.clear();  // a TorchScript model needs its module
  EXPECT_EQ(spec.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseArchitecture("cnn"), Architecture::kCnn);
  EXPECT_EQ(ParseArchitecture("resnet").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ModelSpecTest, Flags) {
  StatusOr<ModelSpec> linear = ModelSpecFromFlags("linear", {128});
  ASSERT_TRUE(linear.ok());
  EXPECT_EQ(linear->arch, Architecture::kLinear);
  EXPECT_TRUE(linear->hidden.empty());  // --hidden is for MLPs
  StatusOr<ModelSpec> mlp = ModelSpecFromFlags("mlp", {256, 128});
  ASSERT_TRUE(mlp.ok());
  EXPECT_EQ(mlp->hidden, (std::vector<uint32_t>{256, 128}));
  EXPECT_EQ(ModelSpecFromFlags("torchscript:", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ModelSpecFromFlags("torchscript:/no/such.pt", {}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ModelSpecFromFlags("torchscript", {}).status().code(),
            StatusCode::kInvalidArgument);
  // A directory or an empty file, each named for what it is.
  eraser::testing::TempDir dir;
  StatusOr<ModelSpec> directory =
      ModelSpecFromFlags("torchscript:" + dir.path(), {});
  EXPECT_EQ(directory.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(directory.status().message().find("is a directory"),
            std::string::npos)
      << directory.status();
  const std::string empty = dir.Child("empty.pt");
  std::ofstream(empty).close();
  StatusOr<ModelSpec> nothing = ModelSpecFromFlags("torchscript:" + empty, {});
  EXPECT_EQ(nothing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(nothing.status().message().find("is empty"), std::string::npos)
      << nothing.status();
  EXPECT_EQ(*ParseHidden("256,128"), (std::vector<uint32_t>{256, 128}));
  for (const char* bad : {"0", "12,", ",12", "a", "1,-2", "70000", " 3"}) {
    EXPECT_EQ(ParseHidden(bad).status().code(), StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace eraser::unlearning
