// Fashion-MNIST reader: the gzip-compressed IDX files shipped by Debian's
// dataset-fashion-mnist package (or any directory holding the same four
// files). Every header field and count is validated; a truncated, corrupt or
// inconsistent file yields an error that names the file, never a partial
// dataset.
#ifndef ERASER_WORKLOADS_FASHION_MNIST_H_
#define ERASER_WORKLOADS_FASHION_MNIST_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/statusor.h"

namespace eraser::workloads {

inline constexpr char kDefaultFashionMnistDir[] =
    "/usr/share/datasets/fashion-mnist";
// Environment variable that overrides the default directory.
inline constexpr char kFashionMnistDirEnv[] = "ERASER_FASHION_MNIST_DIR";

inline constexpr int kFashionMnistClasses = 10;
inline constexpr std::array<std::string_view, kFashionMnistClasses>
    kFashionMnistClassNames = {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// Grey-scale images with one label each. Immutable once loaded.
struct ImageDataset {
  uint32_t rows = 0;
  uint32_t cols = 0;
  // size() * feature_size() bytes; image i starts at i * feature_size().
  std::vector<uint8_t> pixels;
  // One label per image, each < kFashionMnistClasses.
  std::vector<uint8_t> labels;

  std::size_t size() const { return labels.size(); }
  std::size_t feature_size() const {
    return static_cast<std::size_t>(rows) * cols;
  }
  const uint8_t* image(std::size_t i) const {
    return pixels.data() + i * feature_size();
  }
};

struct FashionMnist {
  ImageDataset train;  // 60,000 images
  ImageDataset test;   // 10,000 images
};

// The directory to read: `flag_value` when not empty, else the environment
// variable kFashionMnistDirEnv when set and not empty, else the default.
std::string ResolveFashionMnistDir(std::string_view flag_value);

// Reads an IDX image file (magic 0x00000803) and its IDX label file (magic
// 0x00000801), both gzip-compressed. Errors: kNotFound when a file cannot be
// opened; kDataLoss for a wrong magic number, truncated or corrupt data,
// trailing bytes, implausible dimensions, mismatched counts or a label
// outside [0, kFashionMnistClasses). The message names the file.
StatusOr<ImageDataset> ReadIdxPair(const std::string& images_path,
                                   const std::string& labels_path);

// Reads train-{images-idx3,labels-idx1}-ubyte.gz and the t10k- pair from
// `dir`, and checks the split sizes (60,000 and 10,000).
StatusOr<FashionMnist> LoadFashionMnist(const std::string& dir);

// A fingerprint of the images and labels, stored with a data directory so it
// cannot silently be reused with other data.
uint64_t DatasetFingerprint(const ImageDataset& dataset);

}  // namespace eraser::workloads

#endif  // ERASER_WORKLOADS_FASHION_MNIST_H_
