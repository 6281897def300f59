#include "eraser/datasets/fashion_mnist.h"

#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>
#include <vector>

namespace eraser::datasets {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension
// Bounds that reject a corrupt header before it can ask for a huge buffer.
constexpr uint32_t kMaxItems = 10'000'000;
constexpr uint32_t kMaxSide = 1024;
constexpr std::size_t kTrainSize = 60'000;
constexpr std::size_t kTestSize = 10'000;

// A gzip file opened for reading; closes on destruction.
class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)) {}
  ~GzReader() {
    if (file_ != nullptr) gzclose_r(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  Status Open() {
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr) {
      return NotFoundError("cannot open " + path_ + ": " +
                           std::strerror(errno));
    }
    return OkStatus();
  }

  // Reads exactly `size` bytes or fails with kDataLoss.
  Status ReadExactly(void* out, std::size_t size, const char* what) {
    auto* dst = static_cast<unsigned char*>(out);
    while (size > 0) {
      const unsigned chunk = static_cast<unsigned>(
          std::min<std::size_t>(size, std::numeric_limits<int>::max()));
      const int n = gzread(file_, dst, chunk);
      if (n < 0) return Corrupt(what);
      if (n == 0) {
        return DataLossError(path_ + ": truncated while reading " + what +
                             ErrorSuffix());
      }
      dst += n;
      size -= static_cast<std::size_t>(n);
    }
    return OkStatus();
  }

  // Reads exactly `size` bytes into `out`, growing it as the bytes arrive,
  // so that a header declaring far more data than the file holds fails as
  // truncated instead of allocating what it declares.
  Status ReadGrowing(std::vector<uint8_t>* out, std::size_t size,
                     const char* what) {
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    out->clear();
    while (out->size() < size) {
      const std::size_t start = out->size();
      out->resize(start + std::min(kChunk, size - start));
      RETURN_IF_ERROR(
          ReadExactly(out->data() + start, out->size() - start, what));
    }
    return OkStatus();
  }

  StatusOr<uint32_t> ReadBigEndian32(const char* what) {
    unsigned char b[4];
    RETURN_IF_ERROR(ReadExactly(b, sizeof(b), what));
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
           (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  }

  // Succeeds only if the decompressed stream ends here and the gzip trailer
  // (CRC and length) checks out.
  Status ExpectEnd() {
    unsigned char extra;
    const int n = gzread(file_, &extra, 1);
    if (n < 0) return Corrupt("the gzip trailer");
    if (n > 0)
      return DataLossError(path_ + ": unexpected bytes after the data");
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    if (errnum != Z_OK) return Corrupt("the gzip trailer");
    return OkStatus();
  }

  const std::string& path() const { return path_; }

 private:
  // A gzip stream cut short surfaces as Z_BUF_ERROR ("unexpected end of
  // file"); anything else is damaged data.
  Status Corrupt(const char* what) {
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    const char* kind = errnum == Z_BUF_ERROR
                           ? ": truncated while reading "
                           : ": corrupt gzip data while reading ";
    return DataLossError(path_ + kind + what + ErrorSuffix());
  }
  std::string ErrorSuffix() {
    int errnum = Z_OK;
    const char* message = gzerror(file_, &errnum);
    if (errnum == Z_OK || message == nullptr || *message == '\0') return "";
    return std::string(" (") + message + ")";
  }

  std::string path_;
  gzFile file_ = nullptr;
};

Status CheckMagic(const GzReader& reader, uint32_t magic, uint32_t expected) {
  if (magic == expected) return OkStatus();
  char buf[96];
  std::snprintf(buf, sizeof(buf), ": bad magic number 0x%08x (expected 0x%08x)",
                magic, expected);
  return DataLossError(reader.path() + buf);
}

}  // namespace

std::string ResolveFashionMnistDir(std::string_view flag_value) {
  if (!flag_value.empty()) return std::string(flag_value);
  const char* env = std::getenv(kFashionMnistDirEnv);
  if (env != nullptr && *env != '\0') return env;
  return kDefaultFashionMnistDir;
}

