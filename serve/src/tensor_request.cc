// A one-pass reader of Open Inference Protocol inference bodies; see
// tensor_request.h for what it accepts.
#include "eraser/serve/tensor_request.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "eraser/common/numbers.h"

namespace eraser::serve {
namespace {

// What a value is to the request, which decides what is kept of it.
enum class Role {
  kRoot,        // the body: must be an object
  kIgnored,     // anything we do not read (still parsed strictly)
  kInputList,   // the "inputs" array
  kTensor,      // an element of it
  kShapeList,   // the first input's "shape"
  kShapeItem,   // an element of it
  kDataList,    // the first input's "data", or an array nested in it
  kDataItem,    // an element of one
  kOutputList,  // the "outputs" array
  kOutputItem,  // an element of it
};

// Members of an object: which fields are read.
enum class Fields { kNone, kTop, kFirstInput, kOutput };

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

constexpr char kOutputMustBeNamed[] =
    "each of \"outputs\" must be an object with a string \"name\"";

class Reader {
 public:
  Reader(std::string_view body, TensorRequest* out)
      : begin_(body.data()),
        p_(body.data()),
        end_(body.data() + body.size()),
        out_(out) {}

  bool Read(std::string* error) {
    // As nlohmann::json does, a UTF-8 byte order mark may open the body.
    if (end_ - p_ >= 3 && static_cast<unsigned char>(p_[0]) == 0xEF &&
        static_cast<unsigned char>(p_[1]) == 0xBB &&
        static_cast<unsigned char>(p_[2]) == 0xBF) {
      p_ += 3;
    }
    bool ok = Value(Role::kRoot, 0, 0);
    if (ok) {
      SkipSpace();
      if (p_ != end_) ok = Syntax();
    }
    if (!ok) *error = error_;
    return ok;
  }

 private:
  bool Syntax() {
    return Fail("the body is not valid JSON (at byte " +
                std::to_string(p_ - begin_) + ")");
  }
  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  // A valid document this reader does not read as it stands (of the wrong
  // shape, or with a field it reads repeated): the general parser judges
  // it (TensorRequest::reread).
  bool Wrong(std::string why) {
    if (error_.empty()) out_->reread = true;
    return Fail(std::move(why));
  }

