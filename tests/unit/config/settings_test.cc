// Tests for [pgbouncer] settings: defaults, each value type, warnings and value errors.
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

constexpr core::Micros kSec = core::kMicrosPerSecond;

std::shared_ptr<Config> main_section(std::string_view lines) {
  return must_parse("[pgbouncer]\n" + std::string(lines) + "\n");
}

TEST(Settings, DefaultsArePgBouncers) {
  auto cfg = main_section("");
  const Settings& s = cfg->settings;
  EXPECT_EQ(s.listen_addr, "");
  EXPECT_EQ(s.listen_port, 6432);
  EXPECT_EQ(s.unix_socket_dir, "/tmp");
  EXPECT_EQ(s.unix_socket_mode, 0777);
  EXPECT_EQ(s.auth_type, AuthType::Md5);
  EXPECT_EQ(s.pool_mode, PoolMode::Session);
  EXPECT_EQ(s.default_pool_size, 20);
  EXPECT_EQ(s.max_client_conn, 100);
  EXPECT_EQ(s.server_lifetime, 3600 * kSec);
  EXPECT_EQ(s.server_idle_timeout, 600 * kSec);
  EXPECT_EQ(s.query_wait_timeout, 120 * kSec);
  EXPECT_EQ(s.track_extra_parameters, std::vector<std::string>{"IntervalStyle"});
  EXPECT_EQ(s.workers, 0);
  EXPECT_FALSE(s.log_json);
  EXPECT_TRUE(cfg->databases.empty());
  EXPECT_TRUE(cfg->users.empty());
  // The only warning for an empty config: md5 without an auth_file lets nobody in.
  EXPECT_EQ(cfg->warnings.size(), 1u);
  EXPECT_TRUE(has_warning(*cfg, "auth_file is not set"));
}

TEST(Settings, Integers) {
  auto cfg = main_section(
      "listen_port = 7432\ndefault_pool_size = 50\nmin_pool_size = 5\nreserve_pool_size = 2\n"
      "max_client_conn = 0x400\nmax_db_connections = 10\nmax_user_connections = 11\n"
      "max_db_client_connections = 12\nmax_user_client_connections = 13\n"
      "max_prepared_statements = 0\nunix_socket_mode = 0700\nlisten_backlog = 1024\n"
      "tcp_keepcnt = 3\ntcp_keepidle = 60\ntcp_keepintvl = 10\ntcp_user_timeout = 1500\n"
      "tcp_socket_buffer = 4096\nverbose = 2\nworkers = 4\nmax_packet_size = 65536\n"
      "pkt_buf = 8192");
  const Settings& s = cfg->settings;
  EXPECT_EQ(s.listen_port, 7432);
  EXPECT_EQ(s.default_pool_size, 50);
  EXPECT_EQ(s.min_pool_size, 5);
  EXPECT_EQ(s.reserve_pool_size, 2);
  EXPECT_EQ(s.max_client_conn, 1024);
  EXPECT_EQ(s.max_db_connections, 10);
  EXPECT_EQ(s.max_user_connections, 11);
  EXPECT_EQ(s.max_db_client_connections, 12);
  EXPECT_EQ(s.max_user_client_connections, 13);
  EXPECT_EQ(s.max_prepared_statements, 0);
  EXPECT_EQ(s.unix_socket_mode, 0700);
  EXPECT_EQ(s.listen_backlog, 1024);
  EXPECT_EQ(s.tcp_keepcnt, 3);
  EXPECT_EQ(s.tcp_keepidle, 60);
  EXPECT_EQ(s.tcp_keepintvl, 10);
  EXPECT_EQ(s.tcp_user_timeout, 1500);
  EXPECT_EQ(s.tcp_socket_buffer, 4096);
  EXPECT_EQ(s.verbose, 2);
  EXPECT_EQ(s.workers, 4);
  EXPECT_EQ(s.max_packet_size, 65536u);
  EXPECT_EQ(s.pkt_buf, 8192u);
}

