#include "testing/comma_locale.h"

#include <gtest/gtest.h>

#include <clocale>
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
  const char* previous = std::setlocale(LC_NUMERIC, nullptr);
  previous_ = previous == nullptr ? "C" : previous;
  // setlocale reads the files at once; LOCPATH is needed only meanwhile.
  // (newlocale would switch one thread only, but glibc 2.36's leaks its
  // copy of LOCPATH, which LeakSanitizer reports.)
  const char* old_path = std::getenv("LOCPATH");
  const std::string saved_path = old_path == nullptr ? "" : old_path;
  setenv("LOCPATH", dir_.path().c_str(), 1);
  const bool set = std::setlocale(LC_NUMERIC, "de_DE.UTF-8") != nullptr;
  if (old_path == nullptr) {
    unsetenv("LOCPATH");
  } else {
    setenv("LOCPATH", saved_path.c_str(), 1);
  }
  if (!set) {
    ADD_FAILURE() << "setlocale(LC_NUMERIC, \"de_DE.UTF-8\") failed";
    return;
  }
  char text[16];
  std::snprintf(text, sizeof(text), "%.1f", 1.5);
  active_ = std::string(text) == "1,5";
  if (!active_) ADD_FAILURE() << "de_DE.UTF-8 writes 1.5 as " << text;
}

CommaDecimalLocale::~CommaDecimalLocale() {
  if (!previous_.empty()) std::setlocale(LC_NUMERIC, previous_.c_str());
}

}  // namespace eraser::testing
