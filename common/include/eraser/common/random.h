// A small deterministic random number generator. Unlike the standard
// library's distributions and std::shuffle, whose algorithms are unspecified,
// every value here is fixed by the seed on every platform and compiler, so
// partitions, data orders and initial weights are reproducible.
#ifndef ERASER_COMMON_RANDOM_H_
#define ERASER_COMMON_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>

namespace eraser {

// SplitMix64. Not thread-safe; use one per thread or task.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next();
  // Uniform in [0, bound), without modulo bias (Lemire's method). bound > 0.
  uint64_t Uniform(uint64_t bound);
  // Uniform in [0, 1) with 24 bits of precision, exactly representable as a
  // float.
  float UniformFloat();
  // Uniform in [0, 1) with 53 bits of precision.
  double UniformDouble();

  // Fisher-Yates shuffle of [first, last).
  template <typename It>
  void Shuffle(It first, It last) {
    const auto n = static_cast<uint64_t>(last - first);
    for (uint64_t i = n; i > 1; --i) {
      const uint64_t j = Uniform(i);
      using std::swap;
      swap(first[i - 1], first[j]);
    }
  }

 private:
  uint64_t state_;
};

// A seed derived from a base seed and a tuple of integers (shard, slice,
// epoch, ...). Distinct tuples give independent-looking seeds.
uint64_t DeriveSeed(uint64_t base, std::initializer_list<uint64_t> parts);

}  // namespace eraser

#endif  // ERASER_COMMON_RANDOM_H_