  void SkipSpace() {
    while (p_ != end_ &&
           (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) {
      ++p_;
    }
  }

  // One value in `role`; `depth` counts the enclosing arrays and objects,
  // `data_depth` the arrays nested inside "data".
  bool Value(Role role, int depth, int data_depth) {
    SkipSpace();
    if (p_ == end_) return Syntax();
    const char c = *p_;
    if (c == '{') return Object(role, depth + 1);
    if (c == '[') return Array(role, depth + 1, data_depth);
    if (c == '-' || IsDigit(c)) {
      const char* start = p_;
      double v;
      if (!Number(&v)) return false;
      // As the general parser reads "shape": an unsigned integer literal
      // (not 1.0, 6e0 or -0, which it reads as other kinds of number).
      if (role == Role::kShapeItem &&
          (*start == '-' || std::any_of(start, p_, [](char d) {
            return d == '.' || d == 'e' || d == 'E';
          }))) {
        return WrongScalar(role, true);
      }
      return NumberIn(role, v);
    }
    // A whole token is read before its place is judged, as a SAX parser
    // reports it.
    if (!(c == '"' ? String(nullptr) : Literal())) return false;
    return WrongScalar(role, /*number=*/false);
  }

  // A string, literal or number where the role does not want one: the
  // error, or true if it is simply ignored.
  bool WrongScalar(Role role, bool number) {
    switch (role) {
      case Role::kRoot:
        return Wrong("the body must be a JSON object");
      case Role::kDataItem:
        return Wrong(
            "\"data\" must hold only numbers: the input is a numeric tensor "
            "(FP32, FP64, UINT8, INT8, UINT16, INT16, INT32 or INT64); null, "
            "strings, booleans and BYTES or BOOL tensors are refused");
      case Role::kShapeItem:
        return Wrong(number ? "\"shape\" must hold non-negative integers"
                            : "\"shape\" must hold integers");
      case Role::kTensor:
        return Wrong("\"inputs\" must hold tensors");
      case Role::kOutputItem:
        return Wrong(kOutputMustBeNamed);
      default:
        return true;
    }
  }

  bool NumberIn(Role role, double v) {
    if (role == Role::kDataItem) {
      out_->data.push_back(v);
      return true;
    }
    if (role == Role::kShapeItem) {
      if (!(v >= 0 && v <= (1 << 24) && v == std::floor(v))) {
        return WrongScalar(role, true);
      }
      out_->shape.push_back(static_cast<int64_t>(v));
      return true;
    }
    return WrongScalar(role, true);
  }

  bool TooDeep(int depth) {
    if (depth <= TensorRequest::kMaxNesting) return false;
    Fail("the body is nested deeper than " +
         std::to_string(TensorRequest::kMaxNesting) + " levels");
    return true;
  }

  bool Object(Role role, int depth) {
    if (TooDeep(depth)) return false;
    Fields fields = Fields::kNone;
    // The fields of this object the reader reads, as seen: one repeated
    // sends the body to the general parser (where the last one counts).
    unsigned seen = 0;
    const std::size_t outputs_before = out_->outputs.size();
    switch (role) {
      case Role::kRoot:
        fields = Fields::kTop;
        break;
      case Role::kTensor:
        fields = ++out_->inputs == 1 ? Fields::kFirstInput : Fields::kNone;
        break;
      case Role::kOutputItem:
        fields = Fields::kOutput;
        break;
      case Role::kDataItem:
      case Role::kShapeItem:
        return WrongScalar(role, false);
      default:
        break;
    }
    ++p_;  // '{'
    SkipSpace();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return fields != Fields::kOutput || Wrong(kOutputMustBeNamed);
    }
    std::string key;
    while (true) {
      SkipSpace();
      if (p_ == end_ || *p_ != '"') return Syntax();
      key.clear();
      if (!String(&key)) return false;
      // Only written with an escape can it reach this reader (the route
      // sends a body that says "parameters" to the general parser), which
      // reads what it holds.
      if (key == "parameters") {
        return Wrong("\"parameters\" is read by the general parser");
      }
      SkipSpace();
      if (p_ == end_ || *p_ != ':') return Syntax();
      ++p_;
      if (!Member(fields, key, depth, &seen)) return false;
      SkipSpace();
      if (p_ == end_) return Syntax();
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return Syntax();
      ++p_;
      if (fields == Fields::kOutput && out_->outputs.size() == outputs_before) {
        return Wrong(kOutputMustBeNamed);
      }
      return true;
    }
  }

  // The bit of `key` among the fields an object of `fields` reads (0: one
  // it does not read).
  static unsigned FieldBit(Fields fields, const std::string& key) {
    static constexpr const char* kTop[] = {"id", "inputs", "outputs"};
    static constexpr const char* kInput[] = {"name", "datatype", "shape",
                                             "data"};
    const char* const* names = nullptr;
    std::size_t n = 0;
    if (fields == Fields::kTop) {
      names = kTop;
      n = 3;
    } else if (fields == Fields::kFirstInput) {
      names = kInput;
      n = 4;
    } else if (fields == Fields::kOutput) {
      names = kInput;  // "name"
      n = 1;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (key == names[i]) return 1u << i;
    }
    return 0;
  }

