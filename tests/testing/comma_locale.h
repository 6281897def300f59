// The calling thread's LC_NUMERIC set to German (de_DE.UTF-8: 1.5 is
// written "1,5") for the object's life, as a program that embeds eraser may
// set it with setlocale(); the thread's previous locale again afterwards.
// Per thread (uselocale), so that threads other tests left behind are not
// touched; the code under test must run on the calling thread. The locale
// is made with localedef (Debian's `locales`, in scripts/packages.txt) in a
// temporary directory; the test fails when it cannot be.
#ifndef ERASER_TESTS_TESTING_COMMA_LOCALE_H_
#define ERASER_TESTS_TESTING_COMMA_LOCALE_H_

#include <locale.h>

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
  locale_t locale_ = locale_t(0);
  locale_t previous_ = locale_t(0);
  bool active_ = false;
};

}  // namespace eraser::testing

#endif  // ERASER_TESTS_TESTING_COMMA_LOCALE_H_
