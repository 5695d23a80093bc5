// A config in the style of PgBouncer's own test setup, read end to end from disk.
#include <gtest/gtest.h>

#include "config/config.h"
#include "temp_dir.h"

namespace sluice::config {
namespace {

using testing::TempDir;

constexpr std::string_view kIni = R"ini(
;; databases in the shapes a real deployment uses
[databases]
orders = port=6000 host=127.0.0.1 dbname=orders user=svc pool_size=2 reserve_pool_size=2
orders_b= port=6000 host=127.0.0.1 dbname=orders pool_size=2 reserve_pool=3
warm = port=6000 host=127.0.0.1 dbname=orders min_pool_size=5 pool_size=5 max_db_connections=2
forced = port=6000 host=127.0.0.1 dbname=inv user=loader password=sekrit
tuned = port=6000 host=127.0.0.1 dbname=orders connect_query='set enable_seqscan=off; set jit=off'
short = port=6000 host=127.0.0.1 dbname=postgres server_lifetime=2 user=svc
spread = port=6000 host=127.0.0.1,::1 dbname=orders user=svc
sticky = port=6000 host=127.0.0.1,127.0.0.3 dbname=orders user=svc load_balance_hosts=disable
ascii = port=6000 host=127.0.0.1 dbname=orders client_encoding=SQL_ASCII
capped = port=6000 host=127.0.0.1 dbname=orders max_db_client_connections=2 pool_mode=transaction
;; fallback left commented out, as tests often do
;* = port=6000 host=127.0.0.1

[users]
limited = max_user_connections=3
limited2 = max_user_connections=2 max_user_client_connections=2
tiny = pool_size=1
tiny_reserve = pool_size=1 reserve_pool_size=2
slowpoke = query_timeout=0.5 pool_mode=session

[pgbouncer]
logfile = test.log
pidfile = test.pid
listen_addr = 127.0.0.1
listen_port = 6667
unix_socket_dir = /tmp
auth_type = trust
auth_file = userlist.txt
pool_mode = statement
server_check_delay = 10
max_client_conn = 10
default_pool_size = 5
server_lifetime = 120
server_idle_timeout = 60
tcp_defer_accept = 0
tcp_keepalive = 0
tcp_socket_buffer = 4096
track_extra_parameters = search_path, intervalstyle
ignore_startup_parameters = extra_float_digits
)ini";

TEST(RealisticConfig, LoadsEveryEntryAsWritten) {
  TempDir dir;
  dir.write("userlist.txt",
            "\"svc\" \"svcpass\"\n\"loader\" \"md545f2603610af569b6155c45067268c6b\"\n");
  auto r = load(dir.write("test.ini", kIni));
  ASSERT_TRUE(r.ok()) << r.error();
  const Config& cfg = **r;
  EXPECT_TRUE(cfg.warnings.empty()) << cfg.warnings.front();

  ASSERT_EQ(cfg.databases.size(), 10u);
  EXPECT_EQ(cfg.databases.front().name, "orders");
  EXPECT_EQ(cfg.databases.back().name, "capped");
  EXPECT_EQ(cfg.fallback_database(), nullptr);

  const DatabaseConfig* orders = cfg.find_database("orders");
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->port, 6000);
  EXPECT_EQ(orders->hosts, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(orders->user, "svc");
  EXPECT_EQ(orders->reserve_pool_size, 2);
  EXPECT_EQ(cfg.find_database("orders_b")->reserve_pool_size, 3);
  EXPECT_EQ(cfg.find_database("warm")->min_pool_size, 5);
  EXPECT_EQ(cfg.find_database("warm")->max_db_connections, 2);
  EXPECT_EQ(cfg.find_database("forced")->password, "sekrit");
  EXPECT_EQ(cfg.find_database("tuned")->connect_query, "set enable_seqscan=off; set jit=off");
  EXPECT_EQ(cfg.find_database("short")->server_lifetime, 2 * core::kMicrosPerSecond);
  EXPECT_EQ(cfg.find_database("spread")->hosts, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_TRUE(cfg.find_database("spread")->load_balance_hosts);
  EXPECT_FALSE(cfg.find_database("sticky")->load_balance_hosts);
  ASSERT_EQ(cfg.find_database("ascii")->startup_params.size(), 1u);
  EXPECT_EQ(cfg.find_database("ascii")->startup_params[0].first, "client_encoding");
  EXPECT_EQ(cfg.find_database("capped")->max_db_client_connections, 2);
  EXPECT_EQ(cfg.find_database("capped")->pool_mode, PoolMode::Transaction);

  ASSERT_EQ(cfg.users.size(), 5u);
  EXPECT_EQ(cfg.find_user("limited")->max_user_connections, 3);
  EXPECT_EQ(cfg.find_user("limited2")->max_user_client_connections, 2);
  EXPECT_EQ(cfg.find_user("tiny_reserve")->reserve_pool_size, 2);
  EXPECT_EQ(cfg.find_user("slowpoke")->query_timeout, 500'000);
  EXPECT_EQ(cfg.find_user("slowpoke")->pool_mode, PoolMode::Session);

  const Settings& s = cfg.settings;
  EXPECT_EQ(s.listen_addr, "127.0.0.1");
  EXPECT_EQ(s.listen_port, 6667);
  EXPECT_EQ(s.auth_type, AuthType::Trust);
  EXPECT_EQ(s.pool_mode, PoolMode::Statement);
  EXPECT_EQ(s.server_check_delay, 10 * core::kMicrosPerSecond);
  EXPECT_EQ(s.max_client_conn, 10);
  EXPECT_EQ(s.default_pool_size, 5);
  EXPECT_FALSE(s.tcp_keepalive);
  EXPECT_EQ(s.tcp_socket_buffer, 4096);
  EXPECT_EQ(s.track_extra_parameters, (std::vector<std::string>{"search_path", "intervalstyle"}));
  EXPECT_EQ(s.ignore_startup_parameters, std::vector<std::string>{"extra_float_digits"});

  ASSERT_EQ(cfg.auth_entries.size(), 2u);
  EXPECT_EQ(cfg.find_auth("svc")->kind, AuthEntry::Kind::Plain);
  EXPECT_EQ(cfg.find_auth("loader")->kind, AuthEntry::Kind::Md5);
}

}  // namespace
}  // namespace sluice::config
