// The rules for answers that cannot be certified (docs/engine.md, "Prefix
// answers"), compared on a trained data directory. For each number A of
// affected shards and each number P of pending deletions per affected
// shard, over random affected sets (the same draws for every rule), each
// affected shard's earliest pending slice is the lowest of P uniform
// slices (a deletion of a uniformly drawn training sample lands in any
// slice alike), and its clean prefix is the checkpoint of the stage before
// (none in slice 0). Per rule, the hard-vote test accuracy of the answers
// given and the fraction answered at once:
//   partial   the unaffected shards' plurality (no answer when A = K)
//   prefix    `prefix` as shipped: partial, its ties broken by the clean
//             prefixes (certify::TieBreakVote), the prefixes alone when
//             A = K
//   pooled    the rule `prefix` had before 2026-12-06: partial while A <=
//             K/2; beyond, the unaffected shards and the clean prefixes
//             vote alike
//   soft_partial  the rule `soft`: the argmax of the unaffected shards'
//             summed softmax probabilities (no answer when A = K)
// and how often the unaffected shards tie. Prints one JSON object.
//
//   prefix_study --data-dir DIR [--subsets S] [--seed X]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "eraser/certify/certificate.h"
#include "eraser/certify/vote.h"
#include "eraser/common/random.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/runtime.h"
#include "eraser/unlearning/sisa.h"

namespace eraser {
namespace {

template <typename T>
T OrDie(StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "prefix_study: %s: %s\n", what,
                 v.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(v).value();
}

// Votes of one model on the whole test split, in batches of 64, and, when
// `probs` is not null, its softmax probabilities (n x classes).
std::vector<int32_t> Votes(const unlearning::Model& model,
                           const std::vector<float>& x, std::size_t n,
                           std::size_t d, std::vector<float>* probs = nullptr) {
  std::vector<int32_t> out(n);
  if (probs != nullptr) probs->resize(n * model.spec().classes);
  for (std::size_t b = 0; b < n; b += 64) {
    const std::size_t m = std::min<std::size_t>(64, n - b);
    float* p = probs == nullptr ? nullptr : &(*probs)[b * model.spec().classes];
    if (!model.Predict(&x[b * d], m, &out[b], p).ok()) {
      std::fprintf(stderr, "prefix_study: prediction failed\n");
      std::exit(1);
    }
  }
  return out;
}

struct Tally {
  uint64_t answered = 0;
  uint64_t correct = 0;
  void Add(std::optional<int> label, int truth) {
    if (!label) return;
    ++answered;
    correct += *label == truth;
  }
  nlohmann::json ToJson(uint64_t total) const {
    return {{"accuracy", answered ? static_cast<double>(correct) /
                                        static_cast<double>(answered)
                                  : 0.0},
            {"answered",
             static_cast<double>(answered) / static_cast<double>(total)}};
  }
};

int Main(int argc, char** argv) {
  std::string data_dir;
  int subsets = 4;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--data-dir") {
      data_dir = argv[i + 1];
    } else if (flag == "--subsets") {
      subsets = std::atoi(argv[i + 1]);
    } else if (flag == "--seed") {
      seed = std::strtoull(argv[i + 1], nullptr, 10);
    }
  }
  if (data_dir.empty() || subsets < 1) {
    std::fprintf(stderr,
                 "usage: prefix_study --data-dir DIR [--subsets S] "
                 "[--seed X]\n");
    return 2;
  }
  unlearning::InitComputeRuntime();
  auto store = OrDie(storage::Store::Open({data_dir, false}), "open");
  auto sisa = OrDie(unlearning::Sisa::Open(store.get(), 1), "sisa");
  const unlearning::SisaOptions& o = sisa->options();
  unlearning::DatasetInfo info = OrDie(sisa->ReadDatasetInfo(), "dataset");
  info.test = info.test.WithoutErased();
  const std::size_t n = info.test.size();
  const std::size_t d = info.test.feature_count();
  const std::size_t k = o.shards;
  const std::size_t slices = o.slices;
  const int classes = static_cast<int>(o.model.classes);
  const std::vector<float> x = info.test.DecodeRows(0, n);

