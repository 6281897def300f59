// Helper for crash_test: runs an engine on DATA_DIR under load (a thread of
// inferences) and requests deletions of random samples, printing "<seq>" on
// stdout as soon as each is acknowledged. The parent SIGKILLs it.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "eraser/engine/engine.h"

int main(int argc, char** argv) {
  using namespace eraser;
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DATA_DIR SEED SAMPLES\n", argv[0]);
    return 2;
  }
  engine::EngineOptions options;
  options.data_dir = argv[1];
  // Keep retrainings (and applies) in flight.
  options.policy = *scheduler::ParsePolicy("immediate");
  StatusOr<std::unique_ptr<engine::Engine>> e = engine::Engine::Open(options);
  if (!e.ok()) {
    std::fprintf(stderr, "%s\n", e.status().ToString().c_str());
    return 1;
  }
  std::mt19937 rng(static_cast<unsigned>(std::atoi(argv[2])));
  const unsigned samples = static_cast<unsigned>(std::atoi(argv[3]));
  std::thread load([&] {
    std::vector<float> input((*e)->feature_size(), 0.5f);
    while (true) {
      (*e)->InferAsync(input, [](StatusOr<engine::Prediction>) {})
          .IgnoreError();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  while (true) {
    StatusOr<DeletionSeq> seq = (*e)->RequestDeletion(
        storage::DeletionTarget::Sample(SampleId(rng() % samples)));
    if (seq.ok()) {
      std::printf("%llu\n", static_cast<unsigned long long>(seq->value()));
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
  }
}
