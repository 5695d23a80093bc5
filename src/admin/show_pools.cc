// SHOW POOLS, DATABASES and USERS: PgBouncer's columns, from pool manager snapshots.
#include <algorithm>

#include "admin/command.h"
#include "admin/console.h"
#include "admin/result_set.h"

namespace sluice::admin {
namespace {

using T = ResultSet::Type;
using Cell = std::optional<std::string>;

std::string i2s(long long v) {
  return std::to_string(v);
}

std::string join_hosts(const std::vector<std::string>& hosts) {
  std::string out;
  for (const auto& h : hosts)
    out += (out.empty() ? "" : ",") + h;
  return out;
}

// PgBouncer shows load_balance_hosts only for entries with a host list.
Cell load_balance_text(const config::DatabaseConfig* d) {
  if (d == nullptr || d->hosts.size() < 2) return std::nullopt;
  return std::string(d->load_balance_hosts ? "round-robin" : "disable");
}

const config::DatabaseConfig* entry_for(const config::Config& cfg, std::string_view db) {
  const config::DatabaseConfig* d = cfg.find_database(db);
  return d != nullptr ? d : cfg.fallback_database();
}

int admin_clients(pool::PoolManager& pools) {
  for (const auto& g : pools.database_stats()) {
    if (g.name == "pgbouncer") return g.clients;
  }
  return 0;
}

}  // namespace

Status Console::show_pools(Request& r) {
  auto cfg = control_.config();
  ResultSet rs;
  rs.column("database");
  rs.column("user");
  for (const char* n : {"cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
                        "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used",
                        "sv_tested", "sv_login", "maxwait", "maxwait_us"}) {
    rs.column(n, T::Int4);
  }
  rs.column("pool_mode");
  rs.column("load_balance_hosts");
  // The console's own pool comes first, as in PgBouncer.
  rs.row({std::string("pgbouncer"), std::string("pgbouncer"), i2s(admin_clients(*shared_.pools)),
          i2s(0), i2s(0), i2s(0), i2s(0), i2s(0), i2s(0), i2s(0), i2s(0), i2s(0), i2s(0), i2s(0),
          i2s(0), std::string("statement"), std::nullopt});
  for (const auto& p : shared_.pools->pool_snapshots(r.client.worker.loop().now())) {
    rs.row({p.database, p.user, i2s(p.cl_active), i2s(p.cl_waiting), i2s(0), i2s(0),
            i2s(p.sv_active), i2s(0), i2s(0), i2s(p.sv_idle), i2s(p.sv_used), i2s(p.sv_tested),
            i2s(p.sv_login), i2s(p.maxwait / core::kMicrosPerSecond),
            i2s(p.maxwait % core::kMicrosPerSecond), p.pool_mode,
            load_balance_text(entry_for(*cfg, p.database))});
  }
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

Status Console::show_databases(Request& r) {
  auto cfg = control_.config();
  const auto& st = cfg->settings;
  ResultSet rs;
  rs.column("name");
  rs.column("host");
  rs.column("port", T::Int4);
  rs.column("database");
  rs.column("force_user");
  for (const char* n : {"pool_size", "min_pool_size", "reserve_pool_size", "server_lifetime"}) {
    rs.column(n, T::Int4);
  }
  rs.column("pool_mode");
  rs.column("load_balance_hosts");
  for (const char* n : {"max_connections", "current_connections", "max_client_connections",
                        "current_client_connections", "paused", "disabled"}) {
    rs.column(n, T::Int4);
  }
  auto groups = shared_.pools->database_stats();
  auto group = [&](std::string_view n) -> const pool::PoolManager::GroupStats* {
    for (const auto& g : groups) {
      if (g.name == n) return &g;
    }
    return nullptr;
  };
  // Configured entries in file order, then databases served by "*" that have been used.
  std::vector<std::string> names;
  for (const auto& d : cfg->databases) {
    if (d.name != "*") names.push_back(d.name);
  }
  for (const auto& g : groups) {
    if (g.name != "pgbouncer" && cfg->fallback_database() != nullptr &&
        std::find(names.begin(), names.end(), g.name) == names.end()) {
      names.push_back(g.name);
    }
  }
  for (const auto& n : names) {
    const config::DatabaseConfig* d = entry_for(*cfg, n);
    if (d == nullptr) continue;
    const auto* g = group(n);
    std::vector<std::string> hosts = d->hosts;
    int port = d->port;
    if (auto sw = shared_.pools->switched_target(n)) {
      hosts = sw->hosts;
      port = sw->port;
    }
    int maxc = d->max_db_connections > 0 ? d->max_db_connections : st.max_db_connections;
    int maxcl = d->max_db_client_connections > 0 ? d->max_db_client_connections
                                                 : st.max_db_client_connections;
    core::Micros lifetime = d->server_lifetime >= 0 ? d->server_lifetime : st.server_lifetime;
    rs.row({n, hosts.empty() ? Cell() : Cell(join_hosts(hosts)), i2s(port),
            d->dbname.empty() ? n : d->dbname, d->user ? Cell(*d->user) : Cell(),
            i2s(d->pool_size >= 0 ? d->pool_size : st.default_pool_size),
            i2s(d->min_pool_size >= 0 ? d->min_pool_size : st.min_pool_size),
            i2s(d->reserve_pool_size >= 0 ? d->reserve_pool_size : st.reserve_pool_size),
            i2s(lifetime / core::kMicrosPerSecond),
            d->pool_mode ? Cell(std::string(config::to_string(*d->pool_mode))) : Cell(),
            load_balance_text(d), i2s(maxc), i2s(g != nullptr ? g->servers : 0), i2s(maxcl),
            i2s(g != nullptr ? g->clients : 0), i2s(shared_.pools->paused(n) ? 1 : 0),
            i2s(shared_.pools->database_disabled(n) ? 1 : 0)});
  }
  // The console's own database.
  rs.row({std::string("pgbouncer"), Cell(), i2s(st.listen_port), std::string("pgbouncer"),
          std::string("pgbouncer"), i2s(2), i2s(0), i2s(0), i2s(0), std::string("statement"),
          Cell(), i2s(0), i2s(0), i2s(st.max_db_client_connections),
          i2s(admin_clients(*shared_.pools)), i2s(0), i2s(0)});
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

Status Console::show_users(Request& r) {
  auto cfg = control_.config();
  const auto& st = cfg->settings;
  ResultSet rs;
  for (const char* n : {"name", "pool_size", "reserve_pool_size", "pool_mode"})
    rs.column(n);
  for (const char* n : {"max_user_connections", "current_connections",
                        "max_user_client_connections", "current_client_connections"}) {
    rs.column(n, T::Int4);
  }
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
  for (const auto& u : cfg->users)
    add(u.name);
  for (const auto& e : cfg->auth_entries)
    add(e.user);
  for (const auto& x : stats)
    add(x.name);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& g : all) {
    const config::UserConfig* u = cfg->find_user(g.name);
    int maxc = u != nullptr && u->max_user_connections > 0 ? u->max_user_connections
                                                           : st.max_user_connections;
    int maxcl = u != nullptr && u->max_user_client_connections > 0 ? u->max_user_client_connections
                                                                   : st.max_user_client_connections;
    rs.row({g.name, u != nullptr && u->pool_size >= 0 ? Cell(i2s(u->pool_size)) : Cell(),
            u != nullptr && u->reserve_pool_size >= 0 ? Cell(i2s(u->reserve_pool_size)) : Cell(),
            u != nullptr && u->pool_mode ? Cell(std::string(config::to_string(*u->pool_mode)))
                                         : Cell(),
            i2s(maxc), i2s(g.servers), i2s(maxcl), i2s(g.clients)});
  }
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

}  // namespace sluice::admin
