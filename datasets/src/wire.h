// Little-endian fixed-width encoding of integers into byte strings, and a
// bounds-checked reader, for the module's stored formats.
#ifndef ERASER_DATASETS_SRC_WIRE_H_
#define ERASER_DATASETS_SRC_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace eraser::datasets::wire {

inline void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

// Reads from a byte string; every call fails (returns false) instead of
// reading past the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::size_t remaining() const { return bytes_.size() - pos_; }
  bool Expect(const char* magic, std::size_t n) {
    if (remaining() < n || std::memcmp(bytes_.data() + pos_, magic, n) != 0) {
      return false;
    }
    pos_ += n;
    return true;
  }
  bool U32(uint32_t* v) { return Int(v, 4); }
  bool U64(uint64_t* v) { return Int(v, 8); }
  bool Bytes(void* out, std::size_t n) {
    if (remaining() < n) return false;
    std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
    return true;
  }

 private:
  template <typename T>
  bool Int(T* v, int n) {
    if (remaining() < static_cast<std::size_t>(n)) return false;
    T out = 0;
    for (int i = 0; i < n; ++i) {
      out |= static_cast<T>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += static_cast<std::size_t>(n);
    *v = out;
    return true;
  }

  std::string_view bytes_;
  std::size_t pos_ = 0;
};

}  // namespace eraser::datasets::wire

#endif  // ERASER_DATASETS_SRC_WIRE_H_
