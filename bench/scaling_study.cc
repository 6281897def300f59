// One (K, R) point of docs/scaling.md, measured on a trained data
// directory: hard-vote test accuracy; the fraction of test answers that
// certify when a = 1, 2 or 4 random shards are affected; the retraining
// cost of one deletion (sample-epochs and CPU seconds, averaged over
// random training samples, against the exact expectation for the schedule
// and the SISA paper's e * D * (2R + 1) / (3R)); and the inference cost per
// request (the ensemble on batches of 64). Prints one JSON object.
//
//   scaling_study --data-dir DIR [--deletions N] [--subsets S] [--seed X]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>

#include "eraser/certify/certificate.h"
#include "eraser/certify/vote.h"
#include "eraser/common/random.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/ensemble.h"
#include "eraser/unlearning/runtime.h"
#include "eraser/unlearning/sisa.h"

namespace eraser {
namespace {

template <typename T>
T OrDie(StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "scaling_study: %s: %s\n", what,
                 v.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(v).value();
}

struct Args {
  std::string data_dir;
  int deletions = 16;
  int subsets = 8;
  uint64_t seed = 1;
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--data-dir")
      a.data_dir = argv[i + 1];
    else if (flag == "--deletions")
      a.deletions = std::atoi(argv[i + 1]);
    else if (flag == "--subsets")
      a.subsets = std::atoi(argv[i + 1]);
    else if (flag == "--seed")
      a.seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (a.data_dir.empty() || a.deletions < 1 || a.subsets < 1) {
    std::fprintf(stderr,
                 "usage: scaling_study --data-dir DIR [--deletions N] "
                 "[--subsets S] [--seed X]\n");
    std::exit(2);
  }
  return a;
}

// Fraction of test answers certified when `a` random shards are affected,
// averaged over `subsets` random affected sets per answer.
double CertifiedFraction(const std::vector<int32_t>& votes, std::size_t n,
                         std::size_t k, int classes, std::size_t a, int subsets,
                         Rng& rng) {
  if (a > k) return 0;
  std::size_t certified = 0, total = 0;
  std::vector<int32_t> column(k);
  std::vector<uint8_t> affected(k);
  std::vector<std::size_t> order(k);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t s = 0; s < k; ++s) column[s] = votes[s * n + i];
    for (int t = 0; t < subsets; ++t) {
      std::iota(order.begin(), order.end(), 0);
      rng.Shuffle(order.begin(), order.end());
      std::fill(affected.begin(), affected.end(), 0);
      for (std::size_t j = 0; j < a; ++j) affected[order[j]] = 1;
      certified +=
          certify::CertifyHardVote(column.data(), affected.data(), k, classes)
              .certified;
      ++total;
    }
  }
  return static_cast<double>(certified) / static_cast<double>(total);
}

int Main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  unlearning::InitComputeRuntime();
  auto store = OrDie(storage::Store::Open({args.data_dir, false}), "open");
  auto sisa = OrDie(unlearning::Sisa::Open(store.get(), 1), "sisa");
  const unlearning::SisaOptions& o = sisa->options();
  unlearning::DatasetInfo info = OrDie(sisa->ReadDatasetInfo(), "dataset");
  // Not the rows erased by deletions of their owners.
  info.test = info.test.WithoutErased();
  const std::vector<unlearning::ShardModel> models =
      OrDie(sisa->LoadModels(), "models");
  std::vector<std::shared_ptr<const unlearning::Model>> bare;
  for (const auto& m : models) bare.push_back(m.model);
  auto ensemble = OrDie(unlearning::Ensemble::Create(bare), "ensemble");

  // Votes on the whole test split, in batches of 64, timed.
  const std::size_t n = info.test.size();
  const std::size_t k = o.shards;
  const int classes = static_cast<int>(o.model.classes);
  const std::vector<float> x = info.test.DecodeRows(0, n);
  std::vector<int32_t> votes(k * n);
  std::vector<int32_t> batch_votes(k * 64);
  const std::size_t d = info.test.feature_count();
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t b = 0; b < n; b += 64) {
    const std::size_t m = std::min<std::size_t>(64, n - b);
    if (!ensemble->Predict(&x[b * d], m, batch_votes.data(), nullptr).ok()) {
      return 1;
    }
    for (std::size_t s = 0; s < k; ++s) {
      std::copy_n(&batch_votes[s * m], m, &votes[s * n + b]);
    }
  }
  const double infer_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::size_t correct = 0;
  std::vector<int32_t> column(k);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t s = 0; s < k; ++s) column[s] = votes[s * n + i];
    correct += certify::PluralityVote(column.data(), k, classes) ==
               static_cast<int>(info.test.labels[i]);
  }
  Rng rng(DeriveSeed(args.seed, {1}));
  nlohmann::json certified;
  for (std::size_t a : {1, 2, 4}) {
    certified[std::to_string(a)] =
        CertifiedFraction(votes, n, k, classes, a, args.subsets, rng);
  }

  // Deletions of random training samples, each retrained (not applied).
  uint64_t sample_epochs = 0;
  double cpu = 0;
  for (int i = 0; i < args.deletions; ++i) {
    const SampleId id(rng.Uniform(info.train_size));
    const storage::SampleLocation loc =
        OrDie(store->LookupSample(id), "lookup");
    const std::vector<unlearning::RetrainResult> r =
        OrDie(sisa->Retrain({{loc.shard, {id}}}), "retrain");
    cpu += r[0].cost.cpu_seconds;  // the training thread's CPU time
    sample_epochs += r[0].cost.sample_epochs;
  }
  // The exact expectation for this schedule (a deletion in slice r
  // retrains stages r..R-1, slices equal), and the SISA paper's formula
  // with e the full training's passes over the shard.
  const std::vector<uint32_t> epochs = o.EpochSchedule();
  const double shard = static_cast<double>(info.train_size) / k;
  const double R = o.slices;
  double exact = 0, passes = 0;
  for (uint32_t r = 0; r < o.slices; ++r) {
    for (uint32_t j = r; j < o.slices; ++j) {
      exact += epochs[j] * (j + 1) * shard / R / R;
    }
    passes += epochs[r] * (r + 1) / R;
  }
  const double formula = passes * shard * (2 * R + 1) / (3 * R);

  nlohmann::json out = {
      {"shards", o.shards},
      {"slices", o.slices},
      {"epochs", epochs},
      {"hard_vote_accuracy", static_cast<double>(correct) / n},
      {"certified_fraction", certified},
      {"retrain_per_deletion",
       {{"deletions", args.deletions},
        {"sample_epochs", static_cast<double>(sample_epochs) / args.deletions},
        {"cpu_seconds", cpu / args.deletions},
        {"expected_sample_epochs", exact},
        {"sisa_formula_sample_epochs", formula},
        {"full_training_passes", passes}}},
      {"inference_us_per_request", infer_s / n * 1e6}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace eraser

int main(int argc, char** argv) { return eraser::Main(argc, argv); }
