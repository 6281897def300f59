#include "eraser/unlearning/model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "eraser/common/random.h"
#include "network.h"

namespace eraser::unlearning {
namespace {

std::vector<float> RandomInputs(std::size_t n, std::size_t dim) {
  Rng rng(3);
  std::vector<float> x(n * dim);
  for (float& v : x) v = rng.UniformFloat();
  return x;
}

class ModelTest : public ::testing::TestWithParam<Architecture> {
 protected:
  ModelSpec Spec() const {
    ModelSpec spec;
    spec.arch = GetParam();
    spec.hidden = 32;
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

INSTANTIATE_TEST_SUITE_P(Architectures, ModelTest,
                         ::testing::Values(Architecture::kMlp,
                                           Architecture::kCnn),
                         [](const auto& info) {
                           return std::string(ArchitectureName(info.param));
                         });

TEST(LoadModel, CorruptOrMismatchedBlobsAreDataLoss) {
  ModelSpec spec;
  spec.hidden = 8;
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
  wider.hidden = 9;
  EXPECT_EQ(LoadModel(wider, blob).status().code(), StatusCode::kDataLoss);
  ModelSpec cnn = spec;
  cnn.arch = Architecture::kCnn;
  EXPECT_EQ(LoadModel(cnn, blob).status().code(), StatusCode::kDataLoss);
}

TEST(ModelSpecTest, ValidateAndNames) {
  ModelSpec spec;
  EXPECT_TRUE(spec.Validate().ok());
  EXPECT_EQ(spec.ToString(), "mlp-784-128-10");
  spec.classes = 1;
  EXPECT_EQ(spec.Validate().code(), StatusCode::kInvalidArgument);
  spec = ModelSpec();
  spec.arch = Architecture::kCnn;
  spec.rows = 8;
  EXPECT_EQ(spec.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseArchitecture("cnn"), Architecture::kCnn);
  EXPECT_EQ(ParseArchitecture("resnet").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eraser::unlearning
