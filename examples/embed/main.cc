// A minimal program that embeds the eraser engine as a library: open a data
// directory (training a small ensemble into it on first use, from any
// dataset spec), answer inferences, request a deletion, drain, and read the
// deletion's state.
//
//   embed_example DATA_DIR [DATASET]     (DATASET: fashion-mnist, csv:PATH,
//                                         npy:X.npy,y.npy[,owners.npy])
#include <cstdio>

#include "eraser/datasets/spec.h"
#include "eraser/engine/engine.h"

namespace {

using eraser::StatusOr;
namespace datasets = eraser::datasets;
namespace engine = eraser::engine;

int Fail(const char* what, const eraser::Status& status) {
  std::fprintf(stderr, "embed_example: %s: %s\n", what,
               status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s DATA_DIR [DATASET]\n", argv[0]);
    return 2;
  }
  StatusOr<datasets::DatasetSpec> spec =
      datasets::ParseDatasetSpec(argc == 3 ? argv[2] : "fashion-mnist");
  if (!spec.ok()) return Fail("dataset", spec.status());
  StatusOr<datasets::Dataset> data = datasets::LoadDataset(*spec, {});
  if (!data.ok()) return Fail("dataset", data.status());

  // What to train if the directory holds no ensemble yet: small, to keep
  // the example fast (eraser train builds the full-size default).
  eraser::unlearning::SisaOptions sisa;
  sisa.shards = 4;
  sisa.slices = 2;
  sisa.model.hidden = {32};
  sisa.epochs = {1, 2};

  engine::EngineOptions options;
  options.data_dir = argv[1];
  options.policy = *eraser::scheduler::ParsePolicy("eraser-lazy-wait");
  options.train_data = &*data;
  options.sisa = sisa;
  StatusOr<std::unique_ptr<engine::Engine>> opened =
      engine::Engine::Open(options);
  if (!opened.ok()) return Fail("open", opened.status());
  engine::Engine& e = **opened;
  std::printf("engine: %zu shards, policy %s\n", e.num_shards(),
              e.policy().c_str());

  // The directory keeps its own test split, class names and encoding. A
  // row whose owner was deleted is erased (kNotFound from TestSample).
  const datasets::Split& test = e.dataset().test;
  const std::vector<std::string>& names = e.dataset().class_names;
  std::vector<float> first;
  for (size_t i = 0; i < test.size() && first.empty(); ++i) {
    StatusOr<std::vector<float>> row = e.TestSample(i);
    if (row.ok()) first = *row;
  }
  if (first.empty()) {
    return Fail("test split",
                eraser::NotFoundError("every test row was erased"));
  }
  for (size_t i = 0; i < 3; ++i) {
    StatusOr<std::vector<float>> row = e.TestSample(i);
    if (!row.ok()) {
      std::printf("test sample %zu: %s\n", i, row.status().ToString().c_str());
      continue;
    }
    StatusOr<engine::Prediction> p = e.Infer(std::move(row).value()).get();
    if (!p.ok()) return Fail("infer", p.status());
    std::printf("test sample %zu: label %d %s (true %u), %s\n", i, p->label,
                names.empty() ? "" : names[p->label].c_str(), test.labels[i],
                eraser::certify::DecisionName(p->decision));
  }

  // An owner asks to be forgotten. The call returns once it is durable.
  const uint64_t owner = e.dataset().owners.at(e.dataset().owners.size() / 2);
  StatusOr<eraser::DeletionSeq> seq = e.RequestDeletion(
      eraser::storage::DeletionTarget::Owner(eraser::OwnerId(owner)));
  if (!seq.ok()) return Fail("delete", seq.status());
  StatusOr<engine::Prediction> p = e.Infer(first).get();
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
