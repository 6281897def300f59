// The stacked ensemble gives the same votes as evaluating each model alone,
// at every batch size, and votes never depend on the batch.
#include "eraser/unlearning/ensemble.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "eraser/common/random.h"
#include "eraser/unlearning/evaluate.h"
#include "testing/data.h"

namespace eraser::unlearning {
namespace {

constexpr std::size_t kImages = 10000;

const std::vector<float>& TestInputs() {
  static const std::vector<float>* inputs = [] {
    const datasets::Split& t10k = testing::T10k();
    return new std::vector<float>(t10k.DecodeRows(0, t10k.size()));
  }();
  return *inputs;
}

std::vector<std::shared_ptr<const Model>> Models(const ModelSpec& spec, int k) {
  std::vector<std::shared_ptr<const Model>> models;
  for (int i = 0; i < k; ++i) {
    StatusOr<std::shared_ptr<const Model>> m = InitialModel(spec, 100 + i);
    EXPECT_TRUE(m.ok()) << m.status();
    models.push_back(*m);
  }
  return models;
}

// A model whose output class 5 copies class 3, its weights moved by
// relative noise of size `noise`: the two logits differ on each input by an
// amount of the order of float rounding, so which one leads can depend on
// the batch shape, and rows where they lead are near ties decided by
// evaluating the input alone. With noise 0 they tie exactly.
std::shared_ptr<const Model> TiedModel(const ModelSpec& spec, float noise = 0) {
  std::string blob = (*InitialModel(spec, 7))->Serialize();
  // Blob: magic, format, the spec's name and the tensor count; then per
  // tensor its name, dtype, u64 element count and data, in the order
  // fc1.weight, fc1.bias, fc2.weight, fc2.bias.
  auto u32 = [&blob](std::size_t at) {
    uint32_t v = 0;
    std::memcpy(&v, blob.data() + at, 4);
    return v;
  };
  std::size_t offset = 8;
  offset += 4 + u32(offset) + 4;
  std::vector<std::size_t> starts;
  for (int t = 0; t < 4; ++t) {
    offset += 4 + u32(offset) + 4;  // name, dtype
    uint64_t count = 0;
    std::memcpy(&count, blob.data() + offset, 8);
    starts.push_back(offset + 8);
    offset += 8 + count * sizeof(float);
  }
  EXPECT_EQ(offset, blob.size());
  const std::size_t h = spec.hidden.at(0);
  Rng rng(11);
  for (std::size_t j = 0; j < h; ++j) {
    float w = 0;
    std::memcpy(&w, &blob[starts[2] + (3 * h + j) * 4], 4);
    w *= 1.0f + noise * (2.0f * rng.UniformFloat() - 1.0f);
    std::memcpy(&blob[starts[2] + (5 * h + j) * 4], &w, 4);
  }
  std::memcpy(&blob[starts[3] + 5 * 4], &blob[starts[3] + 3 * 4], 4);
  StatusOr<std::shared_ptr<const Model>> m = LoadModel(spec, blob);
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

// Each model's vote on each image evaluated alone: the definition.
std::vector<std::vector<int32_t>> VotesAlone(
    const std::vector<std::shared_ptr<const Model>>& models, std::size_t n) {
  const std::size_t d = models.front()->spec().input_size();
  std::vector<std::vector<int32_t>> votes(models.size(),
                                          std::vector<int32_t>(n));
  for (std::size_t k = 0; k < models.size(); ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_TRUE(
          models[k]
              ->Predict(TestInputs().data() + i * d, 1, &votes[k][i], nullptr)
              .ok());
    }
  }
  return votes;
}

void ExpectSameVotes(const std::vector<std::shared_ptr<const Model>>& models,
                     bool expect_stacked) {
  StatusOr<std::unique_ptr<Ensemble>> ensemble = Ensemble::Create(models);
  ASSERT_TRUE(ensemble.ok()) << ensemble.status();
  EXPECT_EQ((*ensemble)->stacked(), expect_stacked);
  const std::size_t k = models.size();
  const std::size_t c = models.front()->spec().classes;
  const std::size_t d = models.front()->spec().input_size();
  const std::vector<std::vector<int32_t>> alone = VotesAlone(models, kImages);
  double worst_prob = 0;
  for (std::size_t batch : {3u, 8u, 64u, 1000u}) {
    for (std::size_t start = 0; start < kImages; start += batch) {
      const std::size_t n = std::min(batch, kImages - start);
      const float* x = TestInputs().data() + start * d;
      std::vector<int32_t> votes(k * n);
      std::vector<float> probs(k * n * c);
      ASSERT_TRUE((*ensemble)->Predict(x, n, votes.data(), probs.data()).ok());
      for (std::size_t s = 0; s < k; ++s) {
        std::vector<int32_t> one(n);
        std::vector<float> one_probs(n * c);
        ASSERT_TRUE(
            models[s]->Predict(x, n, one.data(), one_probs.data()).ok());
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_EQ(votes[s * n + i], alone[s][start + i])
              << "stacked, model " << s << ", image " << start + i << ", batch "
              << batch;
          ASSERT_EQ(one[i], alone[s][start + i])
              << "model " << s << " in a batch, image " << start + i;
        }
        for (std::size_t j = 0; j < n * c; ++j) {
          worst_prob = std::max<double>(
              worst_prob, std::fabs(probs[s * n * c + j] - one_probs[j]));
        }
      }
    }
  }
  EXPECT_LT(worst_prob, 1e-5);
}

TEST(Ensemble, StackedMlpVotesEqualEachModelAlone) {
  ModelSpec spec;  // 784-128-10, the default
  std::vector<std::shared_ptr<const Model>> models = Models(spec, 3);
  for (float noise : {0.0f, 3e-8f, 1e-7f, 3e-7f, 1e-6f}) {
    models.push_back(TiedModel(spec, noise));
  }
  ExpectSameVotes(models, /*expect_stacked=*/true);
}

TEST(Ensemble, SmallHiddenLayerToo) {
  ModelSpec spec;
  spec.hidden = {16};
  ExpectSameVotes(Models(spec, 3), /*expect_stacked=*/true);
}

TEST(Ensemble, DeeperMlpsAndLinearModelsRunModelByModel) {
  ModelSpec deep;
  deep.hidden = {32, 16};
  ExpectSameVotes(Models(deep, 2), /*expect_stacked=*/false);
  ModelSpec linear;
  linear.arch = Architecture::kLinear;
  linear.hidden.clear();
  ExpectSameVotes(Models(linear, 2), /*expect_stacked=*/false);
}

TEST(Ensemble, TiedLogitsGoToTheSmallerLabel) {
  ModelSpec spec;
  std::shared_ptr<const Model> tied = TiedModel(spec);
  const std::vector<std::vector<int32_t>> votes = VotesAlone({tied}, kImages);
  int led_by_tie = 0;
  for (int32_t v : votes[0]) {
    EXPECT_NE(v, 5);  // 5 always ties with 3, which wins
    led_by_tie += v == 3;
  }
  EXPECT_GT(led_by_tie, 0);
}

TEST(Ensemble, CnnRunsModelByModel) {
  ModelSpec spec;
  spec.arch = Architecture::kCnn;
  spec.hidden.clear();
  StatusOr<std::unique_ptr<Ensemble>> ensemble =
      Ensemble::Create(Models(spec, 2));
  ASSERT_TRUE(ensemble.ok());
  EXPECT_FALSE((*ensemble)->stacked());
}

TEST(Ensemble, RefusesMixedSpecs) {
  ModelSpec a;
  ModelSpec b;
  b.hidden = {64};
  std::vector<std::shared_ptr<const Model>> models = Models(a, 1);
  models.push_back(Models(b, 1).front());
  EXPECT_EQ(Ensemble::Create(models).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Ensemble::Create({}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eraser::unlearning
