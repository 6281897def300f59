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

// Heads after one shared frozen backbone: the backbone runs once per
// batch, then the heads' ensemble (stacked when the heads are MLPs).
class BackboneEnsemble final : public Ensemble {
 public:
  BackboneEnsemble(std::vector<std::shared_ptr<const Model>> models,
                   const Backbone* backbone, std::unique_ptr<Ensemble> heads)
      : models_(std::move(models)),
        backbone_(backbone),
        heads_(std::move(heads)) {}

  std::size_t size() const override { return models_.size(); }
  const ModelSpec& spec() const override { return models_.front()->spec(); }
  bool stacked() const override { return heads_->stacked(); }

  Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                 float* probs) const override {
    std::vector<float> embeddings(n * backbone_->spec().embedding_size);
    RETURN_IF_ERROR(backbone_->Embed(inputs, n, embeddings.data()));
    return heads_->Predict(embeddings.data(), n, votes, probs);
  }

 private:
  // The served models own the backbone (and their heads).
  const std::vector<std::shared_ptr<const Model>> models_;
  const Backbone* const backbone_;
  const std::unique_ptr<Ensemble> heads_;
};

// Models that all run a head after the same backbone: that backbone, and
// the heads; otherwise a null backbone.
const Backbone* SharedBackbone(
    const std::vector<std::shared_ptr<const Model>>& models,
    std::vector<std::shared_ptr<const Model>>* heads) {
  const Backbone* shared = nullptr;
  for (const auto& m : models) {
    BackboneParts parts = PartsOf(*m);
    if (parts.backbone == nullptr ||
        (shared != nullptr && parts.backbone != shared)) {
      return nullptr;
    }
    shared = parts.backbone;
    heads->push_back(std::move(parts.head));
  }
  return shared;
}

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
  std::vector<std::shared_ptr<const Model>> heads;
  if (const Backbone* backbone = SharedBackbone(models, &heads)) {
    ASSIGN_OR_RETURN(std::unique_ptr<Ensemble> inner,
                     Ensemble::Create(std::move(heads)));
    return std::unique_ptr<Ensemble>(
        new BackboneEnsemble(std::move(models), backbone, std::move(inner)));
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
