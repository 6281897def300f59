// The .npy reader. Format: the magic "\x93NUMPY", a major and minor version
// byte, the header length (2 bytes little-endian in version 1, 4 bytes in
// versions 2 and 3), then a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }
// padded with spaces and ended by '\n', then the raw data.
#include "eraser/datasets/npy.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace eraser::datasets {
namespace {

using DType = NpyArray::DType;

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
constexpr uint64_t kMaxElements = uint64_t{1} << 34;

// 1e+300, not the 301 digits std::to_string prints.
std::string FormatValue(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", v);
  return text;
}

std::size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kInt8:
    case DType::kUint8:
      return 1;
    case DType::kInt16:
    case DType::kUint16:
      return 2;
    case DType::kInt32:
    case DType::kUint32:
    case DType::kFloat32:
      return 4;
    case DType::kInt64:
    case DType::kUint64:
    case DType::kFloat64:
      return 8;
  }
  return 1;
}

// A strict reader of the header's dict literal.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path)
      : text_(text), path_(path) {}

  Status Parse(std::string* descr, bool* fortran,
               std::vector<uint64_t>* shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    RETURN_IF_ERROR(Expect('{'));
    while (true) {
      Skip();
      if (Peek() == '}') break;
      std::string key;
      RETURN_IF_ERROR(String(&key));
      RETURN_IF_ERROR(Expect(':'));
      Skip();
      if (key == "descr") {
        RETURN_IF_ERROR(String(descr));
        have_descr = true;
      } else if (key == "fortran_order") {
        RETURN_IF_ERROR(Bool(fortran));
        have_order = true;
      } else if (key == "shape") {
        RETURN_IF_ERROR(Tuple(shape));
        have_shape = true;
      } else {
        return Error("unknown header key '" + key + "'");
      }
      Skip();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != '}') return Error("expected ',' or '}'");
    }
    ++pos_;
    Skip();
    if (pos_ != text_.size()) return Error("text after the header dict");
    if (!have_descr || !have_order || !have_shape) {
      return Error("the header lacks descr, fortran_order or shape");
    }
    return OkStatus();
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void Skip() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n')) {
      ++pos_;
    }
  }
  Status Error(const std::string& why) const {
    return InvalidArgumentError(path_ + ": bad .npy header: " + why);
  }
  Status Expect(char c) {
    Skip();
    if (Peek() != c) return Error(std::string("expected '") + c + "'");
    ++pos_;
    return OkStatus();
  }
  Status String(std::string* out) {
    Skip();
    const char quote = Peek();
    if (quote != '\'' && quote != '"') return Error("expected a string");
    const std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) return Error("unterminated string");
    *out = std::string(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return OkStatus();
  }
  Status Bool(bool* out) {
    if (text_.substr(pos_, 4) == "True") {
      *out = true;
      pos_ += 4;
    } else if (text_.substr(pos_, 5) == "False") {
      *out = false;
      pos_ += 5;
    } else {
      return Error("fortran_order must be True or False");
    }
    return OkStatus();
  }
  Status Tuple(std::vector<uint64_t>* out) {
    RETURN_IF_ERROR(Expect('('));
    while (true) {
      Skip();
      if (Peek() == ')') break;
      uint64_t v = 0;
      std::size_t digits = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        if (++digits > 15) return Error("a dimension is too large");
        v = v * 10 + static_cast<uint64_t>(text_[pos_++] - '0');
      }
      if (digits == 0) return Error("a dimension is not an integer");
      // numpy writes 'L' suffixes in files from Python 2.
      if (Peek() == 'L') ++pos_;
      out->push_back(v);
      Skip();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != ')') return Error("expected ',' or ')' in the shape");
    }
    ++pos_;
    return OkStatus();
  }

  std::string_view text_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

StatusOr<DType> ParseDescr(const std::string& descr, const std::string& path) {
  static const std::map<std::string, DType> kTypes = {
      {"i1", DType::kInt8},   {"u1", DType::kUint8},  {"i2", DType::kInt16},
      {"u2", DType::kUint16}, {"i4", DType::kInt32},  {"u4", DType::kUint32},
      {"i8", DType::kInt64},  {"u8", DType::kUint64}, {"f4", DType::kFloat32},
      {"f8", DType::kFloat64}};
  if (descr.size() == 3) {
    const char order = descr[0];
    auto it = kTypes.find(descr.substr(1));
    if (it != kTypes.end()) {
      const bool one_byte = DTypeSize(it->second) == 1;
      if (order == '<' || order == '=' || (order == '|' && one_byte)) {
        return it->second;
      }
      if (order == '>' && !one_byte) {
        return InvalidArgumentError(path + ": big-endian data ('" + descr +
                                    "') is not supported; save it with "
                                    "arr.astype(arr.dtype.newbyteorder('<'))");
      }
    }
  }
  return InvalidArgumentError(
      path + ": unsupported dtype '" + descr +
      "' (eraser reads little-endian integer, float32 and float64 "
      "arrays: features as uint8, float32 or float64; labels and owners as "
      "integers)");
}

}  // namespace