TEST(Settings, Times) {
  auto cfg = main_section(
      "reserve_pool_timeout = 0.5\nserver_check_delay = 10\nserver_lifetime = 120\n"
      "server_idle_timeout = 60\nserver_connect_timeout = 2.5\nserver_login_retry = 0.25\n"
      "client_login_timeout = 30\nquery_timeout = 1.5\nquery_wait_timeout = 0\n"
      "idle_transaction_timeout = 7\nclient_idle_timeout = 8\ntransaction_timeout = 9\n"
      "cancel_wait_timeout = 3\nstats_period = 15");
  const Settings& s = cfg->settings;
  EXPECT_EQ(s.reserve_pool_timeout, kSec / 2);
  EXPECT_EQ(s.server_check_delay, 10 * kSec);
  EXPECT_EQ(s.server_lifetime, 120 * kSec);
  EXPECT_EQ(s.server_idle_timeout, 60 * kSec);
  EXPECT_EQ(s.server_connect_timeout, 2'500'000);
  EXPECT_EQ(s.server_login_retry, 250'000);
  EXPECT_EQ(s.client_login_timeout, 30 * kSec);
  EXPECT_EQ(s.query_timeout, 1'500'000);
  EXPECT_EQ(s.query_wait_timeout, 0);
  EXPECT_EQ(s.idle_transaction_timeout, 7 * kSec);
  EXPECT_EQ(s.client_idle_timeout, 8 * kSec);
  EXPECT_EQ(s.transaction_timeout, 9 * kSec);
  EXPECT_EQ(s.cancel_wait_timeout, 3 * kSec);
  EXPECT_EQ(s.stats_period, 15 * kSec);
}

TEST(Settings, Booleans) {
  auto cfg = main_section(
      "so_reuseport = on\nserver_reset_query_always = yes\nserver_round_robin = true\n"
      "tcp_keepalive = 0\nlog_connections = off\nlog_disconnections = no\n"
      "log_pooler_errors = false\nlog_stats = 0\nlog_json = 1");
  const Settings& s = cfg->settings;
  EXPECT_TRUE(s.so_reuseport);
  EXPECT_TRUE(s.server_reset_query_always);
  EXPECT_TRUE(s.server_round_robin);
  EXPECT_FALSE(s.tcp_keepalive);
  EXPECT_FALSE(s.log_connections);
  EXPECT_FALSE(s.log_disconnections);
  EXPECT_FALSE(s.log_pooler_errors);
  EXPECT_FALSE(s.log_stats);
  EXPECT_TRUE(s.log_json);
}

TEST(Settings, StringsEnumsAndLists) {
  auto cfg = main_section(
      "listen_addr = 127.0.0.1 , ::1\nunix_socket_dir =\nauth_type = TRUST\n"
      "pool_mode = Transaction\nadmin_users = admin, root ,\nstats_users = stats\n"
      "ignore_startup_parameters = extra_float_digits,options\n"
      "track_extra_parameters = search_path, IntervalStyle\n"
      "server_reset_query = DEALLOCATE ALL\nserver_check_query = select 1\n"
      "logfile = /var/log/sluice.log\npidfile = /run/sluice.pid\n"
      "auth_query = SELECT usename, passwd FROM my_users WHERE usename=$1\nauth_dbname = authdb");
  const Settings& s = cfg->settings;
  EXPECT_EQ(s.listen_addr, "127.0.0.1,::1");
  EXPECT_EQ(s.unix_socket_dir, "");
  EXPECT_EQ(s.auth_type, AuthType::Trust);
  EXPECT_EQ(s.pool_mode, PoolMode::Transaction);
  EXPECT_EQ(s.admin_users, (std::vector<std::string>{"admin", "root"}));
  EXPECT_EQ(s.stats_users, std::vector<std::string>{"stats"});
  EXPECT_EQ(s.ignore_startup_parameters,
            (std::vector<std::string>{"extra_float_digits", "options"}));
  EXPECT_EQ(s.track_extra_parameters, (std::vector<std::string>{"search_path", "IntervalStyle"}));
  EXPECT_EQ(s.server_reset_query, "DEALLOCATE ALL");
  EXPECT_EQ(s.server_check_query, "select 1");
  EXPECT_EQ(s.logfile, "/var/log/sluice.log");
  EXPECT_EQ(s.pidfile, "/run/sluice.pid");
  EXPECT_EQ(s.auth_query, "SELECT usename, passwd FROM my_users WHERE usename=$1");
  EXPECT_EQ(s.auth_dbname, "authdb");
  EXPECT_EQ(main_section("listen_addr = *")->settings.listen_addr, "*");
}

TEST(Settings, EveryAuthTypeAndPoolModeName) {
  for (const char* t :
       {"trust", "any", "plain", "md5", "scram-sha-256", "cert", "hba", "pam", "ldap"}) {
    auto parsed = parse_auth_type(t);
    ASSERT_TRUE(parsed) << t;
    EXPECT_EQ(to_string(*parsed), t);
  }
  for (const char* m : {"session", "transaction", "statement"}) {
    auto parsed = parse_pool_mode(m);
    ASSERT_TRUE(parsed) << m;
    EXPECT_EQ(to_string(*parsed), m);
  }
  EXPECT_FALSE(parse_auth_type("password"));
  EXPECT_FALSE(parse_pool_mode("sessions"));
}

TEST(Settings, UnknownKeyIsAWarningNamingIt) {
  auto cfg = main_section("listen_port = 1\nno_such_thing = 5");
  EXPECT_TRUE(has_warning(*cfg, "<config>:3: unknown setting: no_such_thing"));
}

TEST(Settings, UnsupportedSettingWarnsOnlyWhenItWouldMatter) {
  auto cfg = main_section(
      "client_tls_ecdhcurve = prime256v1\nserver_tls_sslmode = disable\ntcp_defer_accept = 0\n"
      "dns_max_ttl = 15.0\npeer_id = 3\nsyslog = 1\nauth_hba_file = hba.conf\nauth_type = pam\n"
      "auth_user = pgbouncer");
  EXPECT_TRUE(has_warning(*cfg, "<config>:2: unsupported setting ignored: client_tls_ecdhcurve"));
  EXPECT_TRUE(has_warning(*cfg, "unsupported setting ignored: peer_id"));
  EXPECT_TRUE(has_warning(*cfg, "unsupported setting ignored: syslog"));
  EXPECT_TRUE(has_warning(*cfg, "unsupported setting ignored: auth_type"));  // pam
  EXPECT_FALSE(has_warning(*cfg, "unsupported setting ignored: auth_hba_file"));
  EXPECT_FALSE(has_warning(*cfg, "unsupported setting ignored: auth_user"));
  EXPECT_FALSE(has_warning(*cfg, "server_tls_sslmode"));
  EXPECT_FALSE(has_warning(*cfg, "tcp_defer_accept"));
  EXPECT_FALSE(has_warning(*cfg, "dns_max_ttl"));
  // Stored fields keep the value; fieldless ones are kept as written.
  EXPECT_EQ(cfg->settings.auth_type, AuthType::Pam);
  EXPECT_EQ(cfg->settings.auth_hba_file, "hba.conf");
  EXPECT_EQ(cfg->settings.server_tls_sslmode, SslMode::Disable);
  EXPECT_EQ(cfg->unsupported_values.at("client_tls_ecdhcurve"), "prime256v1");
}

TEST(Settings, DnsSettings) {
  auto cfg = main_section(
      "dns_max_ttl = 2.5\ndns_nxdomain_ttl = 0\ndns_nameserver = 127.0.0.1:5353, [::1]:53\n"
      "resolv_conf = /etc/sluice/resolv.conf\ndns_zone_check_period = 0");
  const Settings& s = cfg->settings;
  EXPECT_EQ(s.dns_max_ttl, 2'500'000);
  EXPECT_EQ(s.dns_nxdomain_ttl, 0);
  EXPECT_EQ(s.dns_nameserver, "127.0.0.1:5353, [::1]:53");
  EXPECT_EQ(s.resolv_conf, "/etc/sluice/resolv.conf");
  for (const char* key : {"dns_max_ttl", "dns_nxdomain_ttl", "dns_nameserver", "resolv_conf",
                          "dns_zone_check_period"}) {
    EXPECT_FALSE(has_warning(*cfg, key)) << key;
  }
  // Zone serial checks are not supported: only a period other than 0 (off) warns.
  EXPECT_TRUE(has_warning(*main_section("dns_zone_check_period = 60"),
                          "unsupported setting ignored: dns_zone_check_period"));
  EXPECT_EQ(parse_error("[pgbouncer]\ndns_max_ttl = -1\n"),
            "<config>:2: invalid value for dns_max_ttl: '-1'");
}

TEST(Settings, TlsAndAuthSettings) {
  auto cfg = main_section(
      "client_tls_sslmode = VERIFY-FULL\nclient_tls_key_file = k\nclient_tls_cert_file = c\n"
      "client_tls_ca_file = ca\nclient_tls_protocols = tlsv1.3\nclient_tls_ciphers = HIGH\n"
      "client_tls13_ciphers = TLS_AES_256_GCM_SHA384\nserver_tls_sslmode = verify-ca\n"
      "server_tls_ca_file = sca\nserver_tls_key_file = sk\nserver_tls_cert_file = sc\n"
      "server_tls_protocols = all\nserver_tls_ciphers = fast\nauth_type = hba\n"
      "auth_ident_file = ident.conf\nauth_type = cert");
  const Settings& s = cfg->settings;
  EXPECT_EQ(s.client_tls_sslmode, SslMode::VerifyFull);
  EXPECT_EQ(s.client_tls_key_file, "k");
  EXPECT_EQ(s.client_tls_cert_file, "c");
  EXPECT_EQ(s.client_tls_ca_file, "ca");
  EXPECT_EQ(s.client_tls_protocols, "tlsv1.3");
  EXPECT_EQ(s.client_tls_ciphers, "HIGH");
  EXPECT_EQ(s.client_tls13_ciphers, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(s.server_tls_sslmode, SslMode::VerifyCa);
  EXPECT_EQ(s.server_tls_ca_file, "sca");
  EXPECT_EQ(s.server_tls_key_file, "sk");
  EXPECT_EQ(s.server_tls_cert_file, "sc");
  EXPECT_EQ(s.server_tls_protocols, "all");
  EXPECT_EQ(s.server_tls_ciphers, "fast");
  EXPECT_EQ(s.auth_ident_file, "ident.conf");
  EXPECT_EQ(s.auth_type, AuthType::Cert);
  EXPECT_TRUE(cfg->warnings.size() <= 1) << cfg->warnings.size();  // ident.conf is missing
  EXPECT_EQ(Settings{}.server_tls_sslmode, SslMode::Prefer);       // PgBouncer's default
  EXPECT_EQ(Settings{}.client_tls_sslmode, SslMode::Disable);
  for (const char* bad : {"client_tls_sslmode = maybe", "server_tls_sslmode = on"}) {
    EXPECT_FALSE(parse(std::string("[pgbouncer]\n") + bad + "\n", ".").ok()) << bad;
  }
}

TEST(Settings, ReservedAuthDbnameIsAnError) {
  auto r = parse("[pgbouncer]\nauth_dbname = pgbouncer\n", ".");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "cannot use the reserved \"pgbouncer\" database as an auth_dbname");
}

TEST(Settings, BadValuesNameFileLineAndKey) {
  EXPECT_EQ(parse_error("[pgbouncer]\nlisten_port = 1\ndefault_pool_size = abc\n"),
            "<config>:3: invalid value for default_pool_size: 'abc'");
  EXPECT_EQ(parse_error("[pgbouncer]\npool_mode = sometimes\n"),
            "<config>:2: invalid value for pool_mode: 'sometimes'");
  for (const char* line :
       {"default_pool_size = -1", "max_client_conn = 1.5", "listen_port = 70000",
        "auth_type = password", "query_timeout = -1", "query_timeout = 1s", "tcp_keepalive = maybe",
        "workers = -1", "unix_socket_mode = 0999", "verbose = x", "pkt_buf = 10",
        "max_packet_size = 0", "stats_period = 0", "min_pool_size = 99999999999"}) {
    const std::string err = parse_error("[pgbouncer]\n" + std::string(line) + "\n");
    const std::string key(std::string_view(line).substr(0, std::string_view(line).find(' ')));
    EXPECT_NE(err.find("<config>:2: invalid value for " + key + ": '"), std::string::npos) << err;
  }
}

TEST(Settings, LoadNamesTheRealFileInErrors) {
  TempDir dir;
  const std::string path = dir.write("x.ini", "[pgbouncer]\n\n\ndefault_pool_size = abc\n");
  auto r = load(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), path + ":4: invalid value for default_pool_size: 'abc'");
}

// PgBouncer's parser takes any unsigned 32-bit max_packet_size; past 2147483647 (a signed
// length word) nothing more means anything, and 4294967295 once let a length of 0xFFFFFFFF wrap
// to 0 in a 32-bit size.
TEST(Settings, MaxPacketSizeIsCappedAtInt32Max) {
  auto cfg = main_section("max_packet_size = 4294967295");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->settings.max_packet_size, 2147483647u);
  EXPECT_TRUE(has_warning(*cfg, "max_packet_size above 2147483647 is taken as 2147483647"));
  cfg = main_section("max_packet_size = 2147483647");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->settings.max_packet_size, 2147483647u);
  EXPECT_FALSE(has_warning(*cfg, "max_packet_size"));
}

TEST(Settings, LaterValueWins) {
  EXPECT_EQ(main_section("listen_port = 1\nlisten_port = 2")->settings.listen_port, 2);
}

}  // namespace
}  // namespace sluice::config
