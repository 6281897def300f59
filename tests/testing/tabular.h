// A synthetic CSV export of user records for end-to-end tests of tabular
// data: an owner column, categorical and boolean columns, numeric columns,
// a quoted free-text column to ignore, and a string label that depends on
// the features (so that a model can learn it).
#ifndef ERASER_TESTS_TESTING_TABULAR_H_
#define ERASER_TESTS_TESTING_TABULAR_H_

#include <cstdint>
#include <string>

namespace eraser::testing {

// Columns: user,region,premium,age,spend,note,churn. `owners` users of
// `rows_per_owner` rows each, in an interleaved order. The arguments for
// `eraser train`: kTabularFlags.
std::string SyntheticUsersCsv(int owners, int rows_per_owner, uint64_t seed);

inline constexpr char kTabularFlags[] =
    "--owner-column user --label-column churn --ignore-columns note";

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_TABULAR_H_