  // The value of `key` in an object whose `fields` are read.
  bool Member(Fields fields, const std::string& key, int depth,
              unsigned* seen) {
    if (const unsigned bit = FieldBit(fields, key); bit != 0) {
      if ((*seen & bit) != 0) {
        return Wrong("the body repeats \"" + key + "\"");
      }
      *seen |= bit;
    }
    SkipSpace();
    const char c = p_ == end_ ? '\0' : *p_;
    const bool is_string = c == '"', is_array = c == '[';
    std::string* text = nullptr;
    Role role = Role::kIgnored;
    if (fields == Fields::kTop) {
      if (key == "id" && is_string) text = &out_->id.emplace();
      // The protocol's id is a string echoed in the answer: another type
      // would be dropped without a word.
      if (key == "id" && !is_string && c != 'n') {
        return Wrong("\"id\" must be a string");
      }
      if (key == "inputs" && is_array) role = Role::kInputList;
      if (key == "outputs") {
        if (!is_array) return Wrong("\"outputs\" must be an array");
        out_->has_outputs = true;
        role = Role::kOutputList;
      }
    } else if (fields == Fields::kFirstInput) {
      // Of another type, the general parser judges the body (it refuses
      // all but "data" as a lone number).
      if ((key == "name" || key == "datatype") && !is_string) {
        return Wrong("\"" + key + "\" must be a string");
      }
      if ((key == "shape" || key == "data") && !is_array) {
        return Wrong("\"" + key + "\" must be an array");
      }
      if (key == "name" && is_string) {
        out_->has_name = true;
        text = &out_->name;
      } else if (key == "datatype" && is_string) {
        out_->has_datatype = true;
        text = &out_->datatype;
      } else if (key == "shape" && is_array) {
        out_->has_shape = true;
        out_->shape.clear();
        role = Role::kShapeList;
      } else if (key == "data" && is_array) {
        out_->has_data = true;
        out_->data.clear();
        role = Role::kDataList;
      }
    } else if (fields == Fields::kOutput && key == "name") {
      if (!is_string) return Wrong(kOutputMustBeNamed);
      text = &out_->outputs.emplace_back();
    }
    if (text != nullptr) {
      text->clear();
      return String(text);
    }
    return Value(role, depth, 0);
  }

  bool Array(Role role, int depth, int data_depth) {
    if (TooDeep(depth)) return false;
    Role element = Role::kIgnored;
    switch (role) {
      case Role::kRoot:
      case Role::kTensor:
      case Role::kShapeItem:
      case Role::kOutputItem:
        return WrongScalar(role, false);
      case Role::kDataItem:  // an array nested in "data"
        if (++data_depth > TensorRequest::kMaxDataNesting) {
          return Wrong("\"data\" is nested too deeply");
        }
        element = Role::kDataItem;
        break;
      case Role::kDataList:
        element = Role::kDataItem;
        break;
      case Role::kInputList:
        element = Role::kTensor;
        break;
      case Role::kShapeList:
        element = Role::kShapeItem;
        break;
      case Role::kOutputList:
        element = Role::kOutputItem;
        break;
      default:
        break;
    }
    ++p_;  // '['
    SkipSpace();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      const bool ok = element == Role::kDataItem
                          ? DataElement(depth, data_depth)
                          : Value(element, depth, 0);
      if (!ok) return false;
      SkipSpace();
      if (p_ == end_) return Syntax();
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != ']') return Syntax();
      ++p_;
      return true;
    }
  }

  // One element of "data": the hot path, a number, read without the
  // general dispatch.
  bool DataElement(int depth, int data_depth) {
    SkipSpace();
    if (p_ != end_ && (*p_ == '-' || IsDigit(*p_))) {
      double v;
      if (!Number(&v)) return false;
      out_->data.push_back(v);
      return true;
    }
    return Value(Role::kDataItem, depth, data_depth);
  }