StatusOr<Split> ReadIdxPair(const std::string& images_path,
                            const std::string& labels_path) {
  GzReader images(images_path);
  RETURN_IF_ERROR(images.Open());
  ASSIGN_OR_RETURN(uint32_t magic, images.ReadBigEndian32("the header"));
  RETURN_IF_ERROR(CheckMagic(images, magic, kImagesMagic));
  ASSIGN_OR_RETURN(uint32_t count, images.ReadBigEndian32("the header"));
  ASSIGN_OR_RETURN(uint32_t rows, images.ReadBigEndian32("the header"));
  ASSIGN_OR_RETURN(uint32_t cols, images.ReadBigEndian32("the header"));
  if (count == 0 || count > kMaxItems || rows == 0 || rows > kMaxSide ||
      cols == 0 || cols > kMaxSide) {
    return DataLossError(images_path + ": implausible dimensions " +
                         std::to_string(count) + " x " + std::to_string(rows) +
                         " x " + std::to_string(cols));
  }

  GzReader labels(labels_path);
  RETURN_IF_ERROR(labels.Open());
  ASSIGN_OR_RETURN(magic, labels.ReadBigEndian32("the header"));
  RETURN_IF_ERROR(CheckMagic(labels, magic, kLabelsMagic));
  ASSIGN_OR_RETURN(uint32_t label_count, labels.ReadBigEndian32("the header"));
  if (label_count != count) {
    return DataLossError(labels_path + ": holds " +
                         std::to_string(label_count) + " labels but " +
                         images_path + " holds " + std::to_string(count) +
                         " images");
  }

  Split split;
  split.type = FeatureType::kPixel;
  split.shape = {rows, cols};
  RETURN_IF_ERROR(images.ReadGrowing(
      &split.features, static_cast<std::size_t>(count) * rows * cols,
      "the pixels"));
  RETURN_IF_ERROR(images.ExpectEnd());
  std::vector<uint8_t> labels8;
  RETURN_IF_ERROR(labels.ReadGrowing(&labels8, count, "the labels"));
  RETURN_IF_ERROR(labels.ExpectEnd());
  split.labels.reserve(count);
  for (std::size_t i = 0; i < labels8.size(); ++i) {
    if (labels8[i] >= kFashionMnistClasses) {
      return DataLossError(labels_path + ": label " +
                           std::to_string(labels8[i]) + " of item " +
                           std::to_string(i) + " is out of range");
    }
    split.labels.push_back(labels8[i]);
  }
  return split;
}

StatusOr<Dataset> LoadFashionMnist(const std::string& dir) {
  Dataset data;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir.empty() ? "." : dir, ec)) {
    return NotFoundError(
        "no Fashion-MNIST directory " + dir +
        " (Debian's dataset-fashion-mnist package installs one at "
        "/usr/share/datasets/fashion-mnist; or name another with "
        "--dataset fashion-mnist:DIR, --dataset-dir or "
        "ERASER_FASHION_MNIST_DIR)");
  }
  const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  ASSIGN_OR_RETURN(data.train,
                   ReadIdxPair(base + "train-images-idx3-ubyte.gz",
                               base + "train-labels-idx1-ubyte.gz"));
  ASSIGN_OR_RETURN(data.test, ReadIdxPair(base + "t10k-images-idx3-ubyte.gz",
                                          base + "t10k-labels-idx1-ubyte.gz"));
  if (data.train.size() != kTrainSize || data.test.size() != kTestSize) {
    return DataLossError(dir + ": expected " + std::to_string(kTrainSize) +
                         " training and " + std::to_string(kTestSize) +
                         " test images, found " +
                         std::to_string(data.train.size()) + " and " +
                         std::to_string(data.test.size()));
  }
  if (data.train.shape != data.test.shape) {
    return DataLossError(dir + ": training and test images differ in size");
  }
  data.source = "fashion-mnist:" + dir;
  data.classes = kFashionMnistClasses;
  for (std::string_view name : kFashionMnistClassNames) {
    data.class_names.emplace_back(name);
  }
  return data;
}

}  // namespace eraser::datasets
