// Byte encodings for keys and values. Integers in keys are big-endian so that
// RocksDB's bytewise order equals numeric order; values use the same helpers.
#ifndef ERASER_STORAGE_CODING_H_
#define ERASER_STORAGE_CODING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace eraser::storage::internal {

inline void PutU8(std::string* out, uint8_t v) {
  out->push_back(static_cast<char>(v));
}
inline void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}
inline void PutU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

// Reads fields in order from a byte string; any read past the end, or a
// Finish() with bytes left, marks the decoder failed.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  uint8_t U8() { return static_cast<uint8_t>(Take(1)); }
  uint32_t U32() { return static_cast<uint32_t>(Take(4)); }
  uint64_t U64() { return Take(8); }
  // The next n bytes, or an empty view (and failure) if fewer remain.
  std::string_view Bytes(std::size_t n) {
    if (n > in_.size()) {
      ok_ = false;
      return {};
    }
    std::string_view out = in_.substr(0, n);
    in_.remove_prefix(n);
    return out;
  }
  std::string_view Rest() { return Bytes(in_.size()); }
  // True when every read succeeded and all bytes were consumed.
  bool Finish() const { return ok_ && in_.empty(); }
  bool ok() const { return ok_; }

 private:
  uint64_t Take(std::size_t n) {
    if (n > in_.size()) {
      ok_ = false;
      in_ = {};
      return 0;
    }
    uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v = (v << 8) | static_cast<unsigned char>(in_[i]);
    }
    in_.remove_prefix(n);
    return v;
  }

  std::string_view in_;
  bool ok_ = true;
};

}  // namespace eraser::storage::internal

#endif  // ERASER_STORAGE_CODING_H_
