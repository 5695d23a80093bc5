// `sluice budget` arithmetic: the servers a config points at, and its pools against their limits.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace sluice::app::budget {

// A server as [databases] entries name it; told apart by host and port as written.
struct ServerAddress {
  std::string host;  // name or address, or a unix socket directory (starts with '/')
  int port = 5432;

  [[nodiscard]] std::string display() const;
  auto operator<=>(const ServerAddress&) const = default;
};

// One way to log in to a server; an unset user or password is left to libpq's defaults
// (PGUSER, PGPASSWORD, ~/.pgpass).
struct Login {
  std::string user;
  std::optional<std::string> password;
  std::string dbname;
  std::string source;  // where the login comes from, for messages
};

// Command-line choices for logging in.
struct LoginOptions {
  std::string user;    // -U: log in to every server as this role
  std::string dbname;  // -d: database to connect to
};

// The [databases] entries that point at one server, and the logins to try there, in order.
struct ServerPlan {
  ServerAddress address;
  std::vector<config::DatabaseConfig> entries;  // file order, "*" included when it points here
  std::vector<Login> logins;
  std::vector<std::string> notes;
};

// Servers in order of first mention; an entry with several hosts counts on each of them.
[[nodiscard]] std::vector<ServerPlan> plan_servers(const config::Config& cfg,
                                                   const LoginOptions& opts);

struct RoleFacts {
  std::string name;
  int connlimit = -1;  // -1: no limit
  bool superuser = false;
  bool can_login = true;
};

struct DatabaseFacts {
  std::string name;
  int connlimit = -1;  // -1: no limit
  bool allow_connections = true;
  bool is_template = false;
};

// Client backends open now, grouped; `state` is empty where the login may not see it.
struct ActivityRow {
  std::string user;
  std::string database;
  std::string state;
  int count = 0;
};

// What one server holds, as read by the check's own connection (which is not in `activity`).
struct ServerFacts {
  std::string version;  // "15.4"
  int version_num = 0;  // 150004
  int max_connections = 0;
  int superuser_reserved = 0;
  std::optional<int> reserved;  // reserved_connections: PostgreSQL 16 and later
  std::string login_user;
  bool login_superuser = false;
  bool states_visible = true;  // the login may see other users' session states
  std::vector<RoleFacts> roles;
  std::vector<DatabaseFacts> databases;
  std::vector<ActivityRow> activity;
};

// One pool (client-facing database x server role) with its sizes as the pool manager computes
// them; `counted` is false where the pool cannot open connections at all.
struct PoolRow {
  std::string database;  // the name clients use
  std::string dbname;    // the database on the server
  std::string user;      // the server role
  int pool_size = 0;
  int reserve_size = 0;
  bool forced_user = false;
  bool counted = true;

  [[nodiscard]] int max() const { return pool_size + reserve_size; }
};

// A role or database: what sluice may open against its limit and what is open now.
struct LimitRow {
  std::string name;
  int sluice_max = 0;
  int limit = -1;        // CONNECTION LIMIT; -1 none
  int config_limit = 0;  // max_user_connections / max_db_connections (sum); 0 none
  bool exempt = false;   // a superuser role: CONNECTION LIMITs do not apply
  int open_now = 0;
  std::string states;  // "active 1, idle 2"
};

enum class Severity : std::uint8_t { Problem, Note };

struct Finding {
  Severity severity;
  std::string text;
};

struct ServerBudget {
  ServerAddress address;
  ServerFacts facts;
  int available = 0;  // slots for non-superuser roles
  int open_now = 0;
  bool with_config = true;  // false: a connection string, no pools
  std::vector<PoolRow> pools;
  int pools_sum = 0;
  int sluice_max = 0;  // pools_sum capped by max_db_connections and max_user_connections
  std::vector<LimitRow> roles;
  std::vector<LimitRow> databases;
  std::vector<Finding> findings;

  [[nodiscard]] bool holds() const;
};

// Slots a non-superuser role can use: max_connections minus both reserves.
[[nodiscard]] int available_slots(const ServerFacts& f);

// The config's pools on one server against what the server holds. Users of a database without a
// forced user are every user of the auth file and [users]: an upper bound.
[[nodiscard]] ServerBudget evaluate(const config::Config& cfg, const ServerPlan& plan,
                                    const ServerFacts& facts);

// A server on its own (connection-string mode): its limits, what is open, admin headroom.
[[nodiscard]] ServerBudget evaluate_server(const ServerAddress& address, const ServerFacts& facts);

}  // namespace sluice::app::budget
