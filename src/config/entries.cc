// [databases] and [users] entries: a name and a connection-string-like list of options.
#include "config/entries.h"

#include <limits>

#include "config/connstring.h"
#include "config/unsupported.h"
#include "config/values.h"

namespace sluice::config {

namespace {

core::Error invalid(std::string_view what, std::string_view name, std::string_view key,
                    std::string_view value) {
  return core::Error{std::string(what) + " '" + std::string(name) + "': invalid value for " +
                     std::string(key) + ": '" + std::string(value) + "'"};
}

bool parse_count(std::string_view v, int& out) {
  auto n = parse_int(v);
  if (!n || *n < 0 || *n > std::numeric_limits<int>::max()) return false;
  out = static_cast<int>(*n);
  return true;
}

// Startup parameters a database entry may force, with the spelling Postgres reports them in.
constexpr std::pair<std::string_view, std::string_view> kStartupParams[] = {
    {"client_encoding", "client_encoding"},
    {"datestyle", "DateStyle"},
    {"timezone", "TimeZone"},
    {"application_name", "application_name"},
};

void set_startup_param(DatabaseConfig& db, std::string_view name, std::string value) {
  for (auto& [k, v] : db.startup_params) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  db.startup_params.emplace_back(std::string(name), std::move(value));
}

}  // namespace

bool is_reserved_database(std::string_view name) {
  return name == "pgbouncer" || name == "sluice";
}

core::Result<DatabaseConfig> parse_database_entry(std::string_view name, std::string_view options,
                                                  std::vector<std::string>& warnings) {
  const std::string db_name(name);
  if (is_reserved_database(name)) {
    return core::Error{"database name '" + db_name + "' is reserved for the admin console"};
  }
  auto params = parse_connstring(options);
  if (!params.ok()) {
    return core::Error{"database '" + db_name + "': syntax error: " + params.error()};
  }
  DatabaseConfig db;
  db.name = db_name;
  for (auto& [key, value] : *params) {
    bool ok = true;
    if (key == "dbname") {
      db.dbname = value;
    } else if (key == "host") {
      db.hosts.clear();
      std::string_view rest = value;
      while (ok) {
        const auto comma = rest.find(',');
        const auto host = trim(rest.substr(0, comma));
        if (host.empty()) ok = false;
        db.hosts.emplace_back(host);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (key == "port") {
      auto n = parse_int(value);
      ok = n && *n > 0 && *n <= 65535;
      if (ok) db.port = static_cast<int>(*n);
    } else if (key == "user") {
      db.user = value;
    } else if (key == "password") {
      db.password = value;
    } else if (key == "auth_user") {
      db.auth_user = value;
    } else if (key == "auth_query") {
      db.auth_query = value;
    } else if (key == "auth_dbname") {
      db.auth_dbname = value;
    } else if (key == "pool_size") {
      ok = parse_count(value, db.pool_size);
    } else if (key == "min_pool_size") {
      ok = parse_count(value, db.min_pool_size);
    } else if (key == "reserve_pool" || key == "reserve_pool_size") {
      ok = parse_count(value, db.reserve_pool_size);
    } else if (key == "max_db_connections") {
      ok = parse_count(value, db.max_db_connections);
    } else if (key == "max_db_client_connections") {
      ok = parse_count(value, db.max_db_client_connections);
    } else if (key == "pool_mode") {
      db.pool_mode = parse_pool_mode(value);
      ok = db.pool_mode.has_value();
    } else if (key == "connect_query") {
      db.connect_query = value;
    } else if (key == "server_lifetime") {
      auto us = parse_seconds(value);
      ok = us.has_value();
      if (ok) db.server_lifetime = *us;
    } else if (key == "load_balance_hosts") {
      if (iequals(value, "round-robin")) {
        db.load_balance_hosts = true;
      } else if (iequals(value, "disable")) {
        db.load_balance_hosts = false;
      } else {
        ok = false;
      }
    } else {
      bool startup = false;
      for (const auto& [lower, spelled] : kStartupParams) {
        if (key == lower) {
          set_startup_param(db, spelled, value);
          startup = true;
        }
      }
      if (!startup) {
        return core::Error{"database '" + db_name + "': unknown parameter '" + key + "'"};
      }
    }
    if (!ok) return invalid("database", name, key, value);
    if (is_unsupported_database_key(key)) {
      warnings.push_back("database '" + db_name + "': unsupported parameter ignored: " + key);
    }
  }
  return db;
}

core::Result<UserConfig> parse_user_entry(std::string_view name, std::string_view options) {
  const std::string user_name(name);
  auto params = parse_connstring(options);
  if (!params.ok()) {
    return core::Error{"user '" + user_name + "': syntax error: " + params.error()};
  }
  UserConfig user;
  user.name = user_name;
  for (const auto& param : *params) {
    const std::string& key = param.first;
    const std::string& value = param.second;
    bool ok = true;
    auto seconds = [&](core::Micros& out) {
      auto us = parse_seconds(value);
      if (us) out = *us;
      return us.has_value();
    };
    if (key == "pool_mode") {
      user.pool_mode = parse_pool_mode(value);
      ok = user.pool_mode.has_value();
    } else if (key == "pool_size") {
      ok = parse_count(value, user.pool_size);
    } else if (key == "reserve_pool_size") {
      ok = parse_count(value, user.reserve_pool_size);
    } else if (key == "max_user_connections") {
      ok = parse_count(value, user.max_user_connections);
    } else if (key == "max_user_client_connections") {
      ok = parse_count(value, user.max_user_client_connections);
    } else if (key == "query_timeout") {
      ok = seconds(user.query_timeout);
    } else if (key == "idle_transaction_timeout") {
      ok = seconds(user.idle_transaction_timeout);
    } else if (key == "client_idle_timeout") {
      ok = seconds(user.client_idle_timeout);
    } else if (key == "transaction_timeout") {
      ok = seconds(user.transaction_timeout);
    } else {
      return core::Error{"user '" + user_name + "': unknown parameter '" + key + "'"};
    }
    if (!ok) return invalid("user", name, key, value);
  }
  return user;
}

}  // namespace sluice::config
