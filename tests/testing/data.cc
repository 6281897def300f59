#include "testing/data.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "eraser/datasets/fashion_mnist.h"

namespace eraser::testing {

const datasets::Split& T10k() {
  static const datasets::Split* split = [] {
    const std::string dir = datasets::kDefaultFashionMnistDir;
    StatusOr<datasets::Split> d = datasets::ReadIdxPair(
        dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz");
    if (!d.ok()) {
      std::fprintf(stderr, "test data: %s\n", d.status().ToString().c_str());
      std::abort();
    }
    return new datasets::Split(std::move(d).value());
  }();
  return *split;
}

datasets::Split Rows(const datasets::Split& split, std::size_t begin,
                     std::size_t end) {
  datasets::Split out;
  out.type = split.type;
  out.shape = split.shape;
  out.features.assign(split.row(begin),
                      split.row(begin) + (end - begin) * split.row_bytes());
  out.labels.assign(split.labels.begin() + static_cast<std::ptrdiff_t>(begin),
                    split.labels.begin() + static_cast<std::ptrdiff_t>(end));
  if (!split.owners.empty()) {
    out.owners.assign(split.owners.begin() + static_cast<std::ptrdiff_t>(begin),
                      split.owners.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return out;
}

datasets::Dataset SmallFashionMnist(std::size_t train, std::size_t test) {
  datasets::Dataset data;
  data.source = "fashion-mnist t10k[0:" + std::to_string(train + test) + "]";
  data.train = Rows(T10k(), 0, train);
  data.test = Rows(T10k(), train, train + test);
  data.classes = datasets::kFashionMnistClasses;
  for (std::string_view name : datasets::kFashionMnistClassNames) {
    data.class_names.emplace_back(name);
  }
  return data;
}

}  // namespace eraser::testing
