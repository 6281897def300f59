// The dataset options shared by `eraser train`, `eraser dataset` and
// `eraser replay`: parsed once here into a DatasetSpec and LoadOptions.
#ifndef ERASER_CLI_DATASET_FLAGS_H_
#define ERASER_CLI_DATASET_FLAGS_H_

#include <boost/program_options.hpp>
#include <string>
#include <utility>

#include "eraser/common/statusor.h"
#include "eraser/datasets/spec.h"

namespace eraser::cli {

struct DatasetFlags {
  std::string dataset = "fashion-mnist";
  std::string dataset_dir;
  std::string test_dataset;
  double test_fraction = 0;
  std::string label_column;
  std::string owner_column;
  std::string ignore_columns;
  std::string categorical_columns;
  std::string delimiter;
};

// Adds --dataset, --dataset-dir, --test-dataset, --test-fraction,
// --label-column, --owner-column, --ignore-columns, --categorical-columns
// and --csv-delimiter.
void AddDatasetOptions(boost::program_options::options_description& options,
                       DatasetFlags* flags);

struct ParsedDataset {
  datasets::DatasetSpec spec;
  datasets::LoadOptions options;
};

// The flags as a spec and load options; `seed` seeds a test-fraction
// split. kInvalidArgument for a malformed spec or delimiter.
StatusOr<ParsedDataset> ParseDatasetFlags(
    const DatasetFlags& flags, const boost::program_options::variables_map& vm,
    uint64_t seed);

// True when any dataset option was given on the command line.
bool AnyDatasetOption(const boost::program_options::variables_map& vm);

}  // namespace eraser::cli

#endif  // ERASER_CLI_DATASET_FLAGS_H_
