// Console command parsing and the commands of the core: SHOW, SET, RELOAD, SHUTDOWN.
#include "admin/console.h"

#include <strings.h>

#include <algorithm>
#include <cctype>

#include "admin/result_set.h"
#include "proto/codes.h"
#include "proto/writer.h"

namespace sluice::admin {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.front())) != 0)) s.remove_prefix(1);
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.back())) != 0 || s.back() == ';')) {
    s.remove_suffix(1);
  }
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Next whitespace-separated word (upper-cased comparison is up to the caller).
std::string_view next_word(std::string_view& s) {
  s = trim(s);
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) == 0 && s[i] != '=') ++i;
  std::string_view w = s.substr(0, i);
  s.remove_prefix(i);
  s = trim(s);
  return w;
}

std::string unquote(std::string_view v) {
  v = trim(v);
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
    std::string out;
    for (std::size_t i = 1; i + 1 < v.size(); ++i) {
      if (v[i] == '\'' && i + 2 < v.size() && v[i + 1] == '\'') ++i;
      out.push_back(v[i]);
    }
    return out;
  }
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    return std::string(v.substr(1, v.size() - 2));
  }
  return std::string(v);
}

std::string i2s(long long v) { return std::to_string(v); }

void error(std::string& out, const char* sqlstate, std::string_view msg) {
  proto::write_error(out, {proto::Severity::Error, sqlstate, msg});
}

}  // namespace

std::string version_string() { return std::string("sluice ") + SLUICE_VERSION; }

bool Console::handle_query(session::Client& c, std::string_view sql, std::string& out) {
  // Several statements separated by ';' are run one after another, as PgBouncer does.
  std::size_t start = 0;
  bool any = false;
  bool in_quote = false;
  for (std::size_t i = 0; i <= sql.size(); ++i) {
    if (i < sql.size() && sql[i] == '\'') in_quote = !in_quote;
    if (i == sql.size() || (sql[i] == ';' && !in_quote)) {
      std::string_view stmt = trim(sql.substr(start, i - start));
      start = i + 1;
      if (stmt.empty()) continue;
      any = true;
      run_one(c, stmt, out);
    }
  }
  if (!any) proto::write_empty_query_response(out);
  return true;
}

void Console::run_one(session::Client& c, std::string_view stmt, std::string& out) {
  std::string_view rest = stmt;
  std::string_view cmd = next_word(rest);
  if (iequals(cmd, "SHOW")) {
    show(c, rest, out);
    return;
  }
  if (!c.admin_control) {
    error(out, proto::sqlstate::kInvalidAuthorization, "admin access needed");
    return;
  }
  if (iequals(cmd, "SET")) {
    std::string_view name = next_word(rest);
    if (!rest.empty() && rest.front() == '=') {
      rest.remove_prefix(1);
    } else if (rest.size() >= 2 && iequals(rest.substr(0, 2), "TO")) {
      rest.remove_prefix(2);
    } else {
      error(out, proto::sqlstate::kSyntaxError, "syntax error: SET name = value");
      return;
    }
    std::string err = control_.set_setting(name, unquote(rest));
    if (!err.empty()) {
      error(out, proto::sqlstate::kInvalidParameterValue, err);
      return;
    }
    proto::write_command_complete(out, "SET");
    return;
  }
  if (iequals(cmd, "RELOAD")) {
    std::string err = control_.reload();
    if (!err.empty()) proto::write_notice(out, "reload failed, old configuration kept: " + err);
    proto::write_command_complete(out, "RELOAD");
    return;
  }
  if (iequals(cmd, "SHUTDOWN")) {
    std::string_view how = next_word(rest);
    Control::Shutdown mode = Control::Shutdown::Immediate;
    if (iequals(how, "WAIT_FOR_SERVERS")) mode = Control::Shutdown::WaitForServers;
    if (iequals(how, "WAIT_FOR_CLIENTS")) mode = Control::Shutdown::WaitForClients;
    proto::write_command_complete(out, "SHUTDOWN");
    control_.shutdown(mode);
    return;
  }
  error(out, proto::sqlstate::kSyntaxError, "unknown command: " + std::string(stmt));
}

