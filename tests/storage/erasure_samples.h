// The samples of the crash-mid-erasure test, generated alike by the test
// and by its child process: 120 samples of 784 random bytes in 3 shards.
#ifndef ERASER_TESTS_STORAGE_ERASURE_SAMPLES_H_
#define ERASER_TESTS_STORAGE_ERASURE_SAMPLES_H_

#include <random>
#include <string>
#include <vector>

#include "eraser/storage/store.h"

namespace eraser::storage::erasure_fixture {

inline constexpr int kErasureSamples = 120;

inline std::vector<std::string> ErasureFeatures() {
  std::mt19937_64 rng(11);
  std::vector<std::string> features;
  for (int i = 0; i < kErasureSamples; ++i) {
    std::string f(784, '\0');
    for (char& c : f) c = static_cast<char>(rng() & 0xff);
    features.push_back(std::move(f));
  }
  return features;
}

// Views of `features` (which must outlive them).
inline std::vector<SampleView> ErasureViews(
    const std::vector<std::string>& features) {
  std::vector<SampleView> views;
  for (int i = 0; i < kErasureSamples; ++i) {
    SampleView v;
    v.id = SampleId(static_cast<uint64_t>(i));
    v.shard = ShardId(static_cast<uint32_t>(i % 3));
    v.slice = static_cast<uint32_t>(i % 2);
    v.owner = OwnerId(static_cast<uint64_t>(i));
    v.label = static_cast<uint32_t>(i % 10);
    v.features = reinterpret_cast<const uint8_t*>(features[i].data());
    v.feature_size = features[i].size();
    views.push_back(v);
  }
  return views;
}

// The samples the child erases: every tenth, in all three shards.
inline std::vector<SampleId> ErasedSamples() {
  std::vector<SampleId> ids;
  for (int i = 0; i < kErasureSamples; i += 10) ids.emplace_back(i);
  return ids;
}

}  // namespace eraser::storage::erasure_fixture

#endif  // ERASER_TESTS_STORAGE_ERASURE_SAMPLES_H_
