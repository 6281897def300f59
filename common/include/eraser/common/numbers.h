// Decimal numbers in the text eraser writes and reads back (stored
// options, trace files, durations, policies, flags, protocol errors),
// whatever the C locale: a program that embeds eraser may call setlocale(),
// under which strtod, sscanf and printf read and write 1.5 as "1,5".
#ifndef ERASER_COMMON_NUMBERS_H_
#define ERASER_COMMON_NUMBERS_H_

#include <string>
#include <string_view>

namespace eraser {

// Parses all of `text` as a decimal number: an optional sign, digits with
// an optional fraction, an optional exponent ("-1", "+0.25", ".5", "1e-3").
// Correctly rounded. A value too small for a double reads as zero or a
// subnormal, as strtod reads it. False for anything else: empty text,
// spaces, hexadecimal, "inf", "nan", or a value beyond the double range.
bool ParseDouble(std::string_view text, double* out);

// `v` as printf's "%.<precision>g" writes it in the C locale. A negative
// precision is 6, as printf's; one above 60 is 60.
std::string FormatDouble(double v, int precision);

// `v` as printf's "%.<decimals>f" writes it in the C locale (decimals as
// precision above).
std::string FormatFixed(double v, int decimals);

}  // namespace eraser

#endif  // ERASER_COMMON_NUMBERS_H_
