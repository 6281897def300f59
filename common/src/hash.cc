#include "eraser/common/hash.h"

namespace eraser {

void Fingerprinter::Update(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    state_ ^= p[i];
    state_ *= 0x100000001b3ULL;
  }
}

void Fingerprinter::UpdateU64(uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  Update(bytes, sizeof(bytes));
}

uint64_t Fingerprinter::Finish() const { return Mix64(state_); }

uint64_t Fingerprint(std::string_view bytes) {
  Fingerprinter f;
  f.Update(bytes);
  return f.Finish();
}

uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace eraser
