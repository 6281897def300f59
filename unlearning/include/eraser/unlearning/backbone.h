// Frozen backbones: transfer learning, as the SISA paper did for ImageNet.
//
// A backbone is a TorchScript module, trained elsewhere on data that is not
// subject to deletion, mapping a raw sample [N, ...input_shape] to an
// embedding [N, E]. eraser never trains it. At ingest every training sample
// is embedded once and the embedding is what the store holds as the
// sample's features (erased with it, like any feature); the shards train
// only a head (linear, MLP or a TorchScript head) on the embeddings. A
// request runs the backbone once, then the K heads.
//
// Exactness (DESIGN guarantee 1) then holds for the heads: a retrained head
// is bit-identical to one trained from scratch without the deleted
// embeddings. It holds for the whole model only if the backbone never saw a
// sample whose deletion can be requested (docs/unlearning.md).
#ifndef ERASER_UNLEARNING_BACKBONE_H_
#define ERASER_UNLEARNING_BACKBONE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/unlearning/model.h"

namespace eraser::unlearning {

struct BackboneSpec {
  // The module file's bytes (shared, immutable), a fingerprint of them, and
  // the file's name for messages. No script: no backbone.
  std::shared_ptr<const std::string> script;
  uint64_t fingerprint = 0;
  std::string script_name;
  // One raw sample's shape, and the embedding's length E (set by
  // CheckBackbone, which runs the module).
  std::vector<uint32_t> input_shape;
  uint32_t embedding_size = 0;

  bool present() const { return script != nullptr; }
  // "torchscript-<fingerprint>-28x28-64"; empty without a backbone.
  std::string ToString() const;
};

// Reads a TorchScript file into spec->script (and its fingerprint and
// name); kNotFound if it cannot be read.
Status LoadBackboneFile(const std::string& path, BackboneSpec* spec);

// Runs the module on a batch of 2 samples of `input_shape` in eval mode:
// it must return a float tensor [2, E], the same twice for one input, and
// change no buffer. Sets input_shape and embedding_size. kInvalidArgument
// naming the file and the cause.
Status CheckBackbone(const std::vector<uint32_t>& input_shape,
                     BackboneSpec* spec);

class Backbone {
 public:
  // The module of a checked spec (embedding_size set). kInvalidArgument if
  // it does not load.
  static StatusOr<std::shared_ptr<const Backbone>> Load(
      const BackboneSpec& spec);
  virtual ~Backbone() = default;

  virtual const BackboneSpec& spec() const = 0;
  // Embeds n raw samples (the product of input_shape floats each, one after
  // another) into n * embedding_size floats. Thread-safe. kInternal if the
  // module fails.
  virtual Status Embed(const float* inputs, std::size_t n,
                       float* embeddings) const = 0;
};

// A served constituent model: `head`, trained on embeddings, after
// `backbone`. Its spec is the head's with the backbone's input shape;
// Serialize() is the head's (what checkpoints hold).
std::shared_ptr<const Model> WithBackbone(
    std::shared_ptr<const Backbone> backbone,
    std::shared_ptr<const Model> head);

// The backbone and head of a model made by WithBackbone; nulls otherwise.
struct BackboneParts {
  const Backbone* backbone = nullptr;
  std::shared_ptr<const Model> head;
};
BackboneParts PartsOf(const Model& model);

}  // namespace eraser::unlearning

#endif  // ERASER_UNLEARNING_BACKBONE_H_
