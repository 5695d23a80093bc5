// Immutable configuration snapshot: PgBouncer's pgbouncer.ini format and meanings, plus `workers`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/result.h"

namespace sluice::config {

enum class PoolMode : std::uint8_t { Session, Transaction, Statement };
[[nodiscard]] std::string_view to_string(PoolMode m);
[[nodiscard]] std::optional<PoolMode> parse_pool_mode(std::string_view s);

enum class AuthType : std::uint8_t { Trust, Any, Plain, Md5, ScramSha256, Cert, Hba, Pam, Ldap };
[[nodiscard]] std::string_view to_string(AuthType t);
[[nodiscard]] std::optional<AuthType> parse_auth_type(std::string_view s);

// client_tls_sslmode / server_tls_sslmode, weakest first.
enum class SslMode : std::uint8_t { Disable, Allow, Prefer, Require, VerifyCa, VerifyFull };
[[nodiscard]] std::string_view to_string(SslMode m);
[[nodiscard]] std::optional<SslMode> parse_ssl_mode(std::string_view s);

class HbaRules;  // config/hba.h
class IdentMap;

// One line of the auth file: "user" "secret". The secret is plaintext, "md5<32 hex>" or a
// SCRAM-SHA-256 verifier ("SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>").
struct AuthEntry {
  enum class Kind : std::uint8_t { Plain, Md5, Scram };
  std::string user;
  std::string secret;
  Kind kind = Kind::Plain;
};

// [databases] entry. Negative integers / unset optionals mean "inherit from [pgbouncer]".
struct DatabaseConfig {
  std::string name;                // name clients use; "*" for the fallback entry
  std::string dbname;              // database on the server; empty = same as the client's
  std::vector<std::string> hosts;  // "host=a,b"; empty = unix socket in the default dir
  int port = 5432;
  std::optional<std::string> user;  // forced server user
  std::optional<std::string> password;
  std::optional<std::string> auth_user;
  std::optional<std::string> auth_query;
  std::optional<std::string> auth_dbname;
  int pool_size = -1;
  int min_pool_size = -1;
  int reserve_pool_size = -1;  // "reserve_pool" and "reserve_pool_size"
  int max_db_connections = -1;
  int max_db_client_connections = -1;
  std::optional<PoolMode> pool_mode;
  std::string connect_query;
  core::Micros server_lifetime = -1;
  bool load_balance_hosts = true;  // load_balance_hosts=round-robin (default) / disable
  // Server startup parameters from the entry, with Postgres' spelling of the name:
  // client_encoding, DateStyle, TimeZone, application_name.
  std::vector<std::pair<std::string, std::string>> startup_params;
};

// [users] entry.
struct UserConfig {
  std::string name;
  std::optional<PoolMode> pool_mode;
  int pool_size = -1;
  int reserve_pool_size = -1;
  int max_user_connections = -1;
  int max_user_client_connections = -1;
  core::Micros query_timeout = -1;
  core::Micros idle_transaction_timeout = -1;
  core::Micros client_idle_timeout = -1;
  core::Micros transaction_timeout = -1;
};

// Times are microseconds; 0 means "disabled" where PgBouncer says so.
struct Settings {
  // listening
  std::string listen_addr;  // empty = no TCP listener
  int listen_port = 6432;
  std::string unix_socket_dir = "/tmp";  // empty = no unix socket
  int unix_socket_mode = 0777;
  int listen_backlog = 128;
  bool so_reuseport = false;
  int workers = 0;  // 0 = app::default_workers(usable CPUs): 1 on one or two, else one per CPU

  // auth
  AuthType auth_type = AuthType::Md5;
  std::string auth_file;
  std::string auth_hba_file;
  std::string auth_user;
  std::string auth_query =
      "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END "
      "FROM pg_authid WHERE rolname=$1 AND rolcanlogin";
  std::string auth_dbname;
  std::string auth_ident_file;
  std::vector<std::string> admin_users;
  std::vector<std::string> stats_users;

  // pooling
  PoolMode pool_mode = PoolMode::Session;
  int default_pool_size = 20;
  int min_pool_size = 0;
  int reserve_pool_size = 0;
  core::Micros reserve_pool_timeout = 5 * core::kMicrosPerSecond;
  // Pools of databases reached through the `*` entry are freed after this long without a client
  // or server (PgBouncer's autodb_idle_timeout).
  core::Micros autodb_idle_timeout = 3600 * core::kMicrosPerSecond;
  // How long the oldest waiter may be passed over for a waiter whose session state or worker
  // matches a released server (ours; issues 9 and 10). 0 = strict FIFO.
  core::Micros affinity_wait = 5 * core::kMicrosPerSecond / 1000;
  int max_client_conn = 100;
  int max_db_connections = 0;
  int max_user_connections = 0;
  int max_db_client_connections = 0;
  int max_user_client_connections = 0;
  int max_prepared_statements = 200;

  // Session state in transaction and statement mode (ours; issue 3). Off: no statement
  // classification, no settings read-back, no pins (PgBouncer's behaviour).
  bool track_session_state = true;
  int max_pinned_servers = 0;                                       // per pool; 0 = pool_size
  core::Micros pinned_idle_timeout = 600 * core::kMicrosPerSecond;  // 0 = never

  // server connections
  std::string server_reset_query = "DISCARD ALL";
  bool server_reset_query_always = false;
  bool server_fast_close = false;  // session mode: close a stale server between transactions
  std::string server_check_query = "<empty>";  // "<empty>": an empty query; "": no checks
  core::Micros server_check_delay = 30 * core::kMicrosPerSecond;
  core::Micros server_lifetime = 3600 * core::kMicrosPerSecond;
  core::Micros server_idle_timeout = 600 * core::kMicrosPerSecond;
  core::Micros server_connect_timeout = 15 * core::kMicrosPerSecond;
  core::Micros server_login_retry = 15 * core::kMicrosPerSecond;
  bool server_round_robin = false;

