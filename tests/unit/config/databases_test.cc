// Tests for [databases] entries: every option, quoting, the "*" fallback and errors.
#include <gtest/gtest.h>

#include "config/config.h"
#include "helpers.h"

namespace sluice::config {
namespace {

using testing::has_warning;
using testing::must_parse;
using testing::parse_error;

std::shared_ptr<Config> with_databases(std::string_view entries) {
  return must_parse("[databases]\n" + std::string(entries) + "\n[pgbouncer]\n");
}

TEST(Databases, EmptyEntryHasDefaults) {
  auto cfg = with_databases("foodb =");
  const DatabaseConfig* db = cfg->find_database("foodb");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->dbname, "");
  EXPECT_TRUE(db->hosts.empty());
  EXPECT_EQ(db->port, 5432);
  EXPECT_FALSE(db->user);
  EXPECT_FALSE(db->password);
  EXPECT_EQ(db->pool_size, -1);
  EXPECT_EQ(db->min_pool_size, -1);
  EXPECT_EQ(db->reserve_pool_size, -1);
  EXPECT_EQ(db->max_db_connections, -1);
  EXPECT_EQ(db->max_db_client_connections, -1);
  EXPECT_FALSE(db->pool_mode);
  EXPECT_EQ(db->server_lifetime, -1);
  EXPECT_TRUE(db->load_balance_hosts);
  EXPECT_TRUE(db->startup_params.empty());
}

TEST(Databases, EveryOption) {
  auto cfg = with_databases(
      "app = dbname=real host=db1,db2 port=5433 user=u password='p w' auth_user=au "
      "auth_query='SELECT 1' auth_dbname=adb pool_size=7 min_pool_size=2 reserve_pool_size=3 "
      "pool_mode=transaction max_db_connections=40 max_db_client_connections=400 "
      "client_encoding=UTF8 datestyle=ISO timezone=UTC application_name=myapp "
      "connect_query='SET search_path = app' server_lifetime=1.5 load_balance_hosts=disable");
  const DatabaseConfig* db = cfg->find_database("app");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->dbname, "real");
  EXPECT_EQ(db->hosts, (std::vector<std::string>{"db1", "db2"}));
  EXPECT_EQ(db->port, 5433);
  EXPECT_EQ(db->user, "u");
  EXPECT_EQ(db->password, "p w");
  EXPECT_EQ(db->auth_user, "au");
  EXPECT_EQ(db->auth_query, "SELECT 1");
  EXPECT_EQ(db->auth_dbname, "adb");
  EXPECT_EQ(db->pool_size, 7);
  EXPECT_EQ(db->min_pool_size, 2);
  EXPECT_EQ(db->reserve_pool_size, 3);
  EXPECT_EQ(db->pool_mode, PoolMode::Transaction);
  EXPECT_EQ(db->max_db_connections, 40);
  EXPECT_EQ(db->max_db_client_connections, 400);
  EXPECT_EQ(db->connect_query, "SET search_path = app");
  EXPECT_EQ(db->server_lifetime, 1'500'000);
  EXPECT_FALSE(db->load_balance_hosts);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(db->startup_params,
            (std::vector<P>{P{"client_encoding", "UTF8"}, P{"DateStyle", "ISO"},
                            P{"TimeZone", "UTC"}, P{"application_name", "myapp"}}));
  EXPECT_FALSE(has_warning(*cfg, "unsupported parameter ignored: auth_user"));
}

TEST(Databases, HostListWithUnixSocketDirAndRoundRobin) {
  auto cfg = with_databases("a = host=/var/run/postgresql,10.0.0.2 load_balance_hosts=round-robin");
  const DatabaseConfig* db = cfg->find_database("a");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->hosts, (std::vector<std::string>{"/var/run/postgresql", "10.0.0.2"}));
  EXPECT_TRUE(db->load_balance_hosts);
}

TEST(Databases, ReservePoolIsAnAlias) {
  auto cfg = with_databases("a = reserve_pool=4");
  EXPECT_EQ(cfg->find_database("a")->reserve_pool_size, 4);
}

