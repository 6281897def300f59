// `eraser dataset`: reads and validates Fashion-MNIST, prints a summary.
#include <array>
#include <cstdio>
#include <iostream>

#include "command.h"
#include "eraser/workloads/fashion_mnist.h"

namespace po = boost::program_options;

namespace eraser::cli {
namespace {

constexpr char kUsage[] =
    "Usage: eraser dataset [--dataset-dir DIR]\n"
    "Reads the Fashion-MNIST training and test splits, checks every header\n"
    "and count, and prints their sizes, label counts and fingerprints.";

void PrintSplit(const char* name, const workloads::ImageDataset& split) {
  std::array<int, workloads::kFashionMnistClasses> counts{};
  for (uint8_t label : split.labels) ++counts[label];
  std::printf(
      "%-5s %6zu images of %ux%u, fingerprint %016llx\n", name, split.size(),
      split.rows, split.cols,
      static_cast<unsigned long long>(workloads::DatasetFingerprint(split)));
  for (int c = 0; c < workloads::kFashionMnistClasses; ++c) {
    std::printf("      %d %-12s %6d\n", c,
                std::string(workloads::kFashionMnistClassNames[c]).c_str(),
                counts[c]);
  }
}

}  // namespace

int RunDataset(int argc, char** argv) {
  std::string dir_flag;
  po::options_description options("Options");
  options.add_options()(
      "dataset-dir", po::value(&dir_flag),
      "directory of the Fashion-MNIST .gz files (default: $"
      "ERASER_FASHION_MNIST_DIR, else /usr/share/datasets/fashion-mnist)");
  po::variables_map vm;
  bool help = false;
  if (int rc = ParseCommandLine(argc, argv, kUsage, options, vm, &help);
      rc != kExitOk || help) {
    return rc;
  }
  const std::string dir = workloads::ResolveFashionMnistDir(dir_flag);
  StatusOr<workloads::FashionMnist> data = workloads::LoadFashionMnist(dir);
  if (!data.ok()) return ReportError("dataset", data.status());
  std::printf("Fashion-MNIST from %s\n", dir.c_str());
  PrintSplit("train", data->train);
  PrintSplit("test", data->test);
  return kExitOk;
}

}  // namespace eraser::cli
