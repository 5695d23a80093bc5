// Tests for the auth_file format and how load() finds and judges it.
#include <gtest/gtest.h>

#include "config/config.h"
#include "helpers.h"
#include "temp_dir.h"

namespace sluice::config {
namespace {

using testing::has_warning;
using testing::must_parse;
using testing::TempDir;

constexpr const char* kScram =
    "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVka2V5c3RvcmVka2V5c3RvcmVka2V5cw==:"
    "c2VydmVya2V5c2VydmVya2V5c2VydmVya2V5cw==";

TEST(AuthFile, SecretKinds) {
  const std::string text = std::string("\"plainuser\" \"secret\"\n") +
                           "\"md5user\" \"md545f2603610af569b6155c45067268c6b\"\n" +
                           "\"scramuser\" \"" + kScram + "\"\n" + "\"shortmd5\" \"md5abc\"\n" +
                           "\"nothex\" \"md5zzf2603610af569b6155c45067268c6b\"\n";
  auto r = parse_auth_file(text);
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].user, "plainuser");
  EXPECT_EQ((*r)[0].secret, "secret");
  EXPECT_EQ((*r)[0].kind, AuthEntry::Kind::Plain);
  EXPECT_EQ((*r)[1].kind, AuthEntry::Kind::Md5);
  EXPECT_EQ((*r)[2].kind, AuthEntry::Kind::Scram);
  EXPECT_EQ((*r)[2].secret, kScram);
  EXPECT_EQ((*r)[3].kind, AuthEntry::Kind::Plain);
  EXPECT_EQ((*r)[4].kind, AuthEntry::Kind::Plain);
}

TEST(AuthFile, QuotingCommentsBlankLinesAndExtraFields) {
  auto r = parse_auth_file(
      "; comment line\n"
      "\n"
      "   \"say \"\"hi\"\"\"   \"pa ss\"\"word\" \"extra\" ignored\n"
      "\"u2\"\t\"\"\r\n");
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].user, "say \"hi\"");
  EXPECT_EQ((*r)[0].secret, "pa ss\"word");
  EXPECT_EQ((*r)[1].user, "u2");
  EXPECT_EQ((*r)[1].secret, "");
}

TEST(AuthFile, LaterLineForSameUserWins) {
  auto r = parse_auth_file("\"a\" \"1\"\n\"b\" \"2\"\n\"a\" \"3\"\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].secret, "3");
}

TEST(AuthFile, MalformedLinesNameTheLine) {
  struct Case {
    const char* text;
    const char* where;
  };
  for (const Case& c :
       {Case{"\"a\" \"1\"\nbare words\n", "auth_file:2:"}, Case{"\"a\"\n", "auth_file:1:"},
        Case{"\"a\" \"unterminated\n\"b\" \"x\"\n", "auth_file:1:"},
        Case{"\n\n\"open user \"x\"\n", "auth_file:3:"}, Case{"\"\" \"x\"\n", "auth_file:1:"}}) {
    auto r = parse_auth_file(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error().rfind(c.where, 0), 0u) << r.error();
  }
}

TEST(AuthFile, LoadedRelativeToConfigAndLookedUp) {
  TempDir dir;
  dir.write("etc/users.txt", "\"alice\" \"md545f2603610af569b6155c45067268c6b\"\n");
  const std::string path =
      dir.write("etc/pgbouncer.ini", "[pgbouncer]\nauth_type = md5\nauth_file = users.txt\n");
  auto r = load(path);
  ASSERT_TRUE(r.ok()) << r.error();
  const AuthEntry* a = (*r)->find_auth("alice");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->kind, AuthEntry::Kind::Md5);
  EXPECT_EQ((*r)->find_auth("bob"), nullptr);
  EXPECT_TRUE((*r)->warnings.empty());
}

TEST(AuthFile, MissingIsAnErrorForPasswordAuthTypes) {
  TempDir dir;
  for (const char* type : {"md5", "plain", "scram-sha-256"}) {
    auto r = parse("[pgbouncer]\nauth_type = " + std::string(type) + "\nauth_file = gone.txt\n",
                   dir.path());
    ASSERT_FALSE(r.ok()) << type;
    EXPECT_NE(r.error().find("gone.txt"), std::string::npos) << r.error();
  }
}

TEST(AuthFile, MissingIsAWarningOtherwise) {
  TempDir dir;
  auto cfg = must_parse("[pgbouncer]\nauth_type = trust\nauth_file = gone.txt\n", dir.path());
  EXPECT_TRUE(has_warning(*cfg, "gone.txt"));
  EXPECT_TRUE(cfg->auth_entries.empty());
}

TEST(AuthFile, MalformedFileFailsLoadWithPathAndLine) {
  TempDir dir;
  const std::string users = dir.write("users.txt", "\"ok\" \"1\"\nnot quoted\n");
  auto r = parse("[pgbouncer]\nauth_type = trust\nauth_file = users.txt\n", dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind(users + ":2:", 0), 0u) << r.error();
}

}  // namespace
}  // namespace sluice::config
