// Dataset specs as users write them (`--dataset`, a workload's "dataset"),
// parsed once at the edge, and loading the dataset a spec names.
//
//   fashion-mnist[:DIR]           the IDX files (DIR: fashion_mnist.h)
//   csv:PATH                      a CSV file with a header row (csv.h)
//   npy:X.npy,y.npy[,owners.npy]  NumPy arrays (npy.h)
#ifndef ERASER_DATASETS_SPEC_H_
#define ERASER_DATASETS_SPEC_H_

#include <optional>
#include <string>
#include <string_view>

#include "eraser/common/statusor.h"
#include "eraser/datasets/csv.h"
#include "eraser/datasets/dataset.h"

namespace eraser::datasets {

struct DatasetSpec {
  enum class Kind : uint8_t { kFashionMnist, kCsv, kNpy };
  Kind kind = Kind::kFashionMnist;
  // fashion-mnist: the directory (empty: ResolveFashionMnistDir's default);
  // csv: the file.
  std::string path;
  // npy: the three files (owners may be empty).
  std::string features_path;
  std::string labels_path;
  std::string owners_path;

  // The spec text (ParseDatasetSpec(ToString()) gives the same spec).
  std::string ToString() const;
};

// The grammar above, for --help texts.
const char* DatasetSpecHelp();

// kInvalidArgument naming the grammar for anything else.
StatusOr<DatasetSpec> ParseDatasetSpec(std::string_view text);

// The test fraction used for CSV and NumPy sources given without a test
// dataset: 20% of the rows, chosen with the seed.
inline constexpr double kDefaultTestFraction = 0.2;

struct LoadOptions {
  CsvOptions csv;
  // The test split from another source of the same kind. Fashion-MNIST
  // always uses its own t10k files.
  std::optional<DatasetSpec> test;
  // Otherwise this fraction of the training source, chosen with `seed`
  // (kDefaultTestFraction when unset).
  std::optional<double> test_fraction;
  uint64_t seed = 1;
};

// Loads and validates the dataset `spec` names. Errors name the file:
// kNotFound when it cannot be read, kInvalidArgument (CSV, NumPy) or
// kDataLoss (IDX) when its content is malformed, kInvalidArgument for
// options that do not fit the source (CSV options on NumPy data, a test
// dataset of another kind, a test fraction with Fashion-MNIST).
StatusOr<Dataset> LoadDataset(const DatasetSpec& spec,
                              const LoadOptions& options);

}  // namespace eraser::datasets

#endif  // ERASER_DATASETS_SPEC_H_
