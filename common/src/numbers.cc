#include "eraser/common/numbers.h"

#include <locale.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <system_error>

namespace eraser {
namespace {

std::string ToChars(double v, std::chars_format format, int precision) {
  // %.*g and %.*f of a double: at most 309 integer digits, the decimals,
  // a sign, a point and an exponent.
  char buf[400];
  const int p = precision < 0 ? 6 : precision > 60 ? 60 : precision;
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, format, p);
  if (ec != std::errc()) return std::string();
  return std::string(buf, end);
}

}  // namespace

bool ParseDouble(std::string_view text, double* out) {
  if (text.empty() ||
      text.find_first_not_of("0123456789.eE+-") != std::string_view::npos) {
    return false;
  }
  std::string_view number = text;
  // std::from_chars takes no '+', which strtod took.
  if (number.front() == '+') {
    number.remove_prefix(1);
    if (number.empty() || number.front() == '+' || number.front() == '-') {
      return false;
    }
  }
  double v = 0;
  const char* first = number.data();
  const char* last = number.data() + number.size();
  const auto [ptr, ec] = std::from_chars(first, last, v);
  if (ptr != last) return false;
  if (ec == std::errc::result_out_of_range) {
    // Beyond the range, or an underflow: strtod in the C locale tells which
    // and rounds an underflow as strtod does.
    static const locale_t kCLocale =
        newlocale(LC_NUMERIC_MASK, "C", locale_t(0));
    if (kCLocale == locale_t(0)) return false;
    const std::string copy(text);
    v = strtod_l(copy.c_str(), nullptr, kCLocale);
    if (!std::isfinite(v)) return false;
  } else if (ec != std::errc()) {
    return false;
  }
  *out = v;
  return true;
}

std::string FormatDouble(double v, int precision) {
  return ToChars(v, std::chars_format::general, precision);
}

std::string FormatFixed(double v, int decimals) {
  return ToChars(v, std::chars_format::fixed, decimals);
}

}  // namespace eraser
