// The engine end to end against the bare loop, in one run, for the default
// MLP ensemble and for ensembles of TorchScript modules (the example model
// of examples/torchscript, and the model zoo's residual CNN of
// tests/zoo/zoo.py, scripted by python3-torch).
//
// Each iteration first times a bare LibTorch loop (every shard model on
// each batch of 64 test images, one thread, plus the stacked ensemble on
// the same batches), then pushes the same number of requests through the
// engine under a closed-loop load (a client thread keeps kWindow requests in
// flight; one inference worker, batches of up to 64, no deletions). The
// counters give requests per second for each and the engine's throughput as
// a fraction of each bare loop's, measured back to back on the same machine.
//
// BM_OneRequestAtATime times one caller that waits for each answer before
// it sends the next: the answer path's fixed cost, and what the batching
// delay adds to it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "eraser/datasets/fashion_mnist.h"
#include "eraser/engine/engine.h"
#include "eraser/storage/store.h"
#include "eraser/unlearning/ensemble.h"
#include "eraser/unlearning/evaluate.h"
#include "eraser/unlearning/runtime.h"

namespace eraser {
namespace {

constexpr std::size_t kBatch = 64;
constexpr std::size_t kRequests = 8192;  // per iteration
constexpr std::size_t kWindow = 512;     // requests in flight

enum class Kind : int64_t { kMlp = 0, kTorchScript = 1, kCnn = 2 };

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kMlp:
      return "mlp";
    case Kind::kTorchScript:
      return "torchscript";
    case Kind::kCnn:
      return "torchscript-cnn";
  }
  return "?";
}

struct Fixture {
  std::string dir;
  std::vector<float> inputs;  // 1,024 test images
  std::vector<std::shared_ptr<const unlearning::Model>> models;
  std::unique_ptr<unlearning::Ensemble> stacked;
};

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / name).string();
}

// A data directory with the default ensemble shape (8 shards x 4 slices of
// MLP 784-128-10, or of the example TorchScript module), trained only
// briefly: throughput does not depend on the weights.
Fixture* Build(Kind kind) {
  unlearning::InitComputeRuntime();
  auto* fixture = new Fixture();
  fixture->dir = TempPath(std::string("eraser-bench-engine-") + KindName(kind));
  std::filesystem::remove_all(fixture->dir);
  const std::string data = datasets::kDefaultFashionMnistDir;
  datasets::Dataset dataset;
  dataset.train =
      std::move(datasets::ReadIdxPair(data + "/t10k-images-idx3-ubyte.gz",
                                      data + "/t10k-labels-idx1-ubyte.gz"))
          .value();
  dataset.classes = datasets::kFashionMnistClasses;
  fixture->inputs = dataset.train.DecodeRows(0, 1024);
  // Train on 640 images, test on the rest.
  dataset.test = dataset.train;
  dataset.train.labels.resize(640);
  dataset.train.features.resize(640 * 784);
  unlearning::SisaOptions options;  // 8 x 4, MLP 784-128-10
  options.epochs = {1, 1, 1, 1};
  if (kind != Kind::kMlp) {
    const std::string dir = TempPath("");
    const std::string module = kind == Kind::kTorchScript
                                   ? TempPath("eraser-bench-model.pt")
                                   : TempPath("residual_groupnorm_silu.pt");
    const std::string command = kind == Kind::kTorchScript
                                    ? "/usr/bin/python3 " ERASER_SOURCE_DIR
                                      "/examples/torchscript/model.py --out " +
                                          module + " > /dev/null"
                                    : "/usr/bin/python3 " ERASER_SOURCE_DIR
                                      "/tests/zoo/zoo.py " +
                                          dir + " residual_groupnorm_silu";
    if (std::system(command.c_str()) != 0) {
      std::fprintf(stderr, "engine_bench: cannot script the model\n");
      std::exit(1);
    }
    const Status loaded = unlearning::LoadScriptFile(module, &options.model);
    std::filesystem::remove(module);
    if (!loaded.ok()) {
      std::fprintf(stderr, "engine_bench: %s\n", loaded.ToString().c_str());
      std::exit(1);
    }
  }
  // value() ends the program with the status if setting up failed.
  auto store = std::move(storage::Store::Open({fixture->dir})).value();
  auto sisa =
      std::move(unlearning::Sisa::Create(
                    store.get(), unlearning::ForDataset(options, dataset)))
          .value();
  (void)sisa->Ingest(dataset).value();
  (void)sisa->TrainAll().value();
  const std::vector<unlearning::ShardModel> models =
      std::move(sisa->LoadModels()).value();
  for (const unlearning::ShardModel& m : models) {
    fixture->models.push_back(m.model);
  }
  fixture->stacked =
      std::move(unlearning::Ensemble::Create(fixture->models)).value();
  return fixture;
}

const Fixture& Get(Kind kind) {
  static Fixture* fixtures[3] = {};
  Fixture*& f = fixtures[static_cast<int>(kind)];
  if (f == nullptr) f = Build(kind);
  return *f;
}

