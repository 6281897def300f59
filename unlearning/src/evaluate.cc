#include "eraser/unlearning/evaluate.h"

#include <algorithm>

#include "eraser/certify/vote.h"

namespace eraser::unlearning {

StatusOr<EnsembleEvaluation> EvaluateEnsemble(
    const std::vector<ShardModel>& models, const float* inputs,
    const uint32_t* labels, std::size_t n, std::size_t batch) {
  if (models.empty() || n == 0 || batch == 0) {
    return InvalidArgumentError("nothing to evaluate");
  }
  const std::size_t k = models.size();
  const std::size_t dim = models[0].model->spec().input_size();
  const int classes = static_cast<int>(models[0].model->spec().classes);
  std::vector<std::size_t> shard_correct(k, 0);
  std::size_t hard_correct = 0;
  std::size_t soft_correct = 0;
  std::vector<std::size_t> per_label(classes, 0);
  std::vector<int32_t> votes(k * batch);
  std::vector<float> probs(k * batch * classes);
  std::vector<int32_t> request_votes(k);
  std::vector<float> request_probs(k * classes);
  for (std::size_t begin = 0; begin < n; begin += batch) {
    const std::size_t m = std::min(batch, n - begin);
    for (std::size_t s = 0; s < k; ++s) {
      RETURN_IF_ERROR(models[s].model->Predict(inputs + begin * dim, m,
                                               &votes[s * batch],
                                               &probs[s * batch * classes]));
    }
    for (std::size_t i = 0; i < m; ++i) {
      const int label = static_cast<int>(labels[begin + i]);
      for (std::size_t s = 0; s < k; ++s) {
        request_votes[s] = votes[s * batch + i];
        if (request_votes[s] == label) ++shard_correct[s];
        std::copy_n(&probs[(s * batch + i) * classes], classes,
                    &request_probs[s * classes]);
      }
      if (certify::PluralityVote(request_votes.data(), k, classes) == label) {
        ++hard_correct;
      }
      if (label >= 0 && label < classes) ++per_label[label];
      if (certify::SoftVote(request_probs.data(), k, classes) == label) {
        ++soft_correct;
      }
    }
  }
  EnsembleEvaluation e;
  e.samples = n;
  for (std::size_t c : shard_correct) {
    e.shard_accuracy.push_back(static_cast<double>(c) / n);
  }
  e.hard_vote_accuracy = static_cast<double>(hard_correct) / n;
  e.majority_share = static_cast<double>(*std::max_element(per_label.begin(),
                                                           per_label.end())) /
                     n;
  e.soft_vote_accuracy = static_cast<double>(soft_correct) / n;
  return e;
}

StatusOr<EnsembleEvaluation> EvaluateOnSplit(
    const std::vector<ShardModel>& models, const datasets::Split& split) {
  const std::vector<float> inputs = split.DecodeRows(0, split.size());
  return EvaluateEnsemble(models, inputs.data(), split.labels.data(),
                          split.size());
}

}  // namespace eraser::unlearning