  // full[s][i]; stage[s][t][i] for t = 0..R-2 (an affected shard's clean
  // prefix is never its last stage, which holds every slice).
  std::vector<std::vector<int32_t>> full(k);
  std::vector<std::vector<float>> full_probs(k);
  std::vector<std::vector<std::vector<int32_t>>> stage(k);
  const std::vector<unlearning::ShardModel> models =
      OrDie(sisa->LoadModels(), "models");
  for (std::size_t s = 0; s < k; ++s) {
    full[s] = Votes(*models[s].model, x, n, d, &full_probs[s]);
    for (std::size_t t = 0; t + 1 < slices; ++t) {
      const unlearning::ShardModel m =
          OrDie(sisa->LoadStage(ShardId(static_cast<uint32_t>(s)),
                                static_cast<uint32_t>(t)),
                "stage");
      stage[s].push_back(Votes(*m.model, x, n, d));
    }
  }

  Rng rng(DeriveSeed(seed, {25}));
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::size_t> order(k);
  std::vector<int32_t> votes(k), breakers(k), pooled(k);
  std::vector<uint8_t> affected(k), left_out(k), counted(k);
  for (int pending : {1, 2, 4}) {
    for (std::size_t a = 1; a <= k; ++a) {
      Tally partial, prefix, pool, soft;
      // Row i's probabilities, shard k's at row[k * classes].
      std::vector<float> row(k * classes);
      uint64_t ties = 0, total = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const int truth = static_cast<int>(info.test.labels[i]);
        for (std::size_t s = 0; s < k; ++s) {
          std::copy_n(&full_probs[s][i * classes], classes, &row[s * classes]);
        }
        for (int t = 0; t < subsets; ++t) {
          std::iota(order.begin(), order.end(), 0);
          rng.Shuffle(order.begin(), order.end());
          std::fill(affected.begin(), affected.end(), 0);
          for (std::size_t j = 0; j < a; ++j) affected[order[j]] = 1;
          for (std::size_t s = 0; s < k; ++s) {
            votes[s] = full[s][i];
            breakers[s] = -1;
            pooled[s] = votes[s];
            left_out[s] = affected[s];
            if (!affected[s]) continue;
            std::size_t first = slices;
            for (int p = 0; p < pending; ++p) {
              first = std::min<std::size_t>(first, rng.Uniform(slices));
            }
            if (first == 0) continue;  // no clean prefix
            breakers[s] = stage[s][first - 1][i];
            pooled[s] = breakers[s];
            left_out[s] = 0;
          }
          ++total;
          const std::optional<int> p =
              certify::PartialVote(votes.data(), affected.data(), k, classes);
          partial.Add(p, truth);
          const std::optional<int> broken = certify::TieBreakVote(
              votes.data(), affected.data(), breakers.data(), k, classes,
              counted.data());
          prefix.Add(broken ? broken : p, truth);
          soft.Add(
              certify::SoftPartialVote(row.data(), affected.data(), k, classes),
              truth);
          pool.Add(2 * a > k ? certify::PartialVote(pooled.data(),
                                                    left_out.data(), k, classes)
                             : p,
                   truth);
          // A tie among the unaffected shards' leading labels (not
          // counted when none is left).
          if (a < k) {
            ties += certify::UnaffectedShardsTie(votes.data(), affected.data(),
                                                 k, classes);
          }
        }
      }
      rows.push_back({{"affected", a},
                      {"pending_per_shard", pending},
                      {"unaffected_tie",
                       static_cast<double>(ties) / static_cast<double>(total)},
                      {"partial", partial.ToJson(total)},
                      {"prefix", prefix.ToJson(total)},
                      {"pooled", pool.ToJson(total)},
                      {"soft_partial", soft.ToJson(total)}});
    }
  }
  std::vector<int32_t> column(k);
  uint64_t correct = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t s = 0; s < k; ++s) column[s] = full[s][i];
    correct += certify::PluralityVote(column.data(), k, classes) ==
               static_cast<int>(info.test.labels[i]);
  }
  const nlohmann::json out = {
      {"shards", k},
      {"slices", slices},
      {"test_rows", n},
      {"subsets", subsets},
      {"seed", seed},
      {"ensemble_accuracy",
       static_cast<double>(correct) / static_cast<double>(n)},
      {"rules", rows}};
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}

}  // namespace
}  // namespace eraser

int main(int argc, char** argv) { return eraser::Main(argc, argv); }
