// Evaluating all K constituent models on the same inputs at once.
#ifndef ERASER_UNLEARNING_ENSEMBLE_H_
#define ERASER_UNLEARNING_ENSEMBLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/unlearning/model.h"

namespace eraser::unlearning {

// An immutable set of models sharing one spec. For MLPs the K first layers
// run as one matrix product (their weights stacked) and the second layers
// as K small products on views of its result, so the whole ensemble costs a
// handful of Torch operations instead of K forward passes. Votes are those
// of Model::Predict (exact: a near tie is decided by the model evaluated
// alone); probabilities agree up to float rounding (tested to 1e-5). Other
// architectures are evaluated model by model. Predict is thread-safe.
class Ensemble {
 public:
  // kInvalidArgument for no models or models of different specs.
  static StatusOr<std::unique_ptr<Ensemble>> Create(
      std::vector<std::shared_ptr<const Model>> models);
  virtual ~Ensemble() = default;

  virtual std::size_t size() const = 0;
  virtual const ModelSpec& spec() const = 0;
  // True if evaluated as one stacked computation.
  virtual bool stacked() const = 0;

  // Evaluates n inputs (spec().input_size() floats each). votes gets K * n
  // values, shard-major: votes[k * n + i] is model k's vote on input i.
  // probs, when not null, gets K * n * classes probabilities in the same
  // order. kInternal if the computation fails.
  virtual Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                         float* probs) const = 0;
};

// The untrained model training starts from for `seed` (what Sisa trains a
// shard's first slice from): for tests and benchmarks.
StatusOr<std::shared_ptr<const Model>> InitialModel(const ModelSpec& spec,
                                                    uint64_t seed);

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_ENSEMBLE_H_
