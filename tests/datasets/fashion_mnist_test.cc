#include "eraser/datasets/fashion_mnist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "testing/temp_dir.h"

namespace eraser::datasets {
namespace {

using ::testing::HasSubstr;

void PutBigEndian32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

std::string ImagesBytes(uint32_t magic, uint32_t count, uint32_t rows,
                        uint32_t cols, const std::string& pixels) {
  std::string out;
  PutBigEndian32(&out, magic);
  PutBigEndian32(&out, count);
  PutBigEndian32(&out, rows);
  PutBigEndian32(&out, cols);
  return out + pixels;
}

std::string LabelsBytes(uint32_t magic, uint32_t count,
                        const std::string& labels) {
  std::string out;
  PutBigEndian32(&out, magic);
  PutBigEndian32(&out, count);
  return out + labels;
}

void WriteGz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// Three 2x3 images with labels 4, 0, 9.
class SmallIdx : public ::testing::Test {
 protected:
  void SetUp() override {
    pixels_ = std::string(
        "\x01\x02\x03\x04\x05\x06"
        "\x10\x20\x30\x40\x50\x60"
        "\xff\xfe\xfd\xfc\xfb\xfa",
        18);
    WriteGz(images_, ImagesBytes(0x803, 3, 2, 3, pixels_));
    WriteGz(labels_, LabelsBytes(0x801, 3, std::string("\x04\x00\x09", 3)));
  }

  testing::TempDir dir_;
  std::string images_ = dir_.Child("images.gz");
  std::string labels_ = dir_.Child("labels.gz");
  std::string pixels_;
};

TEST_F(SmallIdx, ReadsImagesAndLabels) {
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->size(), 3u);
  EXPECT_EQ(d->shape, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(d->type, FeatureType::kPixel);
  EXPECT_EQ(d->feature_count(), 6u);
  EXPECT_EQ(std::string(d->features.begin(), d->features.end()), pixels_);
  EXPECT_EQ(d->labels, (std::vector<uint32_t>{4, 0, 9}));
  EXPECT_EQ(d->row(2)[0], 0xff);
  float decoded[6];
  d->Decode(2, decoded);
  EXPECT_EQ(decoded[0], 1.0f);
  EXPECT_FLOAT_EQ(decoded[5], 0xfa / 255.0f);
}

TEST_F(SmallIdx, ReadsUncompressedFilesToo) {
  testing::WriteFileOrDie(images_, ImagesBytes(0x803, 3, 2, 3, pixels_));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(std::string(d->features.begin(), d->features.end()), pixels_);
}

TEST_F(SmallIdx, MissingFileIsNotFoundAndNamed) {
  StatusOr<Split> d = ReadIdxPair(dir_.Child("nope.gz"), labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(d.status().message(), HasSubstr("nope.gz"));
}

TEST(FashionMnist, AMissingDirectoryNamesThePackage) {
  StatusOr<Dataset> d = LoadFashionMnist("/nonexistent/fashion-mnist");
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(d.status().message(),
              HasSubstr("no Fashion-MNIST directory /nonexistent"));
  EXPECT_THAT(d.status().message(), HasSubstr("dataset-fashion-mnist"));
}

TEST_F(SmallIdx, WrongImageMagic) {
  WriteGz(images_, ImagesBytes(0x801, 3, 2, 3, pixels_));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("images.gz"));
  EXPECT_THAT(d.status().message(), HasSubstr("bad magic number 0x00000801"));
}

TEST_F(SmallIdx, WrongLabelMagic) {
  WriteGz(labels_, LabelsBytes(0x803, 3, std::string("\x04\x00\x09", 3)));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("labels.gz"));
}

TEST_F(SmallIdx, TruncatedPixels) {
  WriteGz(images_, ImagesBytes(0x803, 3, 2, 3, pixels_.substr(0, 17)));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("images.gz: truncated"));
}

TEST_F(SmallIdx, TruncatedHeader) {
  WriteGz(labels_, std::string("\x00\x00\x08", 3));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("labels.gz: truncated"));
}

TEST_F(SmallIdx, TrailingBytes) {
  WriteGz(labels_, LabelsBytes(0x801, 3, std::string("\x04\x00\x09\x01", 4)));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("unexpected bytes"));
}

TEST_F(SmallIdx, CountMismatch) {
  WriteGz(labels_, LabelsBytes(0x801, 2, std::string("\x04\x00", 2)));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("holds 2 labels"));
}

TEST_F(SmallIdx, LabelOutOfRange) {
  WriteGz(labels_, LabelsBytes(0x801, 3, std::string("\x04\x0a\x09", 3)));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("label 10 of item 1"));
}

TEST_F(SmallIdx, ImplausibleDimensions) {
  WriteGz(images_, ImagesBytes(0x803, 3, 0, 3, ""));
  EXPECT_EQ(ReadIdxPair(images_, labels_).status().code(),
            StatusCode::kDataLoss);
  // A header that claims four billion images must not allocate for them.
  WriteGz(images_, ImagesBytes(0x803, 0xffffffffu, 28, 28, ""));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("implausible dimensions"));
}