uint64_t NpyArray::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

int64_t NpyArray::IntegerAt(uint64_t i) const {
  const uint8_t* p = data.data() + i * DTypeSize(dtype);
  switch (dtype) {
    case DType::kInt8:
      return static_cast<int8_t>(p[0]);
    case DType::kUint8:
      return p[0];
    case DType::kInt16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case DType::kUint16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case DType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kUint32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kInt64:
    case DType::kUint64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    default:
      return 0;
  }
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kInt8:
      return "int8";
    case DType::kUint8:
      return "uint8";
    case DType::kInt16:
      return "int16";
    case DType::kUint16:
      return "uint16";
    case DType::kInt32:
      return "int32";
    case DType::kUint32:
      return "uint32";
    case DType::kInt64:
      return "int64";
    case DType::kUint64:
      return "uint64";
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
  }
  return "?";
}

StatusOr<NpyArray> ParseNpy(std::string_view bytes, const std::string& path) {
  if (bytes.size() < kMagicSize + 2 ||
      std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    return InvalidArgumentError(path + " is not a .npy file (bad magic)");
  }
  const auto major = static_cast<uint8_t>(bytes[6]);
  std::size_t offset = kMagicSize + 2;
  uint64_t header_len = 0;
  if (major == 1) {
    if (bytes.size() < offset + 2) {
      return InvalidArgumentError(path + ": truncated .npy header");
    }
    header_len =
        static_cast<uint8_t>(bytes[offset]) |
        (static_cast<uint64_t>(static_cast<uint8_t>(bytes[offset + 1])) << 8);
    offset += 2;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < offset + 4) {
      return InvalidArgumentError(path + ": truncated .npy header");
    }
    for (int i = 0; i < 4; ++i) {
      header_len |=
          static_cast<uint64_t>(static_cast<uint8_t>(bytes[offset + i]))
          << (8 * i);
    }
    offset += 4;
  } else {
    return InvalidArgumentError(path + ": unsupported .npy version " +
                                std::to_string(major));
  }
  if (bytes.size() - offset < header_len) {
    return InvalidArgumentError(path + ": truncated .npy header");
  }
  std::string descr;
  bool fortran = false;
  NpyArray array;
  RETURN_IF_ERROR(HeaderParser(bytes.substr(offset, header_len), path)
                      .Parse(&descr, &fortran, &array.shape));
  offset += header_len;
  ASSIGN_OR_RETURN(array.dtype, ParseDescr(descr, path));
  if (fortran) {
    return InvalidArgumentError(path +
                                ": Fortran-order arrays are not supported; "
                                "save np.ascontiguousarray(arr)");
  }
  uint64_t n = 1;
  for (uint64_t d : array.shape) {
    if (d != 0 && n > kMaxElements / d) {
      return InvalidArgumentError(path + ": the array is implausibly large");
    }
    n *= d;
  }
  const uint64_t want = n * DTypeSize(array.dtype);
  const uint64_t have = bytes.size() - offset;
  if (have < want) {
    return InvalidArgumentError(path + ": truncated: " + std::to_string(have) +
                                " data bytes for " + std::to_string(want));
  }
  if (have > want) {
    return InvalidArgumentError(path + ": " + std::to_string(have - want) +
                                " bytes after the array data");
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(offset),
                    bytes.end());
  return array;
}

