// Fashion-MNIST reader: the gzip-compressed IDX files shipped by Debian's
// dataset-fashion-mnist package (or any directory holding the same four
// files). Every header field and count is validated; a truncated, corrupt or
// inconsistent file yields an error that names the file, never a partial
// dataset.
#ifndef ERASER_DATASETS_FASHION_MNIST_H_
#define ERASER_DATASETS_FASHION_MNIST_H_

#include <array>
#include <string>
#include <string_view>

#include "eraser/common/statusor.h"
#include "eraser/datasets/dataset.h"

namespace eraser::datasets {

inline constexpr char kDefaultFashionMnistDir[] =
    "/usr/share/datasets/fashion-mnist";
// Environment variable that overrides the default directory.
inline constexpr char kFashionMnistDirEnv[] = "ERASER_FASHION_MNIST_DIR";

inline constexpr int kFashionMnistClasses = 10;
inline constexpr std::array<std::string_view, kFashionMnistClasses>
    kFashionMnistClassNames = {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// The directory to read: `flag_value` when not empty, else the environment
// variable kFashionMnistDirEnv when set and not empty, else the default.
std::string ResolveFashionMnistDir(std::string_view flag_value);

// Reads an IDX image file (magic 0x00000803) and its IDX label file (magic
// 0x00000801), gzip-compressed or not, into a split of pixel features of
// shape {rows, cols} without owners. Errors: kNotFound when a file cannot
// be opened; kDataLoss for a wrong magic number, truncated or corrupt data,
// trailing bytes, implausible dimensions, mismatched counts or a label
// outside [0, kFashionMnistClasses). The message names the file.
StatusOr<Split> ReadIdxPair(const std::string& images_path,
                            const std::string& labels_path);

// Reads train-{images-idx3,labels-idx1}-ubyte.gz and the t10k- pair from
// `dir`, checks the split sizes (60,000 and 10,000), and names the classes.
StatusOr<Dataset> LoadFashionMnist(const std::string& dir);

}  // namespace eraser::datasets

#endif  // ERASER_DATASETS_FASHION_MNIST_H_
