// ASCII letters and digits, whatever the C locale: HTTP field values, host
// names, URL schemes and CSV booleans are ASCII tokens, and a program that
// embeds eraser may call setlocale(), under which std::tolower and
// std::isalnum also map or admit some bytes above 0x7f.
#ifndef ERASER_COMMON_ASCII_H_
#define ERASER_COMMON_ASCII_H_

#include <string>
#include <string_view>

namespace eraser {

constexpr bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

constexpr bool IsAsciiAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

constexpr bool IsAsciiAlnum(char c) {
  return IsAsciiAlpha(c) || IsAsciiDigit(c);
}

constexpr bool IsAsciiHexDigit(char c) {
  return IsAsciiDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

constexpr char AsciiToLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// `s` with A to Z lowered; every other byte unchanged.
inline std::string AsciiLowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiToLower(c);
  return out;
}

inline bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiToLower(a[i]) != AsciiToLower(b[i])) return false;
  }
  return true;
}

inline bool StartsWithIgnoringAsciiCase(std::string_view s,
                                        std::string_view prefix) {
  return s.size() >= prefix.size() &&
         EqualsIgnoringAsciiCase(s.substr(0, prefix.size()), prefix);
}

}  // namespace eraser

#endif  // ERASER_COMMON_ASCII_H_