StatusOr<NpyArray> ReadNpy(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError(path + " is a directory, not a .npy file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path);
  // The magic first: a file that is not .npy at all (a device, a
  // gigabyte of something else) is refused before it is read whole.
  char magic[kMagicSize] = {};
  in.read(magic, sizeof magic);
  if (in.gcount() == sizeof magic &&
      std::memcmp(magic, kMagic, kMagicSize) != 0) {
    return InvalidArgumentError(path + " is not a .npy file (bad magic)");
  }
  std::ostringstream text;
  text.write(magic, in.gcount());
  if (in) text << in.rdbuf();
  if (in.bad()) return NotFoundError("cannot read " + path);
  return ParseNpy(text.str(), path);
}

StatusOr<Split> NpySplit(const NpyArray& x, const NpyArray& y,
                         const NpyArray* owners,
                         const std::vector<std::string>& names,
                         uint32_t* max_label) {
  if (x.shape.empty()) {
    return InvalidArgumentError(names[0] + ": the feature array is a scalar");
  }
  const uint64_t n = x.shape[0];
  if (n == 0) return InvalidArgumentError(names[0] + " holds no samples");
  if (y.shape.size() != 1 || y.shape[0] != n) {
    return InvalidArgumentError(names[1] + ": labels must be one axis of " +
                                std::to_string(n) +
                                " values (one per sample "
                                "of " +
                                names[0] + ")");
  }
  if (!y.is_integer()) {
    return InvalidArgumentError(names[1] + ": labels must be integers, not " +
                                DTypeName(y.dtype));
  }
  Split split;
  if (x.shape.size() == 1) {
    split.shape = {1};
  } else {
    for (std::size_t i = 1; i < x.shape.size(); ++i) {
      if (x.shape[i] == 0 || x.shape[i] > UINT32_MAX) {
        return InvalidArgumentError(names[0] + ": a feature dimension is 0");
      }
      split.shape.push_back(static_cast<uint32_t>(x.shape[i]));
    }
  }
  const std::size_t per_sample = split.feature_count();
  const uint64_t values = n * per_sample;
  switch (x.dtype) {
    case DType::kUint8:
      split.type = FeatureType::kPixel;
      split.features = x.data;
      break;
    case DType::kFloat32:
    case DType::kFloat64: {
      split.type = FeatureType::kFloat32;
      split.features.resize(values * sizeof(float));
      for (uint64_t i = 0; i < values; ++i) {
        double v = 0;
        if (x.dtype == DType::kFloat32) {
          float f;
          std::memcpy(&f, x.data.data() + i * 4, 4);
          v = f;
        } else {
          std::memcpy(&v, x.data.data() + i * 8, 8);
        }
        if (!std::isfinite(v) ||
            std::fabs(v) > std::numeric_limits<float>::max()) {
          return InvalidArgumentError(
              names[0] + ": sample " + std::to_string(i / per_sample) +
              " holds " + FormatValue(v) +
              (std::isfinite(v) ? ", outside the float32 range"
                                : ", not a finite number"));
        }
        const float f = static_cast<float>(v);
        std::memcpy(split.features.data() + i * 4, &f, 4);
      }
      break;
    }
    default:
      return InvalidArgumentError(names[0] + ": unsupported feature dtype " +
                                  DTypeName(x.dtype) +
                                  " (accepted: uint8, float32, float64)");
  }
  *max_label = 0;
  split.labels.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t label = y.IntegerAt(i);
    if (label < 0 || label >= static_cast<int64_t>(kMaxClasses)) {
      return InvalidArgumentError(names[1] + ": label " +
                                  std::to_string(label) + " of sample " +
                                  std::to_string(i) + " is outside [0, " +
                                  std::to_string(kMaxClasses) + ")");
    }
    split.labels[i] = static_cast<uint32_t>(label);
    *max_label = std::max(*max_label, split.labels[i]);
  }
  if (owners != nullptr) {
    if (owners->shape.size() != 1 || owners->shape[0] != n ||
        !owners->is_integer()) {
      return InvalidArgumentError(names[2] + ": owners must be one axis of " +
                                  std::to_string(n) + " integers");
    }
    split.owners.resize(n);
    for (uint64_t i = 0; i < n; ++i) {
      const int64_t owner = owners->IntegerAt(i);
      // IntegerAt reads a uint64 of 2^63 and above as negative.
      if (owner < 0) {
        const std::string value =
            owners->dtype == DType::kUint64
                ? std::to_string(static_cast<uint64_t>(owner))
                : std::to_string(owner);
        return InvalidArgumentError(names[2] + ": owner of sample " +
                                    std::to_string(i) + ", " + value +
                                    ", is not in [0, 2^63)");
      }
      split.owners[i] = static_cast<uint64_t>(owner);
    }
  }
  RETURN_IF_ERROR(split.Validate());
  return split;
}

}  // namespace eraser::datasets
