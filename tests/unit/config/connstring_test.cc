// Tests for the key=value connection strings of [databases] and [users] entries.
#include "config/connstring.h"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

ConnParams ok(std::string_view s) {
  auto r = parse_connstring(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error());
  return r.ok() ? *r : ConnParams{};
}

TEST(ConnString, PairsInOrderWithLowercaseKeys) {
  EXPECT_EQ(ok("host=h1  Port=5433\tdbname=x"),
            (ConnParams{{"host", "h1"}, {"port", "5433"}, {"dbname", "x"}}));
  EXPECT_TRUE(ok("").empty());
  EXPECT_TRUE(ok("   ").empty());
}

TEST(ConnString, SpacesAroundEquals) {
  EXPECT_EQ(ok("host = h1 port= 1"), (ConnParams{{"host", "h1"}, {"port", "1"}}));
}

TEST(ConnString, QuotedValues) {
  EXPECT_EQ(ok("a='x y' b=''"), (ConnParams{{"a", "x y"}, {"b", ""}}));
  EXPECT_EQ(ok(R"(q='it\'s')"), (ConnParams{{"q", "it's"}}));
  EXPECT_EQ(ok("q='it''s'"), (ConnParams{{"q", "it's"}}));
  EXPECT_EQ(ok(R"(q='a\\b')"), (ConnParams{{"q", R"(a\b)"}}));
  EXPECT_EQ(ok(R"(q='\d+')"), (ConnParams{{"q", R"(\d+)"}}));  // other escapes kept as written
  EXPECT_EQ(ok("q='set a=1; set b=2' x=y"), (ConnParams{{"q", "set a=1; set b=2"}, {"x", "y"}}));
}

TEST(ConnString, Errors) {
  EXPECT_FALSE(parse_connstring("host").ok());
  EXPECT_FALSE(parse_connstring("=x").ok());
  EXPECT_FALSE(parse_connstring("host=").ok());
  EXPECT_FALSE(parse_connstring("q='open").ok());
  EXPECT_FALSE(parse_connstring("q='a'b").ok());
  EXPECT_NE(parse_connstring("host h").error().find("'='"), std::string::npos);
}

}  // namespace
}  // namespace sluice::config
