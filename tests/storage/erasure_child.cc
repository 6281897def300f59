// Helper for the crash-mid-erasure test: in DIR, ingests the test's
// samples, then applies the erasure of ErasedSamples() and kills itself
// with SIGKILL at the sync point between the apply's commit and its
// compaction. Prints "committed" first, so the parent knows it got there.
#include <signal.h>

#include <cstdio>

#include "eraser/common/sync_point.h"
#include "erasure_samples.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  using namespace eraser;
  StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open({argv[1]});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  const std::vector<std::string> features =
      storage::erasure_fixture::ErasureFeatures();
  Status s =
      (*store)->IngestSamples(storage::erasure_fixture::ErasureViews(features));
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  SyncPoints::Set("RocksStore::Apply:Committed", [] {
    std::printf("committed\n");
    std::fflush(stdout);
    raise(SIGKILL);
  });
  storage::ApplyBatch batch;
  batch.erase = storage::erasure_fixture::ErasedSamples();
  s = (*store)->Apply(batch);
  // Not reached: the sync point killed the process.
  std::fprintf(stderr, "apply returned: %s\n", s.ToString().c_str());
  return 1;
}
