// Tests for the INI layer: sections, comments, the [sluice] alias and %include.
#include "config/ini.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "helpers.h"
#include "temp_dir.h"

namespace sluice::config {
namespace {

using testing::has_warning;
using testing::must_parse;
using testing::parse_error;
using testing::TempDir;

TEST(Ini, CommentsBlankLinesAndWhitespace) {
  auto cfg = must_parse(
      "; a comment\n"
      "# another\n"
      "\n"
      "   [pgbouncer]   \n"
      "  listen_port   =   7000   \n"
      "\tdefault_pool_size=3\r\n"
      "server_reset_query = DISCARD ALL ; not a comment\n");
  EXPECT_EQ(cfg->settings.listen_port, 7000);
  EXPECT_EQ(cfg->settings.default_pool_size, 3);
  EXPECT_EQ(cfg->settings.server_reset_query, "DISCARD ALL ; not a comment");
}

TEST(Ini, SluiceIsAnAliasOfPgbouncer) {
  auto cfg = must_parse("[sluice]\nlisten_port = 7001\n");
  EXPECT_EQ(cfg->settings.listen_port, 7001);
}

TEST(Ini, SectionNamesAndMainKeysAreCaseInsensitive) {
  auto cfg = must_parse("[PgBouncer]\nListen_Port = 7002\n[DATABASES]\nMixedCase = port=1\n");
  EXPECT_EQ(cfg->settings.listen_port, 7002);
  ASSERT_NE(cfg->find_database("MixedCase"), nullptr);  // database names keep their case
  EXPECT_EQ(cfg->find_database("mixedcase"), nullptr);
}

TEST(Ini, MainSectionIsRequired) {
  EXPECT_NE(parse_error("[databases]\na =\n").find("no [pgbouncer] section"), std::string::npos);
}

TEST(Ini, PeersAreAcceptedWithAWarning) {
  auto cfg =
      must_parse("[peers]\n1 = host=/tmp/a\n2 = host=/tmp/b\n[pgbouncer]\nauth_type = trust\n");
  EXPECT_TRUE(has_warning(*cfg, "peers not supported"));
  EXPECT_EQ(cfg->warnings.size(), 1u);
}

TEST(Ini, UnknownSectionIsAWarning) {
  auto cfg = must_parse("[pgbouncer]\n[extras]\nfoo = bar\n");
  EXPECT_TRUE(has_warning(*cfg, "<config>:2: unknown section [extras]"));
}

TEST(Ini, SyntaxErrorsCarryLineNumbers) {
  EXPECT_NE(parse_error("[pgbouncer]\nlisten_port 6432\n").find("<config>:2: syntax error"),
            std::string::npos);
  EXPECT_NE(parse_error("[pgbouncer\n").find("<config>:1: syntax error"), std::string::npos);
  EXPECT_NE(parse_error("listen_port = 1\n[pgbouncer]\n").find("<config>:1:"), std::string::npos);
  EXPECT_NE(parse_error("[pgbouncer]\n\"open = 1\n").find("<config>:2: syntax error"),
            std::string::npos);
}

TEST(Include, RelativeToTheIncludingFile) {
  TempDir dir;
  dir.write("conf.d/dbs.ini", "[databases]\nfrom_include = port=1\n%include more/users.ini\n");
  dir.write("conf.d/more/users.ini", "[users]\nnested = pool_size=2\n");
  const std::string main = dir.write("main.ini",
                                     "[pgbouncer]\nlisten_port = 7003\n"
                                     "%include conf.d/dbs.ini\n"
                                     "[pgbouncer]\ndefault_pool_size = 4\n");
  auto r = load(main);
  ASSERT_TRUE(r.ok()) << r.error();
  const Config& cfg = **r;
  EXPECT_EQ(cfg.path, main);
  EXPECT_EQ(cfg.settings.listen_port, 7003);
  EXPECT_EQ(cfg.settings.default_pool_size, 4);
  ASSERT_NE(cfg.find_database("from_include"), nullptr);
  ASSERT_NE(cfg.find_user("nested"), nullptr);
}

TEST(Include, AbsolutePathAndParseBaseDir) {
  TempDir dir;
  const std::string abs = dir.write("abs.ini", "[databases]\nabs_db =\n");
  dir.write("rel.ini", "[databases]\nrel_db =\n");
  auto cfg = must_parse("[pgbouncer]\n%include " + abs + "\n%include rel.ini\n", dir.path());
  EXPECT_NE(cfg->find_database("abs_db"), nullptr);
  EXPECT_NE(cfg->find_database("rel_db"), nullptr);
}

TEST(Include, MissingFileIsAnErrorAtTheDirective) {
  TempDir dir;
  const std::string main = dir.write("main.ini", "[pgbouncer]\n\n%include nothere.ini\n");
  auto r = load(main);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find(main + ":3:"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("nothere.ini"), std::string::npos) << r.error();
}

TEST(Include, ErrorsInsideNameTheIncludedFile) {
  TempDir dir;
  const std::string inner = dir.write("inner.ini", "[pgbouncer]\n\ndefault_pool_size = lots\n");
  const std::string main = dir.write("main.ini", "%include inner.ini\n");
  auto r = load(main);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), inner + ":3: invalid value for default_pool_size: 'lots'");
}

