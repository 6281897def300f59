// Fingerprints: stable 64-bit hashes for identifying data (a dataset, the
// samples a checkpoint was trained on). Not cryptographic. The value for a
// given input never changes between builds or machines, because fingerprints
// are persisted in data directories.
#ifndef ERASER_COMMON_HASH_H_
#define ERASER_COMMON_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace eraser {

// Incremental 64-bit FNV-1a over bytes, with a final avalanche so that close
// inputs give far-apart values.
class Fingerprinter {
 public:
  void Update(const void* data, std::size_t size);
  void Update(std::string_view bytes) { Update(bytes.data(), bytes.size()); }
  // Appends an integer as 8 little-endian bytes, whatever the host order.
  void UpdateU64(uint64_t value);
  uint64_t Finish() const;

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

uint64_t Fingerprint(std::string_view bytes);

// SplitMix64 finalizer: a bijective mix of a 64-bit value. Used to derive
// independent seeds from (seed, shard, slice, ...) tuples.
uint64_t Mix64(uint64_t x);

}  // namespace eraser

#endif  // ERASER_COMMON_HASH_H_