void Console::show(session::Client& c, std::string_view what, std::string& out) {
  std::string_view rest = what;
  std::string_view item = next_word(rest);
  auto cfg = control_.config();
  ResultSet rs;
  using T = ResultSet::Type;
  if (iequals(item, "VERSION")) {
    rs.column("version");
    rs.row({version_string()});
    rs.write(out, "SHOW");
    return;
  }
  if (iequals(item, "CONFIG")) {
    rs.column("key");
    rs.column("value");
    rs.column("default");
    rs.column("changeable");
    for (const auto& r : config::describe(*cfg)) {
      rs.row({r.key, r.value, r.default_value, std::string(r.changeable ? "yes" : "no")});
    }
    rs.write(out, "SHOW");
    return;
  }
  if (iequals(item, "DATABASES")) {
    rs.column("name");
    rs.column("host");
    rs.column("port", T::Int4);
    rs.column("database");
    rs.column("force_user");
    rs.column("pool_size", T::Int4);
    rs.column("min_pool_size", T::Int4);
    rs.column("reserve_pool_size", T::Int4);
    rs.column("server_lifetime", T::Int4);
    rs.column("pool_mode");
    rs.column("load_balance_hosts");
    rs.column("max_connections", T::Int4);
    rs.column("current_connections", T::Int4);
    rs.column("max_client_connections", T::Int4);
    rs.column("current_client_connections", T::Int4);
    rs.column("paused", T::Int4);
    rs.column("disabled", T::Int4);
    auto groups = shared_.pools->database_stats();
    auto find = [&](std::string_view n) -> const pool::PoolManager::GroupStats* {
      for (const auto& g : groups) {
        if (g.name == n) return &g;
      }
      return nullptr;
    };
    const auto& st = cfg->settings;
    std::vector<std::string> names;
    for (const auto& d : cfg->databases) {
      if (d.name != "*") names.push_back(d.name);
    }
    names.emplace_back("pgbouncer");
    for (const auto& g : groups) {
      if (std::find(names.begin(), names.end(), g.name) == names.end()) names.push_back(g.name);
    }
    for (const auto& n : names) {
      const config::DatabaseConfig* d = cfg->find_database(n);
      if (d == nullptr && n != "pgbouncer") d = cfg->fallback_database();
      const auto* g = find(n);
      int maxc = d != nullptr && d->max_db_connections > 0 ? d->max_db_connections
                                                           : st.max_db_connections;
      int maxcl = d != nullptr && d->max_db_client_connections > 0 ? d->max_db_client_connections
                                                                   : st.max_db_client_connections;
      std::string host;
      if (d != nullptr) {
        for (const auto& h : d->hosts) host += (host.empty() ? "" : ",") + h;
      }
      rs.row({n, d != nullptr ? std::optional<std::string>(host) : std::nullopt,
              d != nullptr ? i2s(d->port) : std::to_string(st.listen_port),
              d != nullptr ? (d->dbname.empty() ? n : d->dbname) : std::string("pgbouncer"),
              d != nullptr && d->user ? std::optional<std::string>(*d->user)
                                      : (d == nullptr ? std::optional<std::string>("pgbouncer")
                                                      : std::nullopt),
              i2s(d != nullptr && d->pool_size >= 0 ? d->pool_size
                                                    : (d != nullptr ? st.default_pool_size : 2)),
              i2s(d != nullptr && d->min_pool_size >= 0 ? d->min_pool_size : 0),
              i2s(d != nullptr && d->reserve_pool_size >= 0 ? d->reserve_pool_size : 0),
              i2s(d != nullptr && d->server_lifetime > 0 ? d->server_lifetime / 1000000 : 0),
              d != nullptr && d->pool_mode
                  ? std::optional<std::string>(std::string(config::to_string(*d->pool_mode)))
                  : (d == nullptr ? std::optional<std::string>("statement") : std::nullopt),
              std::nullopt, i2s(maxc), i2s(g != nullptr ? g->servers : 0), i2s(maxcl),
              i2s(g != nullptr ? g->clients : 0), i2s(0), i2s(0)});
    }
    rs.write(out, "SHOW");
    return;
  }
  if (iequals(item, "USERS")) {
    rs.column("name");
    rs.column("pool_size", T::Int4);
    rs.column("reserve_pool_size", T::Int4);
    rs.column("pool_mode");
    rs.column("max_user_connections", T::Int4);
    rs.column("current_connections", T::Int4);
    rs.column("max_user_client_connections", T::Int4);
    rs.column("current_client_connections", T::Int4);
    const auto& st = cfg->settings;
    // Every user sluice knows of: [users], the auth file, and any seen at run time.
    auto stats = shared_.pools->user_stats();
    std::vector<pool::PoolManager::GroupStats> all;
    auto add = [&](const std::string& n) {
      for (const auto& x : all) {
        if (x.name == n) return;
      }
      for (const auto& x : stats) {
        if (x.name == n) {
          all.push_back(x);
          return;
        }
      }
      all.push_back({n, 0, 0, 0, 0});
    };
    for (const auto& u : cfg->users) add(u.name);
    for (const auto& e : cfg->auth_entries) add(e.user);
    for (const auto& x : stats) add(x.name);
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& g : all) {
      const config::UserConfig* u = cfg->find_user(g.name);
      int maxc = u != nullptr && u->max_user_connections > 0 ? u->max_user_connections
                                                             : st.max_user_connections;
      int maxcl = u != nullptr && u->max_user_client_connections > 0
                      ? u->max_user_client_connections
                      : st.max_user_client_connections;
      rs.row({g.name, u != nullptr && u->pool_size >= 0 ? std::optional(i2s(u->pool_size)) : std::nullopt,
              u != nullptr && u->reserve_pool_size >= 0 ? std::optional(i2s(u->reserve_pool_size))
                                                        : std::nullopt,
              u != nullptr && u->pool_mode
                  ? std::optional<std::string>(std::string(config::to_string(*u->pool_mode)))
                  : std::nullopt,
              i2s(maxc), i2s(g.servers), i2s(maxcl), i2s(g.clients)});
    }
    rs.write(out, "SHOW");
    return;
  }
  if (iequals(item, "POOLS")) {
    for (const char* n : {"database", "user"}) rs.column(n);
    for (const char* n : {"cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
                          "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle",
                          "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us"}) {
      rs.column(n, T::Int4);
    }
    rs.column("pool_mode");
    rs.column("load_balance_hosts");
    for (const auto& p : shared_.pools->pool_stats(c.worker.loop().now())) {
      rs.row({p.database, p.user, i2s(p.cl_active), i2s(p.cl_waiting), i2s(0), i2s(0),
              i2s(p.sv_active), i2s(0), i2s(0), i2s(p.sv_idle), i2s(p.sv_used), i2s(0),
              i2s(p.sv_login), i2s(p.maxwait / 1000000), i2s(p.maxwait % 1000000), p.pool_mode,
              std::nullopt});
    }
    rs.write(out, "SHOW");
    return;
  }
  if (iequals(item, "HELP")) {
    proto::write_notice(out,
                        "Console usage\n\tSHOW HELP|CONFIG|DATABASES|POOLS|USERS|VERSION\n"
                        "\tSET key = arg\n\tRELOAD\n\tSHUTDOWN");
    proto::write_command_complete(out, "SHOW");
    return;
  }
  error(out, proto::sqlstate::kSyntaxError, "unknown SHOW item: " + std::string(item));
}

}  // namespace sluice::admin
