#include "dataset_flags.h"

#include <sstream>

namespace po = boost::program_options;

namespace eraser::cli {

void AddDatasetOptions(po::options_description& options, DatasetFlags* f) {
  const std::string fraction =
      "without --test-dataset, the seeded fraction of a CSV or NumPy source "
      "held out for testing (default " +
      std::to_string(datasets::kDefaultTestFraction).substr(0, 3) + ")";
  options.add_options()(
      "dataset", po::value(&f->dataset)->default_value(f->dataset),
      (std::string("training data: ") + datasets::DatasetSpecHelp()).c_str())(
      "dataset-dir", po::value(&f->dataset_dir),
      "Fashion-MNIST directory (same as --dataset fashion-mnist:DIR; "
      "default: $ERASER_FASHION_MNIST_DIR, else "
      "/usr/share/datasets/fashion-mnist)")(
      "test-dataset", po::value(&f->test_dataset),
      "test split from another source of the same kind")(
      "test-fraction", po::value(&f->test_fraction), fraction.c_str())(
      "label-column", po::value(&f->label_column),
      "CSV: the label column (default: the last)")(
      "owner-column", po::value(&f->owner_column),
      "CSV: a column of integer data-owner ids (deleting an owner deletes "
      "all its rows)")("ignore-columns", po::value(&f->ignore_columns),
                       "CSV: comma-separated columns to leave out (ids, "
                       "dates)")(
      "categorical-columns", po::value(&f->categorical_columns),
      "CSV: comma-separated numeric columns to one-hot encode as codes")(
      "csv-delimiter", po::value(&f->delimiter),
      "CSV: ',', ';' or tab (default: detected from the header)");
}

bool AnyDatasetOption(const po::variables_map& vm) {
  for (const char* name : {"dataset-dir", "test-dataset", "test-fraction",
                           "label-column", "owner-column", "ignore-columns",
                           "categorical-columns", "csv-delimiter"}) {
    if (vm.count(name) > 0) return true;
  }
  return !vm["dataset"].defaulted();
}

StatusOr<ParsedDataset> ParseDatasetFlags(const DatasetFlags& f,
                                          const po::variables_map& vm,
                                          uint64_t seed) {
  ParsedDataset out;
  // An option given with nothing (a shell variable that expanded to
  // nothing) would fall back to its default, unlike what was asked.
  for (const char* name : {"dataset", "dataset-dir", "test-dataset",
                           "label-column", "owner-column", "ignore-columns",
                           "categorical-columns", "csv-delimiter"}) {
    if (vm.count(name) > 0 && !vm[name].defaulted() &&
        vm[name].as<std::string>().empty()) {
      return InvalidArgumentError(std::string("--") + name +
                                  " is empty: give a value, or leave the "
                                  "option out for its default");
    }
  }
  std::string text = f.dataset;
  if (!f.dataset_dir.empty()) {
    if (!vm["dataset"].defaulted() && f.dataset != "fashion-mnist") {
      return InvalidArgumentError(
          "--dataset-dir names a Fashion-MNIST directory; it does not go "
          "with --dataset " +
          f.dataset);
    }
    text = "fashion-mnist:" + f.dataset_dir;
  }
  ASSIGN_OR_RETURN(out.spec, datasets::ParseDatasetSpec(text));
  if (!f.test_dataset.empty()) {
    ASSIGN_OR_RETURN(out.options.test,
                     datasets::ParseDatasetSpec(f.test_dataset));
  }
  if (vm.count("test-fraction") > 0)
    out.options.test_fraction = f.test_fraction;
  out.options.csv.label_column = f.label_column;
  out.options.csv.owner_column = f.owner_column;
  auto split = [](const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
      if (!item.empty()) out.push_back(item);
    }
    return out;
  };
  out.options.csv.ignore_columns = split(f.ignore_columns);
  out.options.csv.categorical_columns = split(f.categorical_columns);
  if (!f.delimiter.empty()) {
    ASSIGN_OR_RETURN(out.options.csv.delimiter,
                     datasets::ParseDelimiter(f.delimiter));
  }
  out.options.seed = seed;
  return out;
}

}  // namespace eraser::cli
