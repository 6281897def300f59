// The ensemble forward pass: K = 8 default MLPs (784-128-10) evaluated
// model by model (the bare LibTorch loop) versus as one stacked
// computation, at several batch sizes, on Fashion-MNIST test images; and,
// in the same run, the certificate on the votes that pass produces, so the
// cost of certifying a request can be set against the cost of computing it.
#include <benchmark/benchmark.h>

#include "eraser/certify/certificate.h"
#include "eraser/datasets/fashion_mnist.h"
#include "eraser/unlearning/ensemble.h"
#include "eraser/unlearning/evaluate.h"
#include "eraser/unlearning/runtime.h"

namespace eraser::unlearning {
namespace {

constexpr int kShards = 8;

struct Fixture {
  std::vector<std::shared_ptr<const Model>> models;
  std::unique_ptr<Ensemble> stacked;
  std::vector<float> inputs;  // 1,024 test images
};

const Fixture& Get() {
  static const Fixture* f = [] {
    InitComputeRuntime();
    auto* fixture = new Fixture();
    for (int k = 0; k < kShards; ++k) {
      fixture->models.push_back(*InitialModel(ModelSpec(), 100 + k));
    }
    fixture->stacked = std::move(Ensemble::Create(fixture->models)).value();
    const std::string dir = datasets::kDefaultFashionMnistDir;
    StatusOr<datasets::Split> test = datasets::ReadIdxPair(
        dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz");
    fixture->inputs = test->DecodeRows(0, 1024);
    return fixture;
  }();
  return *f;
}

void BM_PerShardLoop(benchmark::State& state) {
  const Fixture& f = Get();
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  std::vector<int32_t> votes(kShards * n);
  std::size_t offset = 0;
  for (auto _ : state) {
    for (int k = 0; k < kShards; ++k) {
      f.models[k]
          ->Predict(&f.inputs[offset * 784], n, &votes[k * n], nullptr)
          .IgnoreError();
    }
    offset = (offset + n) % (1024 - n + 1);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_PerShardLoop)->Arg(1)->Arg(8)->Arg(64)->Arg(256)->UseRealTime();

void BM_Stacked(benchmark::State& state) {
  const Fixture& f = Get();
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  std::vector<int32_t> votes(kShards * n);
  std::size_t offset = 0;
  for (auto _ : state) {
    f.stacked->Predict(&f.inputs[offset * 784], n, votes.data(), nullptr)
        .IgnoreError();
    offset = (offset + n) % (1024 - n + 1);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_Stacked)->Arg(1)->Arg(8)->Arg(64)->Arg(256)->UseRealTime();

// Certifies the real votes of 64 test images (request-major columns of the
// stacked pass) with two of the eight shards affected, as the engine does
// for each request of a batch. items_per_second counts requests.
void BM_CertifyBatchOfVotes(benchmark::State& state) {
  const Fixture& f = Get();
  constexpr std::size_t n = 64;
  std::vector<int32_t> votes(kShards * n);
  f.stacked->Predict(f.inputs.data(), n, votes.data(), nullptr).IgnoreError();
  std::vector<int32_t> columns(kShards * n);
  for (std::size_t i = 0; i < n; ++i) {
    for (int k = 0; k < kShards; ++k)
      columns[i * kShards + k] = votes[k * n + i];
  }
  const uint8_t affected[kShards] = {0, 1, 0, 0, 0, 1, 0, 0};
  const int classes = static_cast<int>(f.models.front()->spec().classes);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      benchmark::DoNotOptimize(certify::CertifyHardVote(
          &columns[i * kShards], affected, kShards, classes));
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_CertifyBatchOfVotes)->UseRealTime();

}  // namespace
}  // namespace eraser::unlearning

BENCHMARK_MAIN();