  // A number by RFC 8259's grammar, converted correctly rounded.
  bool Number(double* v) {
    const char* start = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_) return Syntax();
    if (*p_ == '0') {
      ++p_;
    } else if (IsDigit(*p_)) {
      while (p_ != end_ && IsDigit(*p_)) ++p_;
    } else {
      return Syntax();
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return Syntax();
      while (p_ != end_ && IsDigit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return Syntax();
      while (p_ != end_ && IsDigit(*p_)) ++p_;
    }
    const auto [ptr, ec] = std::from_chars(start, p_, *v);
    if (ec == std::errc() && ptr == p_) return true;
    // Out of range. An underflow reads as strtod reads it (zero or a
    // subnormal), as a general JSON parser gives it; an overflow is
    // refused, as nlohmann refuses it.
    if (ParseDouble(std::string_view(start, p_ - start), v)) return true;
    return Fail("the number at byte " + std::to_string(start - begin_) +
                " is beyond the double range");
  }

  bool Literal() {
    for (std::string_view word : {"true", "false", "null"}) {
      if (static_cast<std::size_t>(end_ - p_) >= word.size() &&
          std::string_view(p_, word.size()) == word) {
        p_ += word.size();
        return true;
      }
    }
    return Syntax();
  }

  // A string, decoded into `out` when not null; strict about escapes,
  // control characters and UTF-8 (RFC 3629).
  bool String(std::string* out) {
    ++p_;  // '"'
    while (true) {
      if (p_ == end_) return Syntax();
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return Syntax();
      if (c == '\\') {
        if (!Escape(out)) return false;
        continue;
      }
      if (c < 0x80) {
        if (out != nullptr) out->push_back(static_cast<char>(c));
        ++p_;
        continue;
      }
      if (!Utf8(out)) return false;
    }
  }

  bool Escape(std::string* out) {
    ++p_;  // '\\'
    if (p_ == end_) return Syntax();
    const char e = *p_++;
    char plain = 0;
    switch (e) {
      case '"':
      case '\\':
      case '/':
        plain = e;
        break;
      case 'b':
        plain = '\b';
        break;
      case 'f':
        plain = '\f';
        break;
      case 'n':
        plain = '\n';
        break;
      case 'r':
        plain = '\r';
        break;
      case 't':
        plain = '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!Hex4(&cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return Syntax();  // lone low half
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low = 0;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return Syntax();
          p_ += 2;
          if (!Hex4(&low)) return false;
          if (low < 0xDC00 || low > 0xDFFF) return Syntax();
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        if (out != nullptr) AppendUtf8(cp, out);
        return true;
      }
      default:
        --p_;
        return Syntax();
    }
    if (out != nullptr) out->push_back(plain);
    return true;
  }

  bool Hex4(uint32_t* cp) {
    if (end_ - p_ < 4) return Syntax();
    *cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = HexValue(p_[i]);
      if (h < 0) return Syntax();
      *cp = *cp * 16 + static_cast<uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  // One multi-byte UTF-8 sequence (the table of RFC 3629, section 4).
  bool Utf8(std::string* out) {
    const unsigned char c = static_cast<unsigned char>(*p_);
    int follow;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c >= 0xC2 && c <= 0xDF) {
      follow = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      follow = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      follow = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return Syntax();
    }
    if (end_ - p_ <= follow) return Syntax();
    for (int i = 1; i <= follow; ++i) {
      const unsigned char b = static_cast<unsigned char>(p_[i]);
      if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) {
        p_ += i;
        return Syntax();
      }
    }
    if (out != nullptr) out->append(p_, static_cast<std::size_t>(follow) + 1);
    p_ += follow + 1;
    return true;
  }

  const char* const begin_;
  const char* p_;
  const char* const end_;
  TensorRequest* const out_;
  std::string error_;
};

}  // namespace

bool ParseTensorRequest(std::string_view body, TensorRequest* out,
                        std::string* error) {
  *out = TensorRequest();
  // Every number takes at least two bytes with its separator.
  out->data.reserve(std::min<std::size_t>(body.size() / 2, 1 << 22));
  return Reader(body, out).Read(error);
}

}  // namespace eraser::serve
