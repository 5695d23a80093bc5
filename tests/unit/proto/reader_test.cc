// Tests for BodyReader: every read fails cleanly at the end of the body and leaves it intact.
#include "proto/reader.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::proto {
namespace {

TEST(BodyReader, ReadsInOrder) {
  const std::string body(
      "\x01\x02\x03\x00\x00\x00\x04"
      "abc\0"
      "\xff\xff\xff\xff"
      "rest",
      19);
  BodyReader r(body);
  EXPECT_EQ(r.u8(), 1);
  EXPECT_EQ(r.u16(), 0x0203);
  EXPECT_EQ(r.u32(), 4u);
  EXPECT_EQ(r.cstring(), "abc");
  EXPECT_EQ(r.i32(), -1);
  EXPECT_EQ(r.remaining(), 4u);
  EXPECT_EQ(r.rest(), "rest");
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(r.rest(), "");
}

TEST(BodyReader, CstringWithoutNulFailsAndDoesNotAdvance) {
  BodyReader r(std::string_view("abc"));
  EXPECT_FALSE(r.cstring().has_value());
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(r.bytes(3), "abc");
}

TEST(BodyReader, EmptyCstringAndEmptyBody) {
  BodyReader r(std::string_view("\0", 1));
  EXPECT_EQ(r.cstring(), "");
  EXPECT_TRUE(r.at_end());
  EXPECT_FALSE(r.cstring().has_value());
  BodyReader empty(nullptr, 0);
  EXPECT_FALSE(empty.cstring().has_value());
  EXPECT_FALSE(empty.u8().has_value());
  EXPECT_EQ(empty.bytes(0), "");
  EXPECT_TRUE(empty.at_end());
}

TEST(BodyReader, IntegersPastTheEndFail) {
  const std::string three("\x01\x02\x03", 3);
  BodyReader r(three);
  EXPECT_FALSE(r.u32().has_value());
  EXPECT_FALSE(r.i32().has_value());
  EXPECT_EQ(r.remaining(), 3u);  // a failed read consumes nothing
  EXPECT_EQ(r.u16(), 0x0102);
  EXPECT_FALSE(r.u16().has_value());
  EXPECT_EQ(r.u8(), 3);
  EXPECT_FALSE(r.u8().has_value());
}

TEST(BodyReader, BytesPastTheEndFail) {
  BodyReader r(std::string_view("abcd"));
  EXPECT_FALSE(r.bytes(5).has_value());
  EXPECT_FALSE(r.bytes(static_cast<std::size_t>(-1)).has_value());
  EXPECT_EQ(r.bytes(4), "abcd");
  EXPECT_TRUE(r.at_end());
}

TEST(BodyReader, ViewsPointIntoTheBody) {
  const std::string body("k\0v\0", 4);
  BodyReader r(body);
  auto k = r.cstring();
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->data(), body.data());
}

}  // namespace
}  // namespace sluice::proto
