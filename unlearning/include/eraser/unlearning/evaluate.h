// Test-set accuracy of constituent models and of their ensemble votes.
#ifndef ERASER_UNLEARNING_EVALUATE_H_
#define ERASER_UNLEARNING_EVALUATE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/datasets/dataset.h"
#include "eraser/unlearning/sisa.h"

namespace eraser::unlearning {

struct EnsembleEvaluation {
  std::size_t samples = 0;
  std::vector<double> shard_accuracy;  // one per model, in order
  double hard_vote_accuracy = 0;       // plurality, ties to smallest label
  double soft_vote_accuracy = 0;       // argmax of summed probabilities
  // The share of the most frequent label among the samples: what answering
  // that class whatever the input scores. An ensemble no more accurate
  // than that learnt nothing (a training that diverged or collapsed, such
  // as dead ReLUs after a learning rate too high).
  double majority_share = 0;
};

// Evaluates `models` on n inputs (model input_size() floats each) with their
// labels, in batches of `batch` inputs. kInvalidArgument for no models or
// n == 0.
StatusOr<EnsembleEvaluation> EvaluateEnsemble(
    const std::vector<ShardModel>& models, const float* inputs,
    const uint32_t* labels, std::size_t n, std::size_t batch = 1000);

// The same for a split (decoded in batches).
StatusOr<EnsembleEvaluation> EvaluateOnSplit(
    const std::vector<ShardModel>& models, const datasets::Split& split);

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_EVALUATE_H_
