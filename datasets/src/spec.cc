#include "eraser/datasets/spec.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "eraser/datasets/fashion_mnist.h"
#include "eraser/datasets/npy.h"

namespace eraser::datasets {
namespace {

bool HasCsvOptions(const CsvOptions& o) {
  return !o.label_column.empty() || !o.owner_column.empty() ||
         !o.ignore_columns.empty() || !o.categorical_columns.empty() ||
         o.delimiter != 0;
}

StatusOr<Dataset> LoadCsv(const DatasetSpec& spec, const LoadOptions& options) {
  ASSIGN_OR_RETURN(CsvTable table, ReadCsv(spec.path, options.csv.delimiter));
  CsvTable train, test;
  if (options.test) {
    ASSIGN_OR_RETURN(test, ReadCsv(options.test->path, table.delimiter));
    train = std::move(table);
  } else {
    RETURN_IF_ERROR(SplitCsvTable(
        table, options.test_fraction.value_or(kDefaultTestFraction),
        options.seed, options.csv.owner_column, &train, &test));
  }
  return EncodeCsvTables(train, test, options.csv);
}

StatusOr<Split> ReadNpySplit(const DatasetSpec& spec, uint32_t* max_label) {
  ASSIGN_OR_RETURN(NpyArray x, ReadNpy(spec.features_path));
  ASSIGN_OR_RETURN(NpyArray y, ReadNpy(spec.labels_path));
  std::optional<NpyArray> owners;
  if (!spec.owners_path.empty()) {
    ASSIGN_OR_RETURN(owners, ReadNpy(spec.owners_path));
  }
  return NpySplit(x, y, owners ? &*owners : nullptr,
                  {spec.features_path, spec.labels_path, spec.owners_path},
                  max_label);
}

// Rows [0, n) of `from`, those with in_test[i] == want, in order.
Split SelectRows(const Split& from, const std::vector<bool>& in_test,
                 bool want) {
  Split out;
  out.type = from.type;
  out.shape = from.shape;
  const std::size_t row = from.row_bytes();
  for (std::size_t i = 0; i < from.size(); ++i) {
    if (in_test[i] != want) continue;
    out.features.insert(out.features.end(), from.row(i), from.row(i) + row);
    out.labels.push_back(from.labels[i]);
    if (!from.owners.empty()) out.owners.push_back(from.owners[i]);
  }
  return out;
}

StatusOr<Dataset> LoadNpy(const DatasetSpec& spec, const LoadOptions& options) {
  if (HasCsvOptions(options.csv)) {
    return InvalidArgumentError(
        "the CSV options (--label-column, --owner-column, --ignore-columns, "
        "--categorical-columns, --csv-delimiter) do not apply to NumPy "
        "data");
  }
  Dataset data;
  uint32_t max_label = 0;
  ASSIGN_OR_RETURN(Split all, ReadNpySplit(spec, &max_label));
  if (options.test) {
    uint32_t test_max = 0;
    ASSIGN_OR_RETURN(data.test, ReadNpySplit(*options.test, &test_max));
    // A deletion of an owner erases their test rows too: they must be named
    // (as a CSV test file must have the owner column).
    if (!all.owners.empty() && data.test.owners.empty()) {
      return InvalidArgumentError(
          "the training arrays name owners but the test dataset " +
          options.test->ToString() +
          " does not: give its owners too (npy:X.npy,y.npy,owners.npy), so "
          "that deleting an owner erases their test rows");
    }
    data.train = std::move(all);
    max_label = std::max(max_label, test_max);
  } else {
    std::vector<std::string> groups;
    for (uint64_t owner : all.owners) groups.push_back(std::to_string(owner));
    ASSIGN_OR_RETURN(
        std::vector<bool> in_test,
        ChooseTestItems(all.size(), groups,
                        options.test_fraction.value_or(kDefaultTestFraction),
                        options.seed));
    data.train = SelectRows(all, in_test, false);
    data.test = SelectRows(all, in_test, true);
  }
  data.classes = max_label + 1;
  data.source = spec.ToString();
  if (data.classes < 2) {
    return InvalidArgumentError(spec.labels_path +
                                ": every label is 0; a classifier needs at "
                                "least two classes");
  }
  RETURN_IF_ERROR(data.Validate());
  return data;
}

}  // namespace

std::string DatasetSpec::ToString() const {
  switch (kind) {
    case Kind::kFashionMnist:
      return path.empty() ? "fashion-mnist" : "fashion-mnist:" + path;
    case Kind::kCsv:
      return "csv:" + path;
    case Kind::kNpy:
      return "npy:" + features_path + "," + labels_path +
             (owners_path.empty() ? "" : "," + owners_path);
  }
  return "";
}

const char* DatasetSpecHelp() {
  return "fashion-mnist[:DIR], csv:PATH or npy:X.npy,y.npy[,owners.npy]";
}

StatusOr<DatasetSpec> ParseDatasetSpec(std::string_view text) {
  DatasetSpec spec;
  const std::string bad =
      "bad dataset '" + std::string(text) + "': expected " + DatasetSpecHelp();
  const std::size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const std::string rest = colon == std::string_view::npos
                               ? ""
                               : std::string(text.substr(colon + 1));
  if (kind == "fashion-mnist") {
    spec.kind = DatasetSpec::Kind::kFashionMnist;
    if (colon != std::string_view::npos && rest.empty()) {
      return InvalidArgumentError(bad);
    }
    spec.path = rest;
    return spec;
  }
  if (rest.empty()) return InvalidArgumentError(bad);
  if (kind == "csv") {
    spec.kind = DatasetSpec::Kind::kCsv;
    spec.path = rest;
    return spec;
  }
  if (kind == "npy") {
    spec.kind = DatasetSpec::Kind::kNpy;
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= rest.size()) {
      const std::size_t end = std::min(rest.find(',', start), rest.size());
      parts.push_back(rest.substr(start, end - start));
      start = end + 1;
    }
    if (parts.size() < 2 || parts.size() > 3) return InvalidArgumentError(bad);
    for (const std::string& p : parts) {
      if (p.empty()) return InvalidArgumentError(bad);
    }
    spec.features_path = parts[0];
    spec.labels_path = parts[1];
    if (parts.size() == 3) spec.owners_path = parts[2];
    return spec;
  }
  return InvalidArgumentError(bad);
}

StatusOr<Dataset> LoadDataset(const DatasetSpec& spec,
                              const LoadOptions& options) {
  if (options.test && options.test_fraction) {
    return InvalidArgumentError(
        "give a test dataset or a test fraction, not both");
  }
  if (options.test && options.test->kind != spec.kind) {
    return InvalidArgumentError(
        "the test dataset (" + options.test->ToString() +
        ") must be of the same kind as " + spec.ToString());
  }
  switch (spec.kind) {
    case DatasetSpec::Kind::kFashionMnist: {
      if (options.test || options.test_fraction) {
        return InvalidArgumentError(
            "Fashion-MNIST has its own test split; --test-dataset and "
            "--test-fraction do not apply");
      }
      if (HasCsvOptions(options.csv)) {
        return InvalidArgumentError(
            "the CSV options do not apply to Fashion-MNIST");
      }
      ASSIGN_OR_RETURN(Dataset data,
                       LoadFashionMnist(ResolveFashionMnistDir(spec.path)));
      RETURN_IF_ERROR(data.Validate());
      return data;
    }
    case DatasetSpec::Kind::kCsv:
      return LoadCsv(spec, options);
    case DatasetSpec::Kind::kNpy:
      return LoadNpy(spec, options);
  }
  return InvalidArgumentError("unknown dataset kind");
}

}  // namespace eraser::datasets
