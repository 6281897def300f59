// Internal, Torch-free interface to the LibTorch code of the module:
// network.cc (the built-in architectures and the stacked ensemble),
// script_model.cc (TorchScript modules) and torch_util.cc (what both
// share). Only those three translation units include Torch.
#ifndef ERASER_UNLEARNING_SRC_NETWORK_H_
#define ERASER_UNLEARNING_SRC_NETWORK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "eraser/unlearning/backbone.h"
#include "eraser/unlearning/ensemble.h"
#include "eraser/unlearning/model.h"

namespace eraser::unlearning::internal {

// Training samples of one shard: features already decoded to floats.
struct TrainingData {
  std::size_t dim = 0;
  const float* features = nullptr;  // n * dim
  const int64_t* labels = nullptr;  // n
};

struct SgdOptions {
  uint32_t batch_size = 64;
  double learning_rate = 0.05;
  double momentum = 0.9;
  // Called before every mini-batch; may block (a retraining yielding its
  // core to inference). It cannot change what is trained; an error it
  // returns stops the training with that error (a preempted retraining).
  std::function<Status()> pause;
};

// A model that can still be trained. Not thread-safe while training; once
// training is over it is published as an immutable Model.
class TrainableModel : public Model {
 public:
  // A fresh model. Built-in architectures draw their initial weights from
  // `init_seed` with the same bounds as PyTorch's defaults (uniform in
  // +-1/sqrt(fan_in)); a TorchScript module starts from the file's weights.
  static StatusOr<std::unique_ptr<TrainableModel>> Create(const ModelSpec& spec,
                                                          uint64_t init_seed);
  // A model rebuilt from a Serialize() blob.
  static StatusOr<std::unique_ptr<TrainableModel>> Deserialize(
      const ModelSpec& spec, const std::string& blob);

  // Runs `epochs` epochs of SGD with momentum (a fresh optimizer, and no
  // gradients carried over: nothing but the model's state passes between
  // calls) over data rows [0, rows). Each epoch visits the rows in an order
  // shuffled by a seed derived from (order_seed, epoch), in mini-batches of
  // sgd.batch_size; the last batch may be smaller. Randomness inside the
  // model (dropout) is seeded with order_seed.
  virtual Status Train(const TrainingData& data, std::size_t rows,
                       uint32_t epochs, const SgdOptions& sgd,
                       uint64_t order_seed) = 0;
};

// The TorchScript implementations behind TrainableModel (script_model.cc).
StatusOr<std::unique_ptr<TrainableModel>> CreateScriptModel(
    const ModelSpec& spec);
StatusOr<std::unique_ptr<TrainableModel>> DeserializeScriptModel(
    const ModelSpec& spec, const std::string& blob);
Status CheckScriptModule(const ModelSpec& spec);
std::vector<std::string> ScriptModuleWarnings(const ModelSpec& spec);
// Whether a module's training stages may run at once (TrainsInParallel).
bool ScriptTrainsInParallel(const ModelSpec& spec);
// A frozen backbone (script_model.cc): the embedding size of a module that
// passes CheckBackbone's rules, and the module of a checked spec.
StatusOr<uint32_t> CheckScriptBackbone(const BackboneSpec& spec);
StatusOr<std::shared_ptr<const Backbone>> LoadScriptBackbone(
    const BackboneSpec& spec);
// Makes TorchScript execution on the calling thread deterministic and free
// of autograd state under InferenceMode: no graph optimisation, profiling
// or fusion. LibTorch keeps this setting per thread (a thread_local in
// graph_executor), so every path that runs a module calls it first, on the
// thread it runs on. Cheap (one thread-local store).
void UnoptimizedScriptsHere();

// Every model on the same n inputs, one after another, into the Ensemble
// layout (votes[k * n + i]; probs likewise, when not null).
Status PredictEach(const std::vector<std::shared_ptr<const Model>>& models,
                   const float* inputs, std::size_t n, int32_t* votes,
                   float* probs);

// The stacked evaluation of one-hidden-layer MLPs built by
// TrainableModel::Create or Deserialize; kUnavailable for other models.
StatusOr<std::unique_ptr<Ensemble>> NewStackedMlpEnsemble(
    const std::vector<std::shared_ptr<const Model>>& models);

// Restricts Torch and the BLAS to one thread in the calling thread; done once
// per thread. Training and inference parallelise across shards and requests
// instead: nested thread pools would oversubscribe the cores.
void UseOneComputeThreadHere();

// Sets LibTorch's process-wide intra-op thread count.
void SetTorchIntraOpThreads(int threads);

}  // namespace eraser::unlearning::internal

#endif  // ERASER_UNLEARNING_SRC_NETWORK_H_
