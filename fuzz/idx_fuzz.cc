// libFuzzer target: the IDX reader of Fashion-MNIST (gzip or plain) on
// arbitrary bytes. The first two bytes (little-endian) give the length of
// the image file that follows; the rest is the label file. Both are handed
// to ReadIdxPair as memory files (memfd), so nothing touches the disk.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "eraser/datasets/fashion_mnist.h"

namespace {

// A memory file holding `bytes`, named by a /proc path; -1 on failure.
int MemoryFile(const uint8_t* bytes, std::size_t size, std::string* path) {
  const int fd = memfd_create("idx", 0);
  if (fd < 0) return -1;
  std::size_t written = 0;
  while (written < size) {
    const ssize_t n = write(fd, bytes + written, size - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  *path = "/proc/self/fd/" + std::to_string(fd);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t image_bytes =
      std::min<std::size_t>(size - 2, data[0] | (data[1] << 8));
  const std::size_t cut = 2 + image_bytes;
  std::string images, labels;
  const int a = MemoryFile(data + 2, image_bytes, &images);
  const int b = MemoryFile(data + cut, size - cut, &labels);
  if (a >= 0 && b >= 0) {
    eraser::datasets::ReadIdxPair(images, labels).status().IgnoreError();
  }
  if (a >= 0) close(a);
  if (b >= 0) close(b);
  return 0;
}
