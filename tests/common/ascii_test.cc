#include "eraser/common/ascii.h"

#include <gtest/gtest.h>

namespace eraser {
namespace {

TEST(Ascii, LowersOnlyAToZ) {
  EXPECT_EQ(AsciiLowercase("Bearer LOCALHOST [::1] @Z[`"),
            "bearer localhost [::1] @z[`");
  // Bytes above 0x7f are not letters here, whatever the C locale says:
  // Latin-1's 'É' (0xc9) and UTF-8's 'É' (0xc3 0x89) stay as they are.
  EXPECT_EQ(AsciiLowercase("\xc9\xc3\x89"), "\xc9\xc3\x89");
}

TEST(Ascii, ComparesIgnoringCase) {
  EXPECT_TRUE(EqualsIgnoringAsciiCase("Chunked", "chunked"));
  EXPECT_TRUE(EqualsIgnoringAsciiCase("", ""));
  EXPECT_FALSE(EqualsIgnoringAsciiCase("chunked ", "chunked"));
  // '@' and '`' sit next to 'A' and 'a': only letters fold.
  EXPECT_FALSE(EqualsIgnoringAsciiCase("@", "`"));
  EXPECT_FALSE(EqualsIgnoringAsciiCase("\xc9", "\xe9"));
  EXPECT_TRUE(StartsWithIgnoringAsciiCase("BEARER abc", "bearer "));
  EXPECT_FALSE(StartsWithIgnoringAsciiCase("bear", "bearer "));
}

TEST(Ascii, ClassifiesOnlyAsciiBytes) {
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool digit = b >= '0' && b <= '9';
    const bool alpha = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
    const bool hex = digit || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
    EXPECT_EQ(IsAsciiDigit(c), digit) << b;
    EXPECT_EQ(IsAsciiAlpha(c), alpha) << b;
    EXPECT_EQ(IsAsciiAlnum(c), digit || alpha) << b;
    EXPECT_EQ(IsAsciiHexDigit(c), hex) << b;
  }
}

}  // namespace
}  // namespace eraser
