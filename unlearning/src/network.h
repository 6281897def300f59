// Internal, Torch-free interface to the LibTorch code in network.cc, the
// only translation unit of the module that includes Torch.
#ifndef ERASER_UNLEARNING_SRC_NETWORK_H_
#define ERASER_UNLEARNING_SRC_NETWORK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eraser/unlearning/ensemble.h"
#include "eraser/unlearning/model.h"

namespace eraser::unlearning::internal {

// Training samples of one shard: features already scaled to [0, 1].
struct TrainingData {
  std::size_t dim = 0;
  const float* features = nullptr;  // n * dim
  const int64_t* labels = nullptr;  // n
};

struct SgdOptions {
  uint32_t batch_size = 64;
  double learning_rate = 0.05;
  double momentum = 0.9;
};

// A model that can still be trained. Not thread-safe while training; once
// training is over it is published as an immutable Model.
class TrainableModel : public Model {
 public:
  // A fresh model whose initial weights are drawn from `init_seed` with the
  // same bounds as PyTorch's defaults (uniform in +-1/sqrt(fan_in)).
  static StatusOr<std::unique_ptr<TrainableModel>> Create(const ModelSpec& spec,
                                                          uint64_t init_seed);
  // A model rebuilt from a Serialize() blob.
  static StatusOr<std::unique_ptr<TrainableModel>> Deserialize(
      const ModelSpec& spec, const std::string& blob);

  // Runs `epochs` epochs of SGD with momentum (a fresh optimizer: no state
  // carries over between calls) over data rows [0, rows). Each epoch visits
  // the rows in an order shuffled by a seed derived from (order_seed, epoch),
  // in mini-batches of sgd.batch_size; the last batch may be smaller.
  virtual Status Train(const TrainingData& data, std::size_t rows,
                       uint32_t epochs, const SgdOptions& sgd,
                       uint64_t order_seed) = 0;
};

// Every model on the same n inputs, one after another, into the Ensemble
// layout (votes[k * n + i]; probs likewise, when not null).
Status PredictEach(const std::vector<std::shared_ptr<const Model>>& models,
                   const float* inputs, std::size_t n, int32_t* votes,
                   float* probs);

// The stacked evaluation of MLPs built by TrainableModel::Create or
// Deserialize; kUnavailable for models of another implementation.
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
