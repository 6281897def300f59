// `eraser dataset`: reads and validates a dataset, prints a summary.
#include <cstdio>
#include <set>

#include "command.h"
#include "dataset_flags.h"
#include "eraser/datasets/dataset.h"

namespace po = boost::program_options;

namespace eraser::cli {
namespace {

constexpr char kUsage[] =
    "Usage: eraser dataset [SPEC] [options]\n"
    "Reads a dataset (SPEC: fashion-mnist[:DIR], csv:PATH or\n"
    "npy:X.npy,y.npy[,owners.npy]; default fashion-mnist) exactly as\n"
    "'eraser train' would, checks every value, and prints its splits, the\n"
    "samples per class, the columns and their kinds, and the owners.";

void PrintSplit(const char* name, const datasets::Split& split,
                const datasets::Dataset& data) {
  std::printf(
      "%-5s %6zu samples of %s %s features, fingerprint %016llx\n", name,
      split.size(), datasets::ShapeString(split.shape).c_str(),
      datasets::FeatureTypeName(split.type),
      static_cast<unsigned long long>(datasets::SplitFingerprint(split)));
  const std::vector<std::size_t> counts =
      datasets::ClassCounts(split, data.classes);
  for (uint32_t c = 0; c < data.classes; ++c) {
    std::printf("      %3u %-24s %6zu\n", c,
                data.class_names.empty() ? "" : data.class_names[c].c_str(),
                counts[c]);
  }
}

void PrintColumns(const datasets::TabularEncoding& encoding) {
  std::printf("columns (%zu features):\n", encoding.feature_count());
  for (const datasets::ColumnEncoding& c : encoding.columns()) {
    std::printf("      %-24s %-12s", c.name.c_str(),
                datasets::RoleName(c.role));
    if (c.role == datasets::ColumnEncoding::Role::kNumeric) {
      std::printf(" mean %g, sd %g", c.mean, c.scale);
    } else if (c.role == datasets::ColumnEncoding::Role::kCategorical) {
      std::printf(" %zu categories:", c.categories.size());
      for (std::size_t i = 0; i < c.categories.size() && i < 6; ++i) {
        std::printf(" %s", c.categories[i].c_str());
      }
      if (c.categories.size() > 6) std::printf(" ...");
    }
    std::printf("\n");
  }
}

}  // namespace

int RunDataset(int argc, char** argv) {
  DatasetFlags flags;
  uint64_t seed = 1;
  po::options_description options("Options");
  AddDatasetOptions(options, &flags);
  options.add_options()("seed", po::value(&seed)->default_value(seed),
                        "seed of a test-fraction split (as 'eraser train')");
  po::positional_options_description positional;
  positional.add("dataset", 1);
  po::variables_map vm;
  bool help = false;
  if (int rc =
          ParseCommandLine(argc, argv, kUsage, options, vm, &help, &positional);
      rc != kExitOk || help) {
    return rc;
  }
  StatusOr<ParsedDataset> parsed = ParseDatasetFlags(flags, vm, seed);
  if (!parsed.ok()) return ReportError("dataset", parsed.status());
  StatusOr<datasets::Dataset> data =
      datasets::LoadDataset(parsed->spec, parsed->options);
  if (!data.ok()) return ReportError("dataset", data.status());
  std::printf("%s: %u classes\n", data->source.c_str(), data->classes);
  PrintSplit("train", data->train, *data);
  PrintSplit("test", data->test, *data);
  if (data->encoding != nullptr) PrintColumns(*data->encoding);
  for (const std::string& note : data->notes) {
    std::printf("note: %s\n", note.c_str());
  }
  if (data->train.owners.empty()) {
    std::printf(
        "owners: none in the data (assigned by --samples-per-owner "
        "at train)\n");
  } else {
    const std::set<uint64_t> owners(data->train.owners.begin(),
                                    data->train.owners.end());
    std::printf("owners: %zu in the training split (%.2f samples each)\n",
                owners.size(),
                static_cast<double>(data->train.size()) / owners.size());
  }
  return kExitOk;
}

}  // namespace eraser::cli
