#include "testing/small_disk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

namespace eraser::testing {

bool SmallDiskRequired() {
  return std::getenv("ERASER_REQUIRE_SMALL_DISK") != nullptr;
}

void MountOrSkip(std::size_t bytes, std::unique_ptr<SmallDisk>* disk) {
  std::string why;
  *disk = SmallDisk::Mount(bytes, &why);
  if (*disk != nullptr) return;
  if (SmallDiskRequired()) FAIL() << why;
  GTEST_SKIP() << why;
}

std::unique_ptr<SmallDisk> SmallDisk::Mount(std::size_t bytes,
                                            std::string* why) {
  auto dir = std::make_unique<TempDir>();
  const std::string point = dir->Child("disk");
  std::filesystem::create_directory(point);
  const std::string options = "size=" + std::to_string(bytes);
  if (mount("eraser-test", point.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
            options.c_str()) != 0) {
    *why = std::string("mount tmpfs: ") + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<SmallDisk>(new SmallDisk(std::move(dir), point));
}

SmallDisk::SmallDisk(std::unique_ptr<TempDir> dir, std::string mount)
    : dir_(std::move(dir)), mount_(std::move(mount)) {}

SmallDisk::~SmallDisk() {
  // Lazily: a file still open (a failed test's store) must not keep the
  // mount alive.
  umount2(mount_.c_str(), MNT_DETACH);
}

std::size_t SmallDisk::Fill() {
  const std::string filler = mount_ + "/filler";
  const int fd = open(filler.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) return 0;
  std::vector<char> block(64 << 10, 'f');
  std::size_t written = 0;
  // Large blocks, then single bytes for what is left.
  for (std::size_t size = block.size(); size > 0; size /= 2) {
    while (true) {
      const ssize_t n = write(fd, block.data(), size);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
  }
  close(fd);
  return written;
}

void SmallDisk::Free() {
  std::error_code ec;
  std::filesystem::remove(mount_ + "/filler", ec);
}

}  // namespace eraser::testing
