#include "testing/tabular.h"

#include <cstdio>

#include "eraser/common/random.h"

namespace eraser::testing {

std::string SyntheticUsersCsv(int owners, int rows_per_owner, uint64_t seed) {
  static const char* kRegions[] = {"north", "south", "east", "west"};
  Rng rng(seed);
  std::string csv = "user,region,premium,age,spend,note,churn\n";
  for (int r = 0; r < rows_per_owner; ++r) {
    for (int user = 0; user < owners; ++user) {
      const int region = static_cast<int>(rng.Uniform(4));
      const bool premium = rng.Uniform(3) == 0;
      const double age = 18 + static_cast<double>(rng.Uniform(60));
      const double spend = 100.0 * rng.UniformDouble() * (premium ? 3 : 1);
      // Leaving is likelier for low spenders in the south and the young.
      const double score = (region == 1 ? 1.0 : 0.0) +
                           (spend < 60 ? 1.0 : 0.0) + (age < 30 ? 0.8 : 0.0) -
                           (premium ? 0.7 : 0.0) + 0.6 * rng.UniformDouble();
      char line[256];
      std::snprintf(line, sizeof(line),
                    "%d,%s,%s,%.0f,%.2f,\"called, said \"\"hello\"\"\",%s\n",
                    1000 + user * 7, kRegions[region],
                    premium ? "TRUE" : "FALSE", age, spend,
                    score > 1.2 ? "leave" : "stay");
      csv += line;
    }
  }
  return csv;
}

}  // namespace eraser::testing
