// Helper for durability_test: appends deletions of sample:<base + i> to the
// deletion log in DIR and prints "<seq> <sample>" on stdout as soon as each
// append returns, i.e. once the store has acknowledged it as durable. The
// parent kills this process with SIGKILL at a moment of its choosing.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "eraser/storage/store.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DIR BASE COUNT\n", argv[0]);
    return 2;
  }
  using namespace eraser;
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({argv[1]});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  const uint64_t base = std::strtoull(argv[2], nullptr, 10);
  const uint64_t count = std::strtoull(argv[3], nullptr, 10);
  for (uint64_t i = 0; i < count; ++i) {
    const SampleId sample(base + i);
    StatusOr<DeletionSeq> seq = (*store)->AppendDeletion(
        storage::DeletionTarget::Sample(sample),
        {{sample, ShardId(static_cast<uint32_t>(i % 4)), 0, OwnerId(i), false}},
        SystemClock::Default()->Now());
    if (!seq.ok()) {
      std::fprintf(stderr, "%s\n", seq.status().ToString().c_str());
      return 1;
    }
    std::printf("%llu %llu\n", static_cast<unsigned long long>(seq->value()),
                static_cast<unsigned long long>(sample.value()));
    std::fflush(stdout);
  }
  return 0;
}
