// Constituent models behind a Torch-free interface. The LibTorch
// implementation lives in this module's src/; nothing here names Torch.
#ifndef ERASER_UNLEARNING_MODEL_H_
#define ERASER_UNLEARNING_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/statusor.h"

namespace eraser::unlearning {

enum class Architecture {
  // input -> classes: multinomial logistic regression.
  kLinear,
  // input -> hidden[0] (ReLU) -> ... -> hidden[n-1] (ReLU) -> classes.
  kMlp,
  // conv 5x5 (8) -> ReLU -> max-pool 2 -> conv 5x5 (16) -> ReLU ->
  // max-pool 2 -> linear -> classes. Needs a {rows, cols} input, both >= 12.
  kCnn,
  // A TorchScript module saved from PyTorch (torch.jit.script(m).save()),
  // whose forward maps a float tensor [N, ...input_shape] to logits
  // [N, classes]. Training starts every shard from the file's weights.
  kTorchScript,
};

// "linear", "mlp", "cnn", "torchscript".
const char* ArchitectureName(Architecture arch);

StatusOr<Architecture> ParseArchitecture(const std::string& name);

// The shape of a constituent model.
struct ModelSpec {
  Architecture arch = Architecture::kMlp;
  // The shape of one input sample: {28, 28} for an image, {d} for a table.
  std::vector<uint32_t> input_shape = {28, 28};
  uint32_t classes = 10;  // output labels
  // Hidden layer widths: one or more for kMlp, none for the others.
  std::vector<uint32_t> hidden = {128};
  // kTorchScript only: the module file's bytes (shared, immutable), a
  // fingerprint of them, and the file's name for messages.
  std::shared_ptr<const std::string> script;
  uint64_t script_fingerprint = 0;
  std::string script_name;

  // Values per input: the product of input_shape.
  std::size_t input_size() const;
  // kInvalidArgument naming the field when a value is out of range.
  Status Validate() const;
  // "mlp-784-128-10", "mlp-30-64x32-2", "linear-30-2", "cnn-28x28-10",
  // "torchscript-<fingerprint>-28x28-10". Equal specs give equal strings.
  std::string ToString() const;
};

// Whether shards of this model train at the same time. True for the
// built-in architectures and for TorchScript modules whose only random
// operation is dropout (eraser gives each training stage its own
// generator). False for a module with another random operation: it draws
// from Torch's one global generator, which exact retraining reseeds per
// stage, so its stages run one at a time (script_model.cc) and a second
// retraining, or a core borrowed from inference, would only wait. Loads a
// TorchScript module to tell.
bool TrainsInParallel(const ModelSpec& spec);

// Parses a --model flag: "linear", "mlp", "cnn" or "torchscript:PATH"
// (reads the file: kNotFound if it cannot be read). `hidden` applies to
// "mlp" only; input shape and classes are left for the dataset to set.
StatusOr<ModelSpec> ModelSpecFromFlags(std::string_view model,
                                       const std::vector<uint32_t>& hidden);

// Reads a TorchScript file into spec->script (and its fingerprint and
// name). kNotFound if it cannot be read.
Status LoadScriptFile(const std::string& path, ModelSpec* spec);

// Builds the model `spec` describes once and runs it on a batch of zeros:
// for a TorchScript module, checks that the file is one, that it has
// parameters to train, that its output is [N, classes] for inputs of
// input_shape, and that eraser can serve and retrain it exactly: its eval
// forward gives the same output twice for one input and changes no buffer,
// and two short trainings from the same weights, data and seed give the
// same bytes. kInvalidArgument naming the file and the cause.
Status CheckModelSpec(const ModelSpec& spec);

// What a module that passes CheckModelSpec still does otherwise than its
// author most likely meant, one message each, for `train` to print: a
// forward that computes the same in training as in eval mode though the
// module holds Dropout or BatchNorm layers (what torch.jit.trace in eval
// mode saves). Empty for the built-in architectures.
std::vector<std::string> ModelSpecWarnings(const ModelSpec& spec);

// One trained constituent model. Immutable: Predict may be called from any
// number of threads at once.
class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelSpec& spec() const = 0;

  // Evaluates n inputs, each spec().input_size() floats (the dataset's
  // encoded features, such as pixel / 255), stored one after another.
  // Writes n votes and, when `probs` is not null, n * classes softmax
  // probabilities. kInternal if the computation fails.
  //
  // A vote is the argmax label (ties to the smallest) of the model's logits
  // on the input evaluated alone. Batched BLAS kernels change logits in the
  // last bits with the batch shape, so a row whose top two logits are closer
  // than 1e-3 is re-evaluated alone: votes do not depend on the batch.
  // Probabilities may differ in the last bits between batches.
  virtual Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                         float* probs) const = 0;

  // The parameters (and, for TorchScript modules, the buffers such as batch
  // norm statistics) as a portable blob: what checkpoints store. Two models
  // with bit-identical state have identical blobs.
  virtual std::string Serialize() const = 0;
};

// A model rebuilt from a Serialize() blob. kDataLoss if the blob is corrupt
// or does not match `spec`.
StatusOr<std::shared_ptr<const Model>> LoadModel(const ModelSpec& spec,
                                                 const std::string& blob);

// "256,128" -> {256, 128}; kInvalidArgument for anything else.
StatusOr<std::vector<uint32_t>> ParseHidden(std::string_view text);

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_MODEL_H_
