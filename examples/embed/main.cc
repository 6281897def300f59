// A minimal program that embeds the eraser engine as a library: open a data
// directory (training a small ensemble into it on first use), answer
// inferences, request a deletion, drain, and read the deletion's state.
//
//   embed_example DATA_DIR
#include <cstdio>

#include "eraser/engine/engine.h"
#include "eraser/workloads/data_dir.h"
#include "eraser/workloads/fashion_mnist.h"

namespace {

using eraser::StatusOr;
namespace engine = eraser::engine;
namespace workloads = eraser::workloads;

int Fail(const char* what, const eraser::Status& status) {
  std::fprintf(stderr, "embed_example: %s: %s\n", what,
               status.ToString().c_str());
  return 1;
}

std::vector<float> Features(const workloads::ImageDataset& images, size_t i) {
  std::vector<float> f(images.feature_size());
  for (size_t j = 0; j < f.size(); ++j) f[j] = images.image(i)[j] / 255.0f;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  StatusOr<workloads::FashionMnist> data =
      workloads::LoadFashionMnist(workloads::ResolveFashionMnistDir(""));
  if (!data.ok()) return Fail("dataset", data.status());

  // What to train if the directory holds no ensemble yet: small, to keep
  // the example fast (eraser train builds the full-size default).
  eraser::unlearning::SisaOptions sisa;
  sisa.shards = 4;
  sisa.slices = 2;
  sisa.model.hidden = 32;
  sisa.epochs = {1, 2};
  const eraser::unlearning::TrainingSet train{
      data->train.size(), data->train.feature_size(), data->train.pixels.data(),
      data->train.labels.data()};

  engine::EngineOptions options;
  options.data_dir = argv[1];
  options.policy = "eraser-lazy-wait";
  options.train_data = &train;
  options.sisa = workloads::ForFashionMnist(sisa, *data);
  StatusOr<std::unique_ptr<engine::Engine>> opened =
      engine::Engine::Open(options);
  if (!opened.ok()) return Fail("open", opened.status());
  engine::Engine& e = **opened;
  std::printf("engine: %zu shards, policy %s\n", e.num_shards(),
              e.policy().c_str());

  for (size_t i = 0; i < 3; ++i) {
    StatusOr<engine::Prediction> p = e.Infer(Features(data->test, i)).get();
    if (!p.ok()) return Fail("infer", p.status());
    std::printf("test image %zu: label %d (true %d), %s\n", i, p->label,
                data->test.labels[i],
                eraser::certify::DecisionName(p->decision));
  }

  // Owner 42 asks to be forgotten. The call returns once it is durable.
  StatusOr<eraser::DeletionSeq> seq = e.RequestDeletion(
      eraser::storage::DeletionTarget::Owner(eraser::OwnerId(42)));
  if (!seq.ok()) return Fail("delete", seq.status());
  StatusOr<engine::Prediction> p = e.Infer(Features(data->test, 0)).get();
  if (!p.ok()) return Fail("infer", p.status());
  std::printf(
      "deletion %llu acknowledged; next answer %d is %s with %zu "
      "affected shard(s)\n",
      static_cast<unsigned long long>(seq->value()), p->label,
      eraser::certify::DecisionName(p->decision), p->affected.size());

  if (eraser::Status s = e.Drain(); !s.ok()) return Fail("drain", s);
  StatusOr<engine::DeletionInfo> info = e.GetDeletion(*seq);
  if (!info.ok()) return Fail("status", info.status());
  std::printf("after Drain: deletion %llu is %s\n",
              static_cast<unsigned long long>(seq->value()),
              info->state == eraser::storage::DeletionState::kApplied
                  ? "applied"
                  : "pending");
  e.Close();
  return info->state == eraser::storage::DeletionState::kApplied ? 0 : 1;
}
