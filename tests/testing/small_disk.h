// A size-limited filesystem for full-disk tests: a tmpfs mounted on a fresh
// temporary directory (needs root, as CI and the development machine have;
// a test skips itself where mounting is not allowed, unless
// SmallDiskRequired()), unmounted and removed on destruction. Fill() takes
// every free byte; Free() gives them back.
#ifndef ERASER_TESTS_TESTING_SMALL_DISK_H_
#define ERASER_TESTS_TESTING_SMALL_DISK_H_

#include <cstddef>
#include <memory>
#include <string>

#include "testing/temp_dir.h"

namespace eraser::testing {

// True when ERASER_REQUIRE_SMALL_DISK is set (.ci/run sets it): a full-disk
// test that cannot mount then fails instead of skipping, so that CI cannot
// pass without running it.
bool SmallDiskRequired();

class SmallDisk;

// Mounts a SmallDisk of `bytes` into *disk or, where mounting is refused,
// leaves it null and skips the calling test (fails it where
// SmallDiskRequired()). Call it from the test's body and return when *disk
// is null.
void MountOrSkip(std::size_t bytes, std::unique_ptr<SmallDisk>* disk);

class SmallDisk {
 public:
  // Null (with the reason in *why) when the mount is refused.
  static std::unique_ptr<SmallDisk> Mount(std::size_t bytes, std::string* why);
  ~SmallDisk();
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  // The mount point.
  const std::string& path() const { return mount_; }
  // Writes a filler file until the filesystem is full; returns its size.
  std::size_t Fill();
  // Removes the filler.
  void Free();

 private:
  SmallDisk(std::unique_ptr<TempDir> dir, std::string mount);
  std::unique_ptr<TempDir> dir_;
  std::string mount_;
};

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_SMALL_DISK_H_
