// Splits, their stored encoding, shapes, dataset specs and the options
// that do not fit a source.
#include "eraser/datasets/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "eraser/datasets/spec.h"

namespace eraser::datasets {
namespace {

using ::testing::HasSubstr;

Split FloatSplit() {
  Split s;
  s.type = FeatureType::kFloat32;
  s.shape = {2};
  const float values[] = {0.5f, -1.0f, 2.0f, 3.5f, 1e-3f, 7.0f};
  s.features.resize(sizeof(values));
  std::memcpy(s.features.data(), values, sizeof(values));
  s.labels = {0, 2, 1};
  s.owners = {10, 11, 10};
  return s;
}

TEST(Split, DecodesBothFeatureTypes) {
  Split f = FloatSplit();
  ASSERT_TRUE(f.Validate().ok());
  EXPECT_EQ(f.feature_count(), 2u);
  EXPECT_EQ(f.row_bytes(), 8u);
  EXPECT_EQ(f.DecodeRows(1, 3), (std::vector<float>{2.0f, 3.5f, 1e-3f, 7.0f}));
  Split p;
  p.type = FeatureType::kPixel;
  p.shape = {1, 2};
  p.features = {0, 255, 51, 102};
  p.labels = {1, 1};
  ASSERT_TRUE(p.Validate().ok());
  EXPECT_EQ(p.DecodeRows(0, 2), (std::vector<float>{0.0f, 1.0f, 0.2f, 0.4f}));
}

TEST(Split, InconsistentSplitsAreInvalid) {
  Split s = FloatSplit();
  s.features.pop_back();
  EXPECT_EQ(s.Validate().code(), StatusCode::kInvalidArgument);
  s = FloatSplit();
  s.owners.pop_back();
  EXPECT_EQ(s.Validate().code(), StatusCode::kInvalidArgument);
  s = FloatSplit();
  s.shape = {};
  EXPECT_EQ(s.Validate().code(), StatusCode::kInvalidArgument);
  s.shape = {0};
  EXPECT_EQ(s.Validate().code(), StatusCode::kInvalidArgument);
}

TEST(Split, EncodingRoundTripsAndCorruptionIsDataLoss) {
  const Split s = FloatSplit();
  const std::string bytes = EncodeSplit(s);
  StatusOr<Split> back = DecodeSplit(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->features, s.features);
  EXPECT_EQ(back->labels, s.labels);
  EXPECT_EQ(back->owners, s.owners);
  EXPECT_EQ(back->shape, s.shape);
  EXPECT_EQ(SplitFingerprint(*back), SplitFingerprint(s));
  for (std::size_t cut : {0ul, 3ul, 10ul, bytes.size() - 1}) {
    EXPECT_EQ(DecodeSplit(bytes.substr(0, cut)).status().code(),
              StatusCode::kDataLoss)
        << cut;
  }
  EXPECT_EQ(DecodeSplit(bytes + "x").status().code(), StatusCode::kDataLoss);
  std::string bad_type = bytes;
  bad_type[8] = 9;
  EXPECT_EQ(DecodeSplit(bad_type).status().code(), StatusCode::kDataLoss);
}

TEST(Split, FingerprintSeesOwnersAndType) {
  Split s = FloatSplit();
  const uint64_t fp = SplitFingerprint(s);
  s.owners[0] = 12;
  EXPECT_NE(SplitFingerprint(s), fp);
  s = FloatSplit();
  s.shape = {1, 2};
  EXPECT_NE(SplitFingerprint(s), fp);
}

// The test split's owners were not kept before 2026-12-06: a directory
// built then must still match its dataset, which now has them.
TEST(Dataset, DescriptionFingerprintLeavesTheTestOwnersOut) {
  Dataset d;
  d.classes = 2;
  d.train = FloatSplit();
  d.test = FloatSplit();
  const uint64_t with = DescriptionFingerprint(d);
  d.test.owners.clear();
  EXPECT_EQ(DescriptionFingerprint(d), with);
  d.test.labels[0] = 1 - d.test.labels[0];
  EXPECT_NE(DescriptionFingerprint(d), with);
}

// A deleted owner's rows of a stored test split: blanked in place, the
// others keep their indices; stored and read back as they are.
TEST(Split, ErasedRowsKeepTheOthersIndices) {
  Split s;
  s.type = FeatureType::kPixel;
  s.shape = {2};
  s.labels = {1, 0, 1, 0};
  s.owners = {7, 8, 7, 9};
  s.features = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(s.EraseOwner(7), 2u);
  EXPECT_EQ(s.EraseOwner(7), 0u);  // already erased
  EXPECT_EQ(s.EraseOwner(5), 0u);  // none
  EXPECT_TRUE(s.erased(0));
  EXPECT_FALSE(s.erased(1));
  EXPECT_TRUE(s.erased(2));
  EXPECT_EQ(s.features, (std::vector<uint8_t>{0, 0, 3, 4, 0, 0, 7, 8}));
  EXPECT_EQ(s.owners, (std::vector<uint64_t>{7, 8, 7, 9}));
  const Split live = s.WithoutErased();
  EXPECT_EQ(live.labels, (std::vector<uint32_t>{0, 0}));
  EXPECT_EQ(live.owners, (std::vector<uint64_t>{8, 9}));
  EXPECT_EQ(live.features, (std::vector<uint8_t>{3, 4, 7, 8}));
  StatusOr<Split> back = DecodeSplit(EncodeSplit(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->erased(2));
  EXPECT_TRUE(s.CheckRowsLeft().ok());
  s.EraseOwner(8);
  s.EraseOwner(9);
  EXPECT_EQ(s.CheckRowsLeft().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.CheckRowsLeft().message(), HasSubstr("every row"));
}

TEST(Dataset, ValidateChecksLabelsNamesAndShapes) {
  Dataset d;
  d.train = FloatSplit();
  d.test = FloatSplit();
  d.classes = 3;
  EXPECT_TRUE(d.Validate().ok());
  d.class_names = {"a", "b"};
  EXPECT_THAT(d.Validate().message(), HasSubstr("2 class names for 3"));
  d.class_names.clear();
  d.classes = 2;
  EXPECT_THAT(d.Validate().message(), HasSubstr("has label 2, not below 2"));
  d.classes = 3;
  d.test.shape = {1, 2};
  EXPECT_THAT(d.Validate().message(), HasSubstr("differ in feature shape"));
  d.test = FloatSplit();
  d.test.labels.clear();
  d.test.features.clear();
  d.test.owners.clear();
  EXPECT_THAT(d.Validate().message(), HasSubstr("no test samples"));
}

TEST(Shape, StringsRoundTrip) {
  EXPECT_EQ(ShapeString({28, 28}), "28x28");
  EXPECT_EQ(*ParseShape("28x28"), (std::vector<uint32_t>{28, 28}));
  EXPECT_EQ(*ParseShape("19"), (std::vector<uint32_t>{19}));
  for (const char* bad : {"", "x", "28x", "0", "2x-1", "1234567890"}) {
    EXPECT_EQ(ParseShape(bad).status().code(), StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(*ParseFeatureType("pixel"), FeatureType::kPixel);
  EXPECT_EQ(ParseFeatureType("int8").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Spec, ParsesEveryKindAndRoundTrips) {
  for (const char* text :
       {"fashion-mnist", "fashion-mnist:/data/fm", "csv:users.csv",
        "csv:/a/b:c.csv", "npy:x.npy,y.npy", "npy:x.npy,y.npy,o.npy"}) {
    StatusOr<DatasetSpec> spec = ParseDatasetSpec(text);
    ASSERT_TRUE(spec.ok()) << text << ": " << spec.status();
    EXPECT_EQ(spec->ToString(), text);
  }
  EXPECT_EQ(ParseDatasetSpec("csv:/a/b:c.csv")->path, "/a/b:c.csv");
  EXPECT_EQ(ParseDatasetSpec("npy:x.npy,y.npy,o.npy")->owners_path, "o.npy");
  for (const char* bad : {"", "csv", "csv:", "fashion-mnist:", "npy:x.npy",
                          "npy:x,y,z,w", "npy:x,,y", "parquet:x.pq"}) {
    StatusOr<DatasetSpec> spec = ParseDatasetSpec(bad);
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(spec.status().message(), HasSubstr("csv:PATH")) << bad;
  }
}

TEST(Spec, OptionsThatDoNotFitTheSourceAreRefused) {
  const DatasetSpec fm = *ParseDatasetSpec("fashion-mnist:/nonexistent");
  LoadOptions fraction;
  fraction.test_fraction = 0.3;
  EXPECT_THAT(LoadDataset(fm, fraction).status().message(),
              HasSubstr("own test split"));
  LoadOptions csv;
  csv.csv.owner_column = "o";
  EXPECT_THAT(LoadDataset(fm, csv).status().message(),
              HasSubstr("do not apply to Fashion-MNIST"));
  LoadOptions other_kind;
  other_kind.test = *ParseDatasetSpec("npy:x.npy,y.npy");
  EXPECT_THAT(LoadDataset(*ParseDatasetSpec("csv:a.csv"), other_kind)
                  .status()
                  .message(),
              HasSubstr("same kind"));
  EXPECT_EQ(LoadDataset(fm, {}).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace eraser::datasets
