#include "eraser/common/duration.h"

#include <cmath>

#include "eraser/common/ascii.h"
#include "eraser/common/numbers.h"

namespace eraser {
namespace {

struct Unit {
  const char* suffix;
  int64_t nanos;
};
// Longest suffixes first so that "ms" is not read as "m" + "s".
constexpr Unit kUnits[] = {{"us", 1'000},
                           {"ms", 1'000'000},
                           {"s", 1'000'000'000},
                           {"m", 60'000'000'000},
                           {"h", 3'600'000'000'000}};

}  // namespace

StatusOr<Duration> ParseDuration(std::string_view text) {
  auto bad = [&text](const char* why) {
    return InvalidArgumentError("bad duration '" + std::string(text) +
                                "': " + why);
  };
  std::size_t digits = 0;
  while (digits < text.size() &&
         (IsAsciiDigit(text[digits]) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0)
    return bad("expected a number followed by us, ms, s, m or h");
  const std::string number(text.substr(0, digits));
  const std::string_view suffix = text.substr(digits);
  if (number.find('.') != number.rfind('.') || number == ".") {
    return bad("malformed number");
  }
  const Unit* unit = nullptr;
  for (const Unit& u : kUnits) {
    if (suffix == u.suffix) unit = &u;
  }
  if (unit == nullptr) return bad("the unit must be us, ms, s, m or h");
  // Digits and one point: only a value beyond the double range fails.
  double value = 0;
  if (!ParseDouble(number, &value)) return bad("too long");
  const double nanos = value * static_cast<double>(unit->nanos);
  if (!std::isfinite(nanos) || nanos > 1000.0 * 86400e9) {
    return bad("too long");
  }
  return Duration(static_cast<int64_t>(std::llround(nanos)));
}

std::string FormatDuration(Duration d) {
  const int64_t nanos = d.count();
  for (int i = 4; i >= 0; --i) {
    if (nanos != 0 && nanos % kUnits[i].nanos == 0) {
      return std::to_string(nanos / kUnits[i].nanos) + kUnits[i].suffix;
    }
  }
  if (nanos == 0) return "0s";
  return std::to_string(nanos) + "ns";
}

}  // namespace eraser