  // server host names (net/resolver.h): how long an answer is kept, a failed lookup too
  core::Micros dns_max_ttl = 15 * core::kMicrosPerSecond;
  core::Micros dns_nxdomain_ttl = 15 * core::kMicrosPerSecond;
  std::string resolv_conf;  // a resolv.conf instead of the system's; empty = /etc/resolv.conf
  // sluice only, for tests and special setups: name servers "ip[:port],..." used instead of
  // resolv.conf's (which has no port); empty = resolv.conf's.
  std::string dns_nameserver;

  // client timeouts
  core::Micros client_login_timeout = 60 * core::kMicrosPerSecond;
  core::Micros query_timeout = 0;
  core::Micros query_wait_timeout = 120 * core::kMicrosPerSecond;
  core::Micros query_wait_notify = 5 * core::kMicrosPerSecond;  // NOTICE to a queued client
  core::Micros idle_transaction_timeout = 0;
  core::Micros client_idle_timeout = 0;
  core::Micros transaction_timeout = 0;
  core::Micros cancel_wait_timeout = 10 * core::kMicrosPerSecond;
  // sluice only: CancelRequests a second per source address (IPv6: per /64); 0 = no limit.
  int cancel_rate_limit = 100;

  // protocol
  std::vector<std::string> ignore_startup_parameters;
  // Parameters tracked per client and set on the server at checkout (case as configured).
  std::vector<std::string> track_extra_parameters = {"IntervalStyle"};
  std::uint32_t max_packet_size = 2147483647u;
  std::uint32_t pkt_buf = 4096;

  // TLS toward clients
  SslMode client_tls_sslmode = SslMode::Disable;
  std::string client_tls_key_file;
  std::string client_tls_cert_file;
  std::string client_tls_ca_file;
  std::string client_tls_protocols = "secure";
  std::string client_tls_ciphers = "default";
  std::string client_tls13_ciphers;

  // TLS toward servers (over TCP; unix sockets never use TLS)
  SslMode server_tls_sslmode = SslMode::Prefer;
  std::string server_tls_ca_file;
  std::string server_tls_key_file;
  std::string server_tls_cert_file;
  std::string server_tls_protocols = "secure";
  std::string server_tls_ciphers = "default";
  std::string server_tls13_ciphers;

  // TCP
  bool tcp_keepalive = true;
  int tcp_keepcnt = 0;
  int tcp_keepidle = 0;
  int tcp_keepintvl = 0;
  int tcp_user_timeout = 0;  // ms
  int tcp_socket_buffer = 0;

  // process and logging
  std::string logfile;
  std::string pidfile;
  int verbose = 0;
  bool log_connections = true;
  bool log_disconnections = true;
  bool log_pooler_errors = true;
  bool log_stats = true;
  core::Micros stats_period = 60 * core::kMicrosPerSecond;
  bool log_json = false;  // our own: one JSON object per log line

  // operations (ours; issue 5)
  std::string metrics_listen_addr;  // /metrics, /healthz, /readyz over HTTP; empty = off
  int metrics_listen_port = 9127;
  core::Micros switchover_timeout = 30 * core::kMicrosPerSecond;  // SWITCHOVER gives up after
  std::string application_name_add_host_unused;
};

struct Config {
  std::string path;  // the file given on the command line
  Settings settings;
  std::vector<DatabaseConfig> databases;  // file order; "*" included if present
  std::vector<UserConfig> users;
  std::vector<AuthEntry> auth_entries;  // from auth_file
  // auth_hba_file and auth_ident_file, parsed (config/hba.h); null when not set.
  std::shared_ptr<const HbaRules> hba;
  std::shared_ptr<const IdentMap> ident;
  std::vector<std::string> warnings;  // unsupported settings named, unknown keys
  // [pgbouncer] settings sluice accepts but does not act on yet (config/unsupported.h), as
  // written; SHOW CONFIG lists them.
  std::map<std::string, std::string, std::less<>> unsupported_values;
  std::string base_dir;  // relative auth_file and %include paths resolve against it

  [[nodiscard]] const DatabaseConfig* find_database(std::string_view name) const;
  [[nodiscard]] const DatabaseConfig* fallback_database() const;  // "*"
  [[nodiscard]] const UserConfig* find_user(std::string_view name) const;
  [[nodiscard]] const AuthEntry* find_auth(std::string_view user) const;
};

using ConfigPtr = std::shared_ptr<const Config>;

// Reads the file (with %include), its auth_file, validates. Errors name file, line and setting.
[[nodiscard]] core::Result<ConfigPtr> load(const std::string& path);

// Parses the text of a main config (for tests); includes resolve against `base_dir`.
[[nodiscard]] core::Result<std::shared_ptr<Config>> parse(std::string_view text,
                                                          const std::string& base_dir);

// Auth file text "user" "secret" lines; ';' comments; quotes doubled inside values.
[[nodiscard]] core::Result<std::vector<AuthEntry>> parse_auth_file(std::string_view text);

// Settings changeable at run time through the console: `SET name = value`.
// Returns a new snapshot, or an error naming the setting.
[[nodiscard]] core::Result<ConfigPtr> with_setting(const Config& base, std::string_view name,
                                                   std::string_view value);

// One row of SHOW CONFIG.
struct SettingRow {
  std::string key;
  std::string value;
  std::string default_value;
  bool changeable;
};
[[nodiscard]] std::vector<SettingRow> describe(const Config& cfg);

}  // namespace sluice::config
