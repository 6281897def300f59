// DESIGN guarantee 5: once applied, a deleted sample's feature bytes, and the
// bytes of checkpoints replaced by the same apply, no longer occur in any
// file of the data directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "eraser/storage/store.h"
#include "testing/temp_dir.h"

namespace eraser::storage {
namespace {

// The concatenated contents of every regular file under `dir`.
std::string AllFileBytes(const std::string& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      all += testing::ReadFileOrDie(entry.path().string());
    }
  }
  return all;
}

std::string RandomBytes(std::mt19937_64& rng, std::size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

TEST(Erasure, AppliedSamplesAndOldCheckpointsLeaveTheDisk) {
  testing::TempDir dir;
  std::mt19937_64 rng(7);
  constexpr int kSamples = 300;
  std::vector<std::string> features;
  std::vector<SampleView> views;
  for (int i = 0; i < kSamples; ++i) {
    features.push_back(RandomBytes(rng, 784));
  }
  for (int i = 0; i < kSamples; ++i) {
    SampleView v;
    v.id = SampleId(static_cast<uint64_t>(i));
    v.shard = ShardId(static_cast<uint32_t>(i % 3));
    v.slice = static_cast<uint32_t>(i % 4);
    v.owner = OwnerId(static_cast<uint64_t>(i));
    v.label = static_cast<uint32_t>(i % 10);
    v.features = reinterpret_cast<const uint8_t*>(features[i].data());
    v.feature_size = features[i].size();
    views.push_back(v);
  }
  const std::string old_blob = RandomBytes(rng, 4096);
  const std::string new_blob = RandomBytes(rng, 4096);
  std::vector<SampleId> erased;
  for (int i = 0; i < kSamples; i += 15) erased.emplace_back(i);  // 3 shards

  {
    StatusOr<std::unique_ptr<Store>> store = Store::Open({dir.path()});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->IngestSamples(views).ok());
    ASSERT_TRUE((*store)->PutCheckpoint({ShardId(0), 2, 1, 1, old_blob}).ok());
    ASSERT_TRUE((*store)->PutCheckpoint({ShardId(1), 2, 1, 1, "keep"}).ok());

    // Before: every sample's bytes are on disk, so the check below can fail.
    const std::string before = AllFileBytes(dir.path());
    for (const std::string& f : features) {
      ASSERT_NE(before.find(f), std::string::npos);
    }
    ASSERT_NE(before.find(old_blob), std::string::npos);

    ApplyBatch batch;
    batch.checkpoints = {{ShardId(0), 2, 2, 2, new_blob}};
    batch.erase = erased;
    ASSERT_TRUE((*store)->Apply(batch).ok());

    const std::string after = AllFileBytes(dir.path());
    for (SampleId id : erased) {
      EXPECT_EQ(after.find(features[id.value()]), std::string::npos)
          << "sample " << id << " still on disk";
    }
    for (int i = 1; i < kSamples; i += 15) {
      EXPECT_NE(after.find(features[i]), std::string::npos)
          << "kept sample " << i << " vanished";
    }
    EXPECT_EQ(after.find(old_blob), std::string::npos);
    EXPECT_NE(after.find(new_blob), std::string::npos);
  }
  // Still true after a clean close.
  const std::string closed = AllFileBytes(dir.path());
  for (SampleId id : erased) {
    EXPECT_EQ(closed.find(features[id.value()]), std::string::npos);
  }
}

}  // namespace
}  // namespace eraser::storage
