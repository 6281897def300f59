// Datasets as eraser trains and serves them: a training split and a test
// split of encoded feature rows with integer labels, optional data owners,
// optional class names, and, for CSV sources, the column transform that
// produced the features (encoding.h).
//
// Readers (fashion_mnist.h, csv.h, npy.h) validate everything before they
// return: a Dataset is complete and consistent, or there is none.
#ifndef ERASER_DATASETS_DATASET_H_
#define ERASER_DATASETS_DATASET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/statusor.h"
#include "eraser/datasets/encoding.h"

namespace eraser::datasets {

// How stored feature bytes decode to the floats a model sees.
enum class FeatureType : uint8_t {
  // One byte per value, seen as value / 255 (images; NumPy uint8).
  kPixel = 1,
  // Four bytes per value, a little-endian IEEE-754 float.
  kFloat32 = 2,
};

// "pixel" or "float32"; the inverse is ParseFeatureType.
const char* FeatureTypeName(FeatureType type);
StatusOr<FeatureType> ParseFeatureType(std::string_view name);
// Bytes per value: 1 or 4.
std::size_t FeatureTypeBytes(FeatureType type);
// Decodes `count` values of `type` stored at `bytes` into `out`.
void DecodeFeatures(FeatureType type, const uint8_t* bytes, std::size_t count,
                    float* out);

// The largest number of classes a dataset may have.
inline constexpr uint32_t kMaxClasses = 1000;

// One split: `size()` samples, each a feature array of `shape` (row-major)
// stored as `type`, with a label and, optionally, an owner.
struct Split {
  FeatureType type = FeatureType::kFloat32;
  // The shape of one sample's features: {28, 28} for an image, {d} for a
  // table row. Never empty; every dimension positive.
  std::vector<uint32_t> shape;
  // size() * row_bytes() bytes; sample i starts at i * row_bytes().
  std::vector<uint8_t> features;
  std::vector<uint32_t> labels;
  // Empty, or one owner id per sample.
  std::vector<uint64_t> owners;

  // The label of a row erased by a deletion of its owner (a stored test
  // split's rows: kept in place so that the other rows' indices hold).
  static constexpr uint32_t kErasedLabel = UINT32_MAX;

  std::size_t size() const { return labels.size(); }
  bool erased(std::size_t i) const { return labels[i] == kErasedLabel; }
  // Erases row i: features zeroed, label kErasedLabel, owner kept.
  void EraseRow(std::size_t i);
  // Erases the rows of `owner`; returns how many were not erased before.
  std::size_t EraseOwner(uint64_t owner);
  // The rows not erased, in order (for evaluation).
  Split WithoutErased() const;
  // kFailedPrecondition, saying so, when every row is erased (a stored test
  // split whose owners were all deleted: nothing to evaluate or replay).
  Status CheckRowsLeft() const;
  // Values per sample: the product of `shape`.
  std::size_t feature_count() const;
  std::size_t row_bytes() const {
    return feature_count() * FeatureTypeBytes(type);
  }
  const uint8_t* row(std::size_t i) const {
    return features.data() + i * row_bytes();
  }
  // Sample i's features as floats (feature_count() values) into `out`.
  void Decode(std::size_t i, float* out) const;
  // Samples [begin, end) as floats, one after another.
  std::vector<float> DecodeRows(std::size_t begin, std::size_t end) const;
  // kInvalidArgument naming the inconsistency (sizes, shape).
  Status Validate() const;
};

struct Dataset {
  // The source as given ("csv:users.csv"), for messages and reports.
  std::string source;
  Split train;
  Split test;
  // Labels are in [0, classes).
  uint32_t classes = 0;
  // Empty, or one name per class ("Trouser"; a CSV file's label values).
  std::vector<std::string> class_names;
  // Set for tabular sources: how raw records become features.
  std::shared_ptr<const TabularEncoding> encoding;
  // What a user should know of how the data was read, one sentence each
  // (a column of numbers read as categories because of one text value);
  // `eraser dataset` and `eraser train` print them.
  std::vector<std::string> notes;

  // kInvalidArgument unless both splits are valid, share type and shape,
  // labels are below `classes`, and class_names is empty or complete.
  Status Validate() const;
};

// A fingerprint of a split's type, shape, features, labels and owners:
// stored with a data directory so that it is never reused with other data.
uint64_t SplitFingerprint(const Split& split);
// A fingerprint of what a data directory keeps of a dataset besides its
// training split: the test split (not its owners), the classes and their
// names, and a table's encoding (column names, categories), which serving
// uses.
uint64_t DescriptionFingerprint(const Dataset& data);

// "28x28"; ParseShape is the inverse (kInvalidArgument otherwise).
std::string ShapeString(const std::vector<uint32_t>& shape);
StatusOr<std::vector<uint32_t>> ParseShape(std::string_view text);

// A split as bytes, for storing the test split in a data directory, and
// back (kDataLoss for bytes that are not such an encoding).
std::string EncodeSplit(const Split& split);
StatusOr<Split> DecodeSplit(std::string_view bytes);

// Per-class counts of a split's labels (classes entries).
std::vector<std::size_t> ClassCounts(const Split& split, uint32_t classes);

}  // namespace eraser::datasets

#endif  // ERASER_DATASETS_DATASET_H_
