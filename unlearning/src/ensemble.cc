#include "eraser/unlearning/ensemble.h"

#include "network.h"

namespace eraser::unlearning {
namespace {

// Model by model, for architectures without a stacked form.
class LoopEnsemble final : public Ensemble {
 public:
  explicit LoopEnsemble(std::vector<std::shared_ptr<const Model>> models)
      : models_(std::move(models)) {}

  std::size_t size() const override { return models_.size(); }
  const ModelSpec& spec() const override { return models_.front()->spec(); }
  bool stacked() const override { return false; }

  Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                 float* probs) const override {
    return internal::PredictEach(models_, inputs, n, votes, probs);
  }

 private:
  const std::vector<std::shared_ptr<const Model>> models_;
};

}  // namespace

namespace internal {

Status PredictEach(const std::vector<std::shared_ptr<const Model>>& models,
                   const float* inputs, std::size_t n, int32_t* votes,
                   float* probs) {
  const std::size_t c = models.front()->spec().classes;
  for (std::size_t k = 0; k < models.size(); ++k) {
    RETURN_IF_ERROR(models[k]->Predict(inputs, n, votes + k * n,
                                       probs ? probs + k * n * c : nullptr));
  }
  return OkStatus();
}

}  // namespace internal

StatusOr<std::unique_ptr<Ensemble>> Ensemble::Create(
    std::vector<std::shared_ptr<const Model>> models) {
  if (models.empty()) return InvalidArgumentError("an ensemble needs models");
  const ModelSpec& spec = models.front()->spec();
  for (const auto& m : models) {
    if (m == nullptr || m->spec().ToString() != spec.ToString()) {
      return InvalidArgumentError("ensemble models must share one spec");
    }
  }
  if (spec.arch == Architecture::kMlp) {
    StatusOr<std::unique_ptr<Ensemble>> stacked =
        internal::NewStackedMlpEnsemble(models);
    if (stacked.ok() || stacked.status().code() != StatusCode::kUnavailable) {
      return stacked;
    }
  }
  return std::unique_ptr<Ensemble>(new LoopEnsemble(std::move(models)));
}

StatusOr<std::shared_ptr<const Model>> InitialModel(const ModelSpec& spec,
                                                    uint64_t seed) {
  ASSIGN_OR_RETURN(std::unique_ptr<internal::TrainableModel> model,
                   internal::TrainableModel::Create(spec, seed));
  return std::shared_ptr<const Model>(std::move(model));
}

}  // namespace eraser::unlearning
