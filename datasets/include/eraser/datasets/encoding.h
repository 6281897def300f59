// The transform from a tabular record (column name -> raw text) to the
// feature vector a model sees, fixed when a CSV file is ingested and stored
// with the data directory, so that serving and replay encode exactly as
// training did.
//
// Feature columns become features in file order: a numeric column one value,
// standardised as (x - mean) / scale with the training split's mean and
// standard deviation (scale 1 when the deviation is 0); a categorical column
// one value per category of its vocabulary (one-hot, categories sorted).
#ifndef ERASER_DATASETS_ENCODING_H_
#define ERASER_DATASETS_ENCODING_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "eraser/common/statusor.h"

namespace eraser::datasets {

struct ColumnEncoding {
  enum class Role : uint8_t {
    kNumeric = 1,      // a standardised feature
    kCategorical = 2,  // one-hot features over `categories`
    kLabel = 3,        // the class; not a feature
    kOwner = 4,        // the data owner's id; not a feature
    kIgnored = 5,      // named by --ignore-columns; not a feature
  };
  std::string name;
  Role role = Role::kNumeric;
  double mean = 0;                      // numeric only
  double scale = 1;                     // numeric only; positive
  std::vector<std::string> categories;  // categorical only; sorted, distinct

  // Numeric or categorical: a record must give it a value.
  bool is_feature() const {
    return role == Role::kNumeric || role == Role::kCategorical;
  }
};

// "numeric", "categorical", "label", "owner", "ignored".
const char* RoleName(ColumnEncoding::Role role);

class TabularEncoding {
 public:
  TabularEncoding() = default;
  // `columns` in file order. kInvalidArgument unless names are distinct,
  // exactly one column is the label, at most one the owner, at least one is
  // a feature, scales are positive and categories sorted and distinct.
  static StatusOr<TabularEncoding> Create(std::vector<ColumnEncoding> columns);

  const std::vector<ColumnEncoding>& columns() const { return columns_; }
  // Features per record.
  std::size_t feature_count() const { return feature_count_; }
  // One name per feature: "age", or "color=red" for a category.
  std::vector<std::string> FeatureNames() const;

  // Encodes the value of feature column `column` (an index into columns())
  // into `out` (one value, or one per category). kInvalidArgument naming the
  // column for a value that is empty, not a finite number (numeric), or not
  // in the vocabulary (categorical).
  Status EncodeValue(std::size_t column, std::string_view text,
                     float* out) const;

  // Encodes a record given by column name. Every feature column must be
  // present; the label, owner and ignored columns may be. kInvalidArgument
  // naming the first missing or unknown column, or the bad value. A
  // categorical value also matches a category that parses as the same
  // number ("1" for 1.0) or, for true/false, in another letter case.
  StatusOr<std::vector<float>> EncodeRecord(
      const std::map<std::string, std::string>& record) const;

  // A JSON object; FromJson reads it back (kDataLoss when malformed).
  std::string ToJson() const;
  static StatusOr<TabularEncoding> FromJson(std::string_view json);

 private:
  explicit TabularEncoding(std::vector<ColumnEncoding> columns);
  std::vector<ColumnEncoding> columns_;
  std::size_t feature_count_ = 0;
};

// Parses text as a finite number (surrounding spaces allowed): the rule
// that decides whether a CSV column is numeric.
bool ParseNumber(std::string_view text, double* out);

}  // namespace eraser::datasets

#endif  // ERASER_DATASETS_ENCODING_H_
