// Small datasets for tests, cut from Fashion-MNIST's 10,000 test images
// (installed by scripts/setup): quick to load, real enough to learn from.
#ifndef ERASER_TESTS_TESTING_DATA_H_
#define ERASER_TESTS_TESTING_DATA_H_

#include <cstddef>

#include "eraser/datasets/dataset.h"

namespace eraser::testing {

// The t10k images and labels, read once per process; aborts if missing.
const datasets::Split& T10k();

// Rows [begin, end) of a split.
datasets::Split Rows(const datasets::Split& split, std::size_t begin,
                     std::size_t end);

// A Fashion-MNIST-shaped dataset whose training split is t10k rows
// [0, train) and whose test split is rows [train, train + test).
datasets::Dataset SmallFashionMnist(std::size_t train, std::size_t test);

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_DATA_H_
