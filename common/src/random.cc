#include "eraser/common/random.h"

#include "eraser/common/hash.h"

namespace eraser {

uint64_t Rng::Next() {
  state_ += 0x9e3779b97f4a7c15ULL;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rng::Uniform(uint64_t bound) {
  // Lemire, "Fast random integer generation in an interval" (2019).
  unsigned __int128 m = static_cast<unsigned __int128>(Next()) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = -bound % bound;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(Next()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

float Rng::UniformFloat() {
  return static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f);
}

double Rng::UniformDouble() {
  return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t DeriveSeed(uint64_t base, std::initializer_list<uint64_t> parts) {
  uint64_t seed = Mix64(base);
  for (uint64_t part : parts) seed = Mix64(seed ^ Mix64(part + 1));
  return seed;
}

}  // namespace eraser