TEST(Databases, StartupParamGivenTwiceKeepsLast) {
  auto cfg = with_databases("a = timezone=UTC TimeZone=CET");
  const auto& params = cfg->find_database("a")->startup_params;
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].second, "CET");
}

TEST(Databases, QuotedValuesWithEscapes) {
  auto cfg = with_databases(R"(a = connect_query='set x = ''y''; select \'z\'' password='a b\\c')");
  const DatabaseConfig* db = cfg->find_database("a");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->connect_query, "set x = 'y'; select 'z'");
  EXPECT_EQ(db->password, R"(a b\c)");
}

TEST(Databases, QuotedNamesAndFileOrder) {
  auto cfg = with_databases("zeta = dbname=z\n\"my db\" = dbname=m\n\"q\"\"x\" =\nalpha =");
  ASSERT_EQ(cfg->databases.size(), 4u);
  EXPECT_EQ(cfg->databases[0].name, "zeta");
  EXPECT_EQ(cfg->databases[1].name, "my db");
  EXPECT_EQ(cfg->databases[2].name, "q\"x");
  EXPECT_EQ(cfg->databases[3].name, "alpha");
  EXPECT_EQ(cfg->find_database("my db")->dbname, "m");
  EXPECT_EQ(cfg->find_database("nope"), nullptr);
}

TEST(Databases, FallbackEntry) {
  auto cfg = with_databases("a = dbname=x\n* = host=fallback");
  const DatabaseConfig* star = cfg->fallback_database();
  ASSERT_NE(star, nullptr);
  EXPECT_EQ(star->name, "*");
  EXPECT_EQ(star->dbname, "");
  EXPECT_EQ(star->hosts, std::vector<std::string>{"fallback"});
  EXPECT_EQ(with_databases("a =")->fallback_database(), nullptr);
}

TEST(Databases, DuplicateReplacesInPlaceWithWarning) {
  auto cfg = with_databases("a = port=1\nb =\na = port=2");
  ASSERT_EQ(cfg->databases.size(), 2u);
  EXPECT_EQ(cfg->databases[0].name, "a");
  EXPECT_EQ(cfg->databases[0].port, 2);
  EXPECT_TRUE(has_warning(*cfg, "database 'a' is defined again"));
}

TEST(Databases, UnknownKeyNamesDatabaseAndKey) {
  const std::string err = parse_error("[databases]\nmydb = host=x colour=blue\n[pgbouncer]\n");
  EXPECT_NE(err.find("<config>:2:"), std::string::npos) << err;
  EXPECT_NE(err.find("mydb"), std::string::npos) << err;
  EXPECT_NE(err.find("colour"), std::string::npos) << err;
}

TEST(Databases, BadValues) {
  for (const char* entry :
       {"a = port=abc", "a = port=0", "a = port=70000", "a = pool_size=-1", "a = pool_size=x",
        "a = pool_mode=sometimes", "a = server_lifetime=-2", "a = load_balance_hosts=random",
        "a = host=x,,y", "a = min_pool_size=1.5", "a = max_db_connections=-5"}) {
    const std::string err = parse_error("[databases]\n" + std::string(entry) + "\n[pgbouncer]\n");
    EXPECT_NE(err.find("<config>:2: database 'a': invalid value for"), std::string::npos) << err;
  }
}

TEST(Databases, SyntaxErrorInEntry) {
  const std::string err = parse_error("[databases]\na = host='unterminated\n[pgbouncer]\n");
  EXPECT_NE(err.find("<config>:2: database 'a': syntax error"), std::string::npos) << err;
}

TEST(Databases, ConsoleNamesAreReserved) {
  EXPECT_NE(parse_error("[databases]\npgbouncer = host=x\n[pgbouncer]\n").find("reserved"),
            std::string::npos);
  EXPECT_NE(parse_error("[databases]\nsluice =\n[pgbouncer]\n").find("reserved"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::config