TEST_F(SmallIdx, AHeaderClaimingMoreThanTheFileHoldsAllocatesNothingForIt) {
  // Dimensions within the bounds, ten terabytes in all, and six bytes of
  // pixels: the reader must find the file short, not allocate what the
  // header claims (found by idx_fuzz, which ran out of memory).
  WriteGz(images_, ImagesBytes(0x803, 10'000'000, 1024, 1024, "abcdef"));
  WriteGz(labels_, LabelsBytes(0x801, 10'000'000, "\x01"));
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("images.gz: truncated"));
}

TEST_F(SmallIdx, CorruptCompressedStream) {
  std::string gz = testing::ReadFileOrDie(images_);
  ASSERT_GT(gz.size(), 24u);
  // Damage the deflate stream after the 10-byte gzip header.
  for (std::size_t i = 10; i < gz.size() - 8; ++i) gz[i] ^= 0x5a;
  testing::WriteFileOrDie(images_, gz);
  StatusOr<Split> d = ReadIdxPair(images_, labels_);
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("images.gz"));
}

TEST(ResolveFashionMnistDir, FlagThenEnvironmentThenDefault) {
  ASSERT_EQ(unsetenv(kFashionMnistDirEnv), 0);
  EXPECT_EQ(ResolveFashionMnistDir(""), kDefaultFashionMnistDir);
  ASSERT_EQ(setenv(kFashionMnistDirEnv, "/from/env", 1), 0);
  EXPECT_EQ(ResolveFashionMnistDir(""), "/from/env");
  EXPECT_EQ(ResolveFashionMnistDir("/from/flag"), "/from/flag");
  ASSERT_EQ(unsetenv(kFashionMnistDirEnv), 0);
}

// The real dataset, as installed by scripts/setup.
class RealFashionMnist : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StatusOr<Dataset> d = LoadFashionMnist(kDefaultFashionMnistDir);
    ASSERT_TRUE(d.ok()) << d.status();
    data_ = new Dataset(std::move(d).value());
  }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
  }
  static Dataset* data_;
};
Dataset* RealFashionMnist::data_ = nullptr;

TEST_F(RealFashionMnist, CountsAndShape) {
  EXPECT_EQ(data_->train.size(), 60000u);
  EXPECT_EQ(data_->test.size(), 10000u);
  EXPECT_EQ(data_->train.shape, (std::vector<uint32_t>{28, 28}));
  EXPECT_EQ(data_->train.features.size(), 60000u * 784u);
  EXPECT_EQ(data_->classes, 10u);
  EXPECT_EQ(data_->class_names.at(1), "Trouser");
  EXPECT_TRUE(data_->train.owners.empty());
  EXPECT_TRUE(data_->Validate().ok());
}

TEST_F(RealFashionMnist, KnownLabelsAndBalance) {
  // The first training and test images are both ankle boots (class 9).
  EXPECT_EQ(data_->train.labels[0], 9);
  EXPECT_EQ(data_->test.labels[0], 9);
  std::vector<int> train_counts(kFashionMnistClasses, 0);
  for (uint32_t l : data_->train.labels) ++train_counts[l];
  for (int c = 0; c < kFashionMnistClasses; ++c) {
    EXPECT_EQ(train_counts[c], 6000) << "class " << c;
  }
}

TEST_F(RealFashionMnist, TruncatedCopyIsRejected) {
  testing::TempDir dir;
  const std::string src =
      std::string(kDefaultFashionMnistDir) + "/t10k-images-idx3-ubyte.gz";
  const std::string gz = testing::ReadFileOrDie(src);
  const std::string copy = dir.Child("t10k-images-idx3-ubyte.gz");
  testing::WriteFileOrDie(copy, gz.substr(0, gz.size() / 2));
  StatusOr<Split> d = ReadIdxPair(copy, std::string(kDefaultFashionMnistDir) +
                                            "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr(copy));
  EXPECT_THAT(d.status().message(), HasSubstr("truncated"));
}

TEST_F(RealFashionMnist, WrongSplitSizeIsRejected) {
  // A directory whose "training" split is really the 10,000 test images.
  testing::TempDir dir;
  const std::string base = std::string(kDefaultFashionMnistDir) + "/";
  for (const char* name :
       {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    testing::WriteFileOrDie(dir.Child(name),
                            testing::ReadFileOrDie(base + name));
  }
  testing::WriteFileOrDie(
      dir.Child("train-images-idx3-ubyte.gz"),
      testing::ReadFileOrDie(base + "t10k-images-idx3-ubyte.gz"));
  testing::WriteFileOrDie(
      dir.Child("train-labels-idx1-ubyte.gz"),
      testing::ReadFileOrDie(base + "t10k-labels-idx1-ubyte.gz"));
  StatusOr<Dataset> d = LoadFashionMnist(dir.path());
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("expected 60000"));
}

TEST_F(RealFashionMnist, FingerprintDependsOnContent) {
  Split copy = data_->test;
  const uint64_t original = SplitFingerprint(copy);
  EXPECT_EQ(SplitFingerprint(data_->test), original);
  copy.features[12345] ^= 1;
  EXPECT_NE(SplitFingerprint(copy), original);
  copy = data_->test;
  copy.labels[3] ^= 1;
  EXPECT_NE(SplitFingerprint(copy), original);
}

}  // namespace
}  // namespace eraser::datasets
