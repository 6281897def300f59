// LC_NUMERIC set to German (de_DE.UTF-8: 1.5 is written "1,5") for the
// object's life, as a program that embeds eraser may set it with
// setlocale(); the previous LC_NUMERIC again afterwards. Process-wide, as
// the host's call would be: use it only where no other thread is at work
// (the code under test runs on the test's thread). The locale is made with
// localedef (Debian's `locales`, in scripts/packages.txt) in a temporary
// directory; the test fails when it cannot be.
#ifndef ERASER_TESTS_TESTING_COMMA_LOCALE_H_
#define ERASER_TESTS_TESTING_COMMA_LOCALE_H_

#include <string>

#include "testing/temp_dir.h"

namespace eraser::testing {

class CommaDecimalLocale {
 public:
  CommaDecimalLocale();
  ~CommaDecimalLocale();
  CommaDecimalLocale(const CommaDecimalLocale&) = delete;
  CommaDecimalLocale& operator=(const CommaDecimalLocale&) = delete;

  // Whether the locale is in effect (printf writes "1,5").
  bool active() const { return active_; }

 private:
  TempDir dir_;
  std::string previous_;  // LC_NUMERIC before; empty if never tried
  bool active_ = false;
};

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_COMMA_LOCALE_H_
