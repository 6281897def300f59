// Frozen backbones: the spec, and the served model that runs a head after
// the backbone. The module itself is in script_model.cc (Torch).
#include "eraser/unlearning/backbone.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eraser/common/hash.h"
#include "eraser/datasets/dataset.h"
#include "network.h"

namespace eraser::unlearning {
namespace {

class BackboneModel final : public Model {
 public:
  BackboneModel(std::shared_ptr<const Backbone> backbone,
                std::shared_ptr<const Model> head)
      : backbone_(std::move(backbone)),
        head_(std::move(head)),
        spec_(head_->spec()) {
    spec_.input_shape = backbone_->spec().input_shape;
  }

  const ModelSpec& spec() const override { return spec_; }

  Status Predict(const float* inputs, std::size_t n, int32_t* votes,
                 float* probs) const override {
    std::vector<float> embeddings(n * backbone_->spec().embedding_size);
    RETURN_IF_ERROR(backbone_->Embed(inputs, n, embeddings.data()));
    return head_->Predict(embeddings.data(), n, votes, probs);
  }

  std::string Serialize() const override { return head_->Serialize(); }

  const Backbone* backbone() const { return backbone_.get(); }
  const std::shared_ptr<const Model>& head() const { return head_; }

 private:
  const std::shared_ptr<const Backbone> backbone_;
  const std::shared_ptr<const Model> head_;
  ModelSpec spec_;
};

}  // namespace

std::string BackboneSpec::ToString() const {
  if (!present()) return "";
  char fp[17];
  std::snprintf(fp, sizeof(fp), "%016" PRIx64, fingerprint);
  return std::string("torchscript-") + fp + "-" +
         datasets::ShapeString(input_shape) + "-" +
         std::to_string(embedding_size);
}

Status LoadBackboneFile(const std::string& path, BackboneSpec* spec) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError("the backbone " + path +
                                " is a directory, not a TorchScript module");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read the backbone " + path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return NotFoundError("cannot read the backbone " + path);
  if (bytes.str().empty()) {
    return InvalidArgumentError("the backbone " + path +
                                " is empty, not a TorchScript module");
  }
  auto script = std::make_shared<const std::string>(bytes.str());
  spec->fingerprint = Fingerprint(*script);
  spec->script = std::move(script);
  spec->script_name = path;
  return OkStatus();
}

Status CheckBackbone(const std::vector<uint32_t>& input_shape,
                     BackboneSpec* spec) {
  if (!spec->present()) {
    return InvalidArgumentError("no backbone module");
  }
  spec->input_shape = input_shape;
  ASSIGN_OR_RETURN(spec->embedding_size, internal::CheckScriptBackbone(*spec));
  return OkStatus();
}

StatusOr<std::shared_ptr<const Backbone>> Backbone::Load(
    const BackboneSpec& spec) {
  if (!spec.present() || spec.embedding_size == 0) {
    return InvalidArgumentError("the backbone was not checked");
  }
  return internal::LoadScriptBackbone(spec);
}

std::shared_ptr<const Model> WithBackbone(
    std::shared_ptr<const Backbone> backbone,
    std::shared_ptr<const Model> head) {
  if (backbone == nullptr || head == nullptr) return head;
  return std::make_shared<BackboneModel>(std::move(backbone), std::move(head));
}

BackboneParts PartsOf(const Model& model) {
  const auto* m = dynamic_cast<const BackboneModel*>(&model);
  if (m == nullptr) return {};
  return {m->backbone(), m->head()};
}

}  // namespace eraser::unlearning