double BareLoopSeconds(const Fixture& f, bool stacked) {
  std::vector<int32_t> votes(f.models.size() * kBatch);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t done = 0; done < kRequests; done += kBatch) {
    const float* x = &f.inputs[(done % 1024) * 784];
    if (stacked) {
      f.stacked->Predict(x, kBatch, votes.data(), nullptr).IgnoreError();
    } else {
      for (std::size_t k = 0; k < f.models.size(); ++k) {
        f.models[k]
            ->Predict(x, kBatch, &votes[k * kBatch], nullptr)
            .IgnoreError();
      }
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// The client keeps up to kWindow requests in flight and refills the window
// when half of it has been answered: answers wake it in bulk, as a real
// client's network stack would, not one futex call per answer on the
// engine's worker thread.
double EngineSeconds(const Fixture& f, engine::Engine& e) {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<std::size_t> in_flight{0};
  std::atomic<std::size_t> answered{0};
  auto done = [&](StatusOr<engine::Prediction>) {
    const std::size_t left = in_flight.fetch_sub(1) - 1;
    const std::size_t total = answered.fetch_add(1) + 1;
    if (left == kWindow / 2 || total == kRequests) {
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_all();
    }
  };
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t sent = 0; sent < kRequests; ++sent) {
    if (in_flight.load() >= kWindow) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight.load() <= kWindow / 2; });
    }
    in_flight.fetch_add(1);
    const float* x = &f.inputs[(sent % 1024) * 784];
    e.InferAsync(std::vector<float>(x, x + 784), done).IgnoreError();
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return answered.load() == kRequests; });
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

void BM_EngineVsBareLoop(benchmark::State& state) {
  const Fixture& f = Get(static_cast<Kind>(state.range(0)));
  state.SetLabel(KindName(static_cast<Kind>(state.range(0))));
  engine::EngineOptions options;
  options.data_dir = f.dir;
  options.policy = *scheduler::ParsePolicy("eraser-lazy-wait");
  options.inference.max_batch_size = kBatch;
  options.inference.max_queue_delay = std::chrono::milliseconds(1);
  options.inference.queue_capacity = 2 * kWindow;
  auto e = std::move(engine::Engine::Open(options)).value();
  double bare = 0;
  double stacked = 0;
  double served = 0;
  // Per iteration, the engine's throughput as a fraction of each bare loop's,
  // measured back to back; the median is robust to another process taking
  // a core for a while on a shared machine.
  std::vector<double> vs_bare;
  std::vector<double> vs_stacked;
  for (auto _ : state) {
    const double b = BareLoopSeconds(f, /*stacked=*/false);
    const double s = BareLoopSeconds(f, /*stacked=*/true);
    const double seconds = EngineSeconds(f, *e);
    bare += b;
    stacked += s;
    served += seconds;
    vs_bare.push_back(b / seconds);
    vs_stacked.push_back(s / seconds);
    state.SetIterationTime(seconds);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  const double n = static_cast<double>(state.iterations() * kRequests);
  state.counters["engine_rps"] = n / served;
  state.counters["bare_loop_rps"] = n / bare;
  state.counters["bare_stacked_rps"] = n / stacked;
  state.counters["vs_bare_loop"] = median(vs_bare);
  state.counters["vs_bare_stacked"] = median(vs_stacked);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kRequests));
}
// Measure with --benchmark_min_time=5 (docs/performance.md); the CTest
// smoke run passes a tiny minimum time.
// Arg 0: the MLP ensemble (stacked); 1: TorchScript modules (model by
// model; "bare_stacked" is then the same loop through unlearning::Ensemble);
// 2: the zoo's residual CNN (GroupNorm, SiLU), model by model.
BENCHMARK(BM_EngineVsBareLoop)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// One request at a time (a client that waits for each answer before it
// sends the next, as a single interactive caller does): the engine's round
// trip against the bare stacked ensemble on the same single row, measured
// back to back. The difference is the answer path's fixed cost per request
// (admission, the queue and the worker's wake-up, the Core's verdict,
// delivery), which a tiny model's answer is mostly made of. Arg: the
// batcher's max_queue_delay in microseconds.
void BM_OneRequestAtATime(benchmark::State& state) {
  constexpr std::size_t kRounds = 2000;
  const Fixture& f = Get(Kind::kMlp);
  engine::EngineOptions options;
  options.data_dir = f.dir;
  options.policy = *scheduler::ParsePolicy("eraser-lazy-wait");
  options.inference.max_batch_size = kBatch;
  options.inference.max_queue_delay = std::chrono::microseconds(state.range(0));
  auto e = std::move(engine::Engine::Open(options)).value();
  std::vector<int32_t> votes(f.models.size());
  std::vector<double> bare_us;
  std::vector<double> engine_us;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kRounds; ++i) {
      const float* x = &f.inputs[(i % 1024) * 784];
      auto start = std::chrono::steady_clock::now();
      f.stacked->Predict(x, 1, votes.data(), nullptr).IgnoreError();
      bare_us.push_back(std::chrono::duration<double, std::micro>(
                            std::chrono::steady_clock::now() - start)
                            .count());
      start = std::chrono::steady_clock::now();
      if (!e->Infer(std::vector<float>(x, x + 784)).get().ok()) {
        state.SkipWithError("the engine refused a request");
        return;
      }
      engine_us.push_back(std::chrono::duration<double, std::micro>(
                              std::chrono::steady_clock::now() - start)
                              .count());
    }
  }
  auto quantile = [](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[static_cast<std::size_t>(q * (v.size() - 1))];
  };
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
  };
  state.counters["bare_mean_us"] = mean(bare_us);
  state.counters["bare_p50_us"] = quantile(bare_us, 0.5);
  state.counters["engine_mean_us"] = mean(engine_us);
  state.counters["engine_p50_us"] = quantile(engine_us, 0.5);
  state.counters["engine_p99_us"] = quantile(engine_us, 0.99);
  state.counters["fixed_p50_us"] =
      quantile(engine_us, 0.5) - quantile(bare_us, 0.5);
}
BENCHMARK(BM_OneRequestAtATime)->Arg(0)->Arg(2000)->Iterations(1);

}  // namespace
}  // namespace eraser

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  for (const char* dir :
       {"eraser-bench-engine-mlp", "eraser-bench-engine-torchscript",
        "eraser-bench-engine-torchscript-cnn"}) {
    std::filesystem::remove_all(std::filesystem::temp_directory_path() / dir,
                                ec);
  }
  return 0;
}
