// Tests for base64: RFC 4648 vectors and strict rejection of everything non-canonical.
#include <gtest/gtest.h>

#include <string>

#include "proto/auth/base64.h"

namespace sluice::proto::auth {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [raw, b64] : vectors) {
    EXPECT_EQ(base64_encode(std::string_view(raw)), b64);
    auto d = base64_decode(b64);
    ASSERT_TRUE(d.has_value()) << b64;
    EXPECT_EQ(*d, raw);
  }
}

TEST(Base64, AllByteValuesRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 7) {
    auto s = all.substr(0, n);
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
}

TEST(Base64, RejectsGarbage) {
  for (const char* bad : {
           "Zg",        // missing padding
           "Zg=",       // short padding
           "Zm9vY",     // length not a multiple of 4
           "Zg==Zg==",  // padding in the middle
           "=Zg=",      // padding first
           "Z===",      // three '='
           "====",      //
           "Zh==",      // non-zero padding bits
           "Zm9=",      // non-zero padding bits, one '='
           "Zm9v\n",    // whitespace
           "Zm 9",      //
           "Zm9-",      // URL-safe alphabet
           "Zm9_",      //
           "Zm9\x80",   // high byte
       }) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(base64_decode(std::string_view("Zm9\0", 4)).has_value());
}

}  // namespace
}  // namespace sluice::proto::auth
