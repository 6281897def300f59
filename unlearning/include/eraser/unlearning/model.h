// Constituent models behind a Torch-free interface. The LibTorch
// implementation lives in this module's src/; nothing here names Torch.
#ifndef ERASER_UNLEARNING_MODEL_H_
#define ERASER_UNLEARNING_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "eraser/common/statusor.h"

namespace eraser::unlearning {

enum class Architecture {
  // input -> hidden (ReLU) -> classes.
  kMlp,
  // conv 5x5 (8) -> ReLU -> max-pool 2 -> conv 5x5 (16) -> ReLU ->
  // max-pool 2 -> linear -> classes. Needs rows, cols >= 12.
  kCnn,
};

// "mlp" or "cnn".
const char* ArchitectureName(Architecture arch);
StatusOr<Architecture> ParseArchitecture(const std::string& name);

// The shape of a constituent model.
struct ModelSpec {
  Architecture arch = Architecture::kMlp;
  uint32_t rows = 28;     // input image height
  uint32_t cols = 28;     // input image width
  uint32_t classes = 10;  // output labels
  uint32_t hidden = 128;  // MLP hidden units (ignored by the CNN)

  std::size_t input_size() const {
    return static_cast<std::size_t>(rows) * cols;
  }
  // kInvalidArgument naming the field when a value is out of range.
  Status Validate() const;
  // "mlp-784-128-10" or "cnn-28x28-10".
  std::string ToString() const;
};

// One trained constituent model. Immutable: Predict may be called from any
// number of threads at once.
class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelSpec& spec() const = 0;

  // Evaluates n inputs, each spec().input_size() floats (pixel / 255, so in
  // [0, 1]), stored one after another. Writes n votes and, when `probs` is
  // not null, n * classes softmax probabilities. kInternal if the
  // computation fails.
  //
  // A vote is the argmax label (ties to the smallest) of the model's logits
  // on the input evaluated alone. Batched BLAS kernels change logits in the
  // last bits with the batch shape, so a row whose top two logits are closer
  // than 1e-3 is re-evaluated alone: votes do not depend on the batch.
  // Probabilities may differ in the last bits between batches.
  virtual Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                         float* probs) const = 0;

  // The parameters as a portable blob (what checkpoints store). Two models
  // with bit-identical parameters have identical blobs.
  virtual std::string Serialize() const = 0;
};

// A model rebuilt from a Serialize() blob. kDataLoss if the blob is corrupt
// or does not match `spec`.
StatusOr<std::shared_ptr<const Model>> LoadModel(const ModelSpec& spec,
                                                 const std::string& blob);

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_MODEL_H_
