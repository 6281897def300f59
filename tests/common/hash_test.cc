#include "eraser/common/hash.h"

#include <gtest/gtest.h>

#include <set>

namespace eraser {
namespace {

// Fingerprints are persisted in data directories: these values must never
// change from one build to the next.
TEST(Fingerprint, IsStable) {
  EXPECT_EQ(Fingerprint(""), 0xc3817c016ba4ff30ULL);
  EXPECT_EQ(Fingerprint("eraser"), 0xb50606a73c4d7871ULL);
  Fingerprinter u;
  u.UpdateU64(42);
  EXPECT_EQ(u.Finish(), 0xa4e6579fd9ba8f6dULL);
  Fingerprinter f;
  f.Update("era");
  f.Update("ser");
  EXPECT_EQ(f.Finish(), Fingerprint("eraser"));
}

TEST(Fingerprint, SeparatesCloseInputs) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    Fingerprinter f;
    f.UpdateU64(static_cast<uint64_t>(i));
    seen.insert(f.Finish());
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Mix64, KnownValue) {
  // SplitMix64's first output for seed 0.
  EXPECT_EQ(Mix64(0), 0xe220a8397b1dcdafULL);
}

}  // namespace
}  // namespace eraser