TEST(Include, LoopsAreDetected) {
  TempDir dir;
  dir.write("a.ini", "[pgbouncer]\n%include b.ini\n");
  dir.write("b.ini", "%include sub/../a.ini\n");
  auto r = load(dir.file("a.ini"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("include loop"), std::string::npos) << r.error();

  dir.write("self.ini", "[pgbouncer]\n%include self.ini\n");
  r = load(dir.file("self.ini"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("include loop"), std::string::npos) << r.error();
}

TEST(Include, SameFileTwiceIsNotALoop) {
  TempDir dir;
  dir.write("part.ini", "[databases]\nshared =\n");
  auto cfg = must_parse("[pgbouncer]\n%include part.ini\n%include part.ini\n", dir.path());
  EXPECT_EQ(cfg->databases.size(), 1u);
}

TEST(Include, NestingIsBounded) {
  TempDir dir;
  for (int i = 0; i < 12; ++i) {
    dir.write("n" + std::to_string(i) + ".ini", "%include n" + std::to_string(i + 1) + ".ini\n");
  }
  dir.write("n12.ini", "[pgbouncer]\n");
  auto r = load(dir.file("n0.ini"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("nesting"), std::string::npos) << r.error();
  EXPECT_TRUE(load(dir.file("n5.ini")).ok());  // seven levels are fine
}

TEST(Include, NeedsAFileName) {
  EXPECT_NE(parse_error("[pgbouncer]\n%include   \n").find("<config>:2:"), std::string::npos);
}

TEST(Include, ThroughAFileReader) {
  std::vector<std::string> asked;
  IniFileReader read = [&](const std::string& path) -> core::Result<std::string> {
    asked.push_back(path);
    if (path == "/v/a.ini") return std::string("[Databases]\n%include sub/b.ini\n");
    if (path == "/v/sub/b.ini") return std::string("x = 1\n%include ../a.ini\n");
    return core::Error{"no such file: " + path};
  };
  auto r = read_ini_text("[pgbouncer]\n%include a.ini\n", "<mem>", "/v", read);
  ASSERT_FALSE(r.ok());
  // The loop is seen through "sub/../a.ini" without touching the file system.
  EXPECT_NE(r.error().find("include loop"), std::string::npos) << r.error();
  EXPECT_EQ(asked, (std::vector<std::string>{"/v/a.ini", "/v/sub/b.ini"}));

  auto ok = read_ini_text("%include sub/b.ini\n", "<mem>", "/elsewhere",
                          [](const std::string& path) -> core::Result<std::string> {
                            if (path == "/elsewhere/sub/b.ini") return std::string("k=v\n");
                            return core::Error{"no such file: " + path};
                          });
  ASSERT_TRUE(ok.ok()) << ok.error();
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].name, "k");
  EXPECT_EQ((*ok)[0].file, "/elsewhere/sub/b.ini");

  auto missing = read_ini_text("\n%include c.ini\n", "<mem>", "/v", read);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(), "<mem>:2: no such file: /v/c.ini");
}

TEST(Load, MissingFile) {
  TempDir dir;
  auto r = load(dir.file("absent.ini"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("absent.ini"), std::string::npos);
}

}  // namespace
}  // namespace sluice::config
