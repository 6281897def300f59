#include "testing/comma_locale.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace eraser::testing {

CommaDecimalLocale::CommaDecimalLocale() {
  const std::string command = "localedef -i de_DE -f UTF-8 '" +
                              dir_.Child("de_DE.UTF-8") + "' > /dev/null 2>&1";
  // localedef may warn with a non-zero status and still write the locale.
  (void)std::system(command.c_str());
  if (!std::filesystem::exists(dir_.Child("de_DE.UTF-8/LC_NUMERIC"))) {
    ADD_FAILURE() << "localedef did not make de_DE.UTF-8 (is Debian's "
                     "'locales' package installed?)";
    return;
  }
  // newlocale reads the files at once; LOCPATH is needed only meanwhile.
  const char* old_path = std::getenv("LOCPATH");
  const std::string saved = old_path == nullptr ? "" : old_path;
  setenv("LOCPATH", dir_.path().c_str(), 1);
  const locale_t base = duplocale(LC_GLOBAL_LOCALE);
  locale_ = base == locale_t(0)
                ? locale_t(0)
                : newlocale(LC_NUMERIC_MASK, "de_DE.UTF-8", base);
  if (locale_ == locale_t(0) && base != locale_t(0)) freelocale(base);
  if (old_path == nullptr) {
    unsetenv("LOCPATH");
  } else {
    setenv("LOCPATH", saved.c_str(), 1);
  }
  if (locale_ == locale_t(0)) {
    ADD_FAILURE() << "newlocale(LC_NUMERIC, \"de_DE.UTF-8\") failed";
    return;
  }
  previous_ = uselocale(locale_);
  char text[16];
  std::snprintf(text, sizeof(text), "%.1f", 1.5);
  active_ = std::string(text) == "1,5";
  if (!active_) ADD_FAILURE() << "de_DE.UTF-8 writes 1.5 as " << text;
}

CommaDecimalLocale::~CommaDecimalLocale() {
  if (locale_ == locale_t(0)) return;
  uselocale(previous_);
  freelocale(locale_);
}

}  // namespace eraser::testing
