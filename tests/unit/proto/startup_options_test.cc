// Tests for startup_options.h: the settings carried by the `options` startup parameter.
#include "proto/startup_options.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice::proto {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs parse_ok(std::string_view opts) {
  Pairs out;
  EXPECT_TRUE(parse_startup_options(opts, out)) << opts;
  return out;
}

bool refused(std::string_view opts) {
  Pairs out;
  return !parse_startup_options(opts, out);
}

TEST(StartupOptions, TheThreeSpellingsOfASetting) {
  EXPECT_EQ(parse_ok("-c statement_timeout=2500 -csearch_path=s --work-mem=64kB"),
            (Pairs{{"statement_timeout", "2500"}, {"search_path", "s"}, {"work_mem", "64kB"}}));
  EXPECT_EQ(parse_ok(""), Pairs{});
  EXPECT_EQ(parse_ok(" \t "), Pairs{});
}

TEST(StartupOptions, BackslashEscapesAndEqualsInValues) {
  EXPECT_EQ(parse_ok("-c application_name=a\\ b\\\\c\t--x.y=k=v"),
            (Pairs{{"application_name", "a b\\c"}, {"x.y", "k=v"}}));
  EXPECT_EQ(parse_ok("-c search_path="), (Pairs{{"search_path", ""}}));
}

TEST(StartupOptions, AnythingElseIsRefused) {
  EXPECT_TRUE(refused("-c"));                   // switch without its setting
  EXPECT_TRUE(refused("-c =1"));                // no name
  EXPECT_TRUE(refused("-c name"));              // no '='
  EXPECT_TRUE(refused("-B 10"));                // other server switches
  EXPECT_TRUE(refused("statement_timeout=1"));  // a bare word
}

}  // namespace
}  // namespace sluice::proto
