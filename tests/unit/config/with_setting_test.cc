// Tests for SET at run time (with_setting) and SHOW CONFIG rows (describe).
#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.h"
#include "helpers.h"
#include "temp_dir.h"

namespace sluice::config {
namespace {

using testing::has_warning;
using testing::must_parse;
using testing::TempDir;

std::shared_ptr<Config> base() {
  return must_parse("[databases]\na = port=1\n[pgbouncer]\nauth_type = trust\n");
}

TEST(WithSetting, ChangesOneSettingInACopy) {
  auto cfg = base();
  auto r = with_setting(*cfg, "default_pool_size", "42");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->settings.default_pool_size, 42);
  EXPECT_EQ(cfg->settings.default_pool_size, 20);  // the base is untouched
  EXPECT_NE((*r)->find_database("a"), nullptr);
}

TEST(WithSetting, CaseInsensitiveNameAndSqlQuotedValues) {
  auto cfg = base();
  auto r = with_setting(*cfg, "Admin_Users", "'alice, bob'");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->settings.admin_users, (std::vector<std::string>{"alice", "bob"}));
  r = with_setting(*cfg, "server_reset_query", "'SELECT ''x'''");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->settings.server_reset_query, "SELECT 'x'");
  r = with_setting(*cfg, "query_timeout", "0.5");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->settings.query_timeout, 500'000);
  r = with_setting(*cfg, "pool_mode", "transaction");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->settings.pool_mode, PoolMode::Transaction);
}

TEST(WithSetting, RefusesUnknownFixedAndInvalid) {
  auto cfg = base();
  auto r = with_setting(*cfg, "bogus", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "unknown setting bogus");
  for (const char* fixed : {"listen_addr", "listen_port", "unix_socket_dir", "unix_socket_mode",
                            "workers", "pidfile", "logfile", "so_reuseport", "listen_backlog"}) {
    r = with_setting(*cfg, fixed, "1");
    ASSERT_FALSE(r.ok()) << fixed;
    EXPECT_EQ(r.error(), "cannot change " + std::string(fixed) + " at run time");
  }
  r = with_setting(*cfg, "default_pool_size", "'lots'");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "invalid value for default_pool_size: 'lots'");
}

TEST(WithSetting, UnsupportedSettingIsStoredWithAWarning) {
  auto cfg = base();
  auto r = with_setting(*cfg, "client_tls_dheparams", "legacy");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(has_warning(**r, "unsupported setting ignored: client_tls_dheparams"));
  EXPECT_EQ((*r)->unsupported_values.at("client_tls_dheparams"), "legacy");
}

TEST(WithSetting, TlsModeAndReservedAuthDbname) {
  auto cfg = base();
  auto r = with_setting(*cfg, "server_tls_sslmode", "'verify-full'");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->settings.server_tls_sslmode, SslMode::VerifyFull);
  EXPECT_FALSE(with_setting(*cfg, "server_tls_sslmode", "sometimes").ok());
  auto bad = with_setting(*cfg, "auth_dbname", "pgbouncer");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("reserved"), std::string::npos);
}

TEST(WithSetting, AuthFileIsReloadedAndValidated) {
  TempDir dir;
  dir.write("users.txt", "\"carol\" \"pw\"\n");
  auto cfg = must_parse("[pgbouncer]\nauth_type = trust\n", dir.path());
  auto r = with_setting(*cfg, "auth_file", "users.txt");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_NE((*r)->find_auth("carol"), nullptr);
  auto missing = with_setting(**r, "auth_file", "nope.txt");
  ASSERT_TRUE(missing.ok()) << missing.error();  // trust: only a warning
  auto md5 = with_setting(**missing, "auth_type", "md5");
  EXPECT_FALSE(md5.ok());  // md5 needs the file that is not there
}

const SettingRow* row(const std::vector<SettingRow>& rows, std::string_view key) {
  auto it =
      std::find_if(rows.begin(), rows.end(), [&](const SettingRow& r) { return r.key == key; });
  return it == rows.end() ? nullptr : &*it;
}

TEST(Describe, SortedRowsInPgBouncerForm) {
  auto cfg = must_parse(
      "[pgbouncer]\nauth_type = trust\nquery_timeout = 0.5\nserver_lifetime = 60\n"
      "admin_users = a , b\ntcp_keepalive = off\npool_mode = statement\n"
      "client_tls_sslmode = require\n");
  const auto rows = describe(*cfg);
  ASSERT_FALSE(rows.empty());
  EXPECT_TRUE(
      std::is_sorted(rows.begin(), rows.end(),
                     [](const SettingRow& a, const SettingRow& b) { return a.key < b.key; }));

  struct Expect {
    const char* key;
    const char* value;
    const char* def;
    bool changeable;
  };
  for (const Expect& e :
       {Expect{"query_timeout", "0.5", "0", true}, Expect{"server_lifetime", "60", "3600", true},
        Expect{"reserve_pool_timeout", "5", "5", true}, Expect{"admin_users", "a,b", "", true},
        Expect{"tcp_keepalive", "0", "1", true}, Expect{"log_json", "0", "0", true},
        Expect{"pool_mode", "statement", "session", true},
        Expect{"auth_type", "trust", "md5", true}, Expect{"listen_port", "6432", "6432", false},
        Expect{"unix_socket_mode", "0777", "0777", false}, Expect{"workers", "0", "0", false},
        Expect{"track_extra_parameters", "IntervalStyle", "IntervalStyle", false},
        Expect{"max_packet_size", "2147483647", "2147483647", true},
        Expect{"client_tls_sslmode", "require", "disable", true},
        Expect{"server_tls_sslmode", "prefer", "prefer", true}}) {
    const SettingRow* r = row(rows, e.key);
    ASSERT_NE(r, nullptr) << e.key;
    EXPECT_EQ(r->value, e.value) << e.key;
    EXPECT_EQ(r->default_value, e.def) << e.key;
    EXPECT_EQ(r->changeable, e.changeable) << e.key;
  }
}

TEST(Describe, EveryRowCanBeSetBackFromItsOwnText) {
  TempDir dir;
  auto cfg = must_parse("[pgbouncer]\nauth_type = trust\n", dir.path());
  for (const SettingRow& r : describe(*cfg)) {
    if (!r.changeable) continue;
    auto changed = with_setting(*cfg, r.key, "'" + r.value + "'");
    ASSERT_TRUE(changed.ok()) << r.key << ": " << changed.error();
    EXPECT_EQ(row(describe(**changed), r.key)->value, r.value) << r.key;
  }
}

}  // namespace
}  // namespace sluice::config
