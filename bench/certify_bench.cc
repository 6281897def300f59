// Cost of the certificate per request, for K = 8, 16 and 64 shards and the
// 10 Fashion-MNIST classes. Inputs cycle through a pool of random vote
// vectors and affected sets so that branch prediction cannot learn one case.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "eraser/certify/certificate.h"
#include "eraser/certify/tally.h"

namespace eraser::certify {
namespace {

constexpr int kClasses = 10;
constexpr int kPool = 1024;

struct Pool {
  std::vector<int32_t> votes;
  std::vector<uint8_t> affected;
  std::vector<float> probs;
};

Pool MakePool(int k) {
  std::mt19937 rng(1);
  Pool p;
  p.votes.resize(static_cast<std::size_t>(kPool) * k);
  p.affected.resize(p.votes.size());
  p.probs.resize(p.votes.size() * kClasses);
  for (std::size_t i = 0; i < p.votes.size(); ++i) {
    // Mostly agreeing votes with a few dissenters and ~1 in 8 affected, as
    // in serving.
    p.votes[i] = rng() % 4 == 0 ? static_cast<int32_t>(rng() % kClasses)
                                : static_cast<int32_t>((i / k) % kClasses);
    p.affected[i] = rng() % 8 == 0;
    for (int c = 0; c < kClasses; ++c) {
      p.probs[i * kClasses + c] = c == p.votes[i] ? 0.91f : 0.01f;
    }
  }
  return p;
}

void BM_CertifyHardVote(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const Pool p = MakePool(k);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t off = (i++ % kPool) * k;
    benchmark::DoNotOptimize(
        CertifyHardVote(&p.votes[off], &p.affected[off], k, kClasses));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CertifyHardVote)->Arg(8)->Arg(16)->Arg(64);

void BM_CertifySoftVote(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const Pool p = MakePool(k);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t off = (i++ % kPool) * k;
    benchmark::DoNotOptimize(CertifySoftVote(&p.probs[off * kClasses],
                                             &p.affected[off], k, kClasses));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CertifySoftVote)->Arg(8)->Arg(16)->Arg(64);

void BM_PartialVote(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const Pool p = MakePool(k);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t off = (i++ % kPool) * k;
    benchmark::DoNotOptimize(
        PartialVote(&p.votes[off], &p.affected[off], k, kClasses));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PartialVote)->Arg(8)->Arg(16)->Arg(64);

// Re-certifying a parked request after one swap: Resolve + Certify.
void BM_TallyResolveAndCertify(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const Pool p = MakePool(k);
  VoteTally tally(p.votes.data(), p.affected.data(), k, kClasses);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t shard = i % k;
    tally.MarkAffected(shard);
    tally.Resolve(shard, p.votes[i++ % p.votes.size()]);
    benchmark::DoNotOptimize(tally.Certify());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TallyResolveAndCertify)->Arg(8)->Arg(16)->Arg(64);

}  // namespace
}  // namespace eraser::certify

BENCHMARK_MAIN();
