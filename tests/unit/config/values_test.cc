// Tests for the value parsers and formatters behind every config setting.
#include "config/values.h"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

TEST(ParseInt, DecimalHexOctalAndSign) {
  EXPECT_EQ(parse_int("20"), 20);
  EXPECT_EQ(parse_int("-3"), -3);
  EXPECT_EQ(parse_int("+7"), 7);
  EXPECT_EQ(parse_int("0x1F"), 31);
  EXPECT_EQ(parse_int("0777"), 0777);
  EXPECT_EQ(parse_int("0"), 0);
}

TEST(ParseInt, RejectsPartialAndJunk) {
  EXPECT_FALSE(parse_int(""));
  EXPECT_FALSE(parse_int("abc"));
  EXPECT_FALSE(parse_int("12abc"));
  EXPECT_FALSE(parse_int("1.5"));
  EXPECT_FALSE(parse_int("08"));
  EXPECT_FALSE(parse_int("--1"));
  EXPECT_FALSE(parse_int("99999999999999999999999"));
}

TEST(ParseBool, AcceptsWordsAndNumbers) {
  for (const char* t : {"1", "on", "ON", "true", "True", "yes"})
    EXPECT_EQ(parse_bool(t), true) << t;
  for (const char* f : {"0", "off", "false", "FALSE", "no"})
    EXPECT_EQ(parse_bool(f), false) << f;
  EXPECT_FALSE(parse_bool("maybe"));
  EXPECT_FALSE(parse_bool(""));
}

TEST(ParseSeconds, WholeAndFractional) {
  EXPECT_EQ(parse_seconds("60"), 60 * core::kMicrosPerSecond);
  EXPECT_EQ(parse_seconds("0.5"), core::kMicrosPerSecond / 2);
  EXPECT_EQ(parse_seconds("0"), 0);
  EXPECT_EQ(parse_seconds("2.25"), 2'250'000);
  EXPECT_FALSE(parse_seconds("-1"));
  EXPECT_FALSE(parse_seconds("1s"));
  EXPECT_FALSE(parse_seconds("inf"));
  EXPECT_FALSE(parse_seconds("nan"));
  EXPECT_FALSE(parse_seconds("1e30"));
}

TEST(FormatSeconds, IntegerWhenWholeElseShortestDecimal) {
  EXPECT_EQ(format_seconds(60 * core::kMicrosPerSecond), "60");
  EXPECT_EQ(format_seconds(0), "0");
  EXPECT_EQ(format_seconds(500'000), "0.5");
  EXPECT_EQ(format_seconds(1'250'000), "1.25");
  EXPECT_EQ(format_seconds(1), "0.000001");
}

TEST(Lists, SplitTrimsAndDropsEmptyItems) {
  EXPECT_EQ(split_list(" a , b,,c ,"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(split_list("").empty());
  EXPECT_EQ(join_list({"a", "b"}), "a,b");
}

}  // namespace
}  // namespace sluice::config
