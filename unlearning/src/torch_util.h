// What the built-in models (network.cc) and TorchScript modules
// (script_model.cc) share: votes from logits, the checkpoint blob format,
// and the SGD loop. Includes Torch; used by those two files only.
#ifndef ERASER_UNLEARNING_SRC_TORCH_UTIL_H_
#define ERASER_UNLEARNING_SRC_TORCH_UTIL_H_

#include <torch/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "eraser/unlearning/model.h"
#include "network.h"

namespace eraser::unlearning::internal {

// Logits [n, classes] (contiguous, float) of n inputs stored one after
// another. Called under InferenceMode.
using LogitsFn = std::function<torch::Tensor(const float* inputs, int64_t n)>;

// Votes (and softmax probabilities, when `probs` is not null) of n inputs
// from `logits`. A row whose top two logits are closer than the tie margin
// is re-evaluated alone, so that votes do not depend on the batch.
Status PredictFromLogits(const ModelSpec& spec, const LogitsFn& logits,
                         const float* inputs, std::size_t n, int32_t* votes,
                         float* probs);

// The argmax of a row (ties to the smallest); *clear is false when the
// runner-up is within the tie margin.
int32_t Argmax(const float* logits, std::size_t c, bool* clear);
void Softmax(const torch::Tensor& logits, std::size_t n, std::size_t c,
             float* probs);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// The checkpoint blob: a header naming spec.ToString(), then each tensor's
// name, dtype and raw contents, in order.
std::string SerializeTensors(const ModelSpec& spec,
                             const NamedTensors& tensors);
// Copies a blob's tensors into `targets`, which must match it in order,
// name, dtype and size. kDataLoss otherwise.
Status LoadTensors(const ModelSpec& spec, const std::string& blob,
                   const NamedTensors& targets);

// Runs SGD epochs over data rows [0, rows) (see TrainableModel::Train).
// `input_sizes` is the shape of one batch row ({dim} or an image shape);
// `forward` maps a batch [m, input_sizes...] to logits. A last mini-batch
// of a single row is skipped when `skip_single_row_batch` (batch norm
// cannot train on one row).
Status RunSgd(const std::vector<torch::Tensor>& params,
              const std::function<torch::Tensor(const torch::Tensor&)>& forward,
              const TrainingData& data, std::size_t rows, uint32_t epochs,
              const SgdOptions& sgd, uint64_t order_seed,
              const std::vector<int64_t>& input_sizes,
              bool skip_single_row_batch);

}  // namespace eraser::unlearning::internal

#endif  // ERASER_UNLEARNING_SRC_TORCH_UTIL_H_
