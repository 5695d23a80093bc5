// `sluice budget` arithmetic: which servers, which pools, and where the numbers do not add up.
#include "app/budget_model.h"

#include <algorithm>
#include <map>
#include <set>

#include "config/entries.h"

namespace sluice::app::budget {

namespace {

constexpr std::size_t kListedPools = 6;  // pools named in one message before "..."

// A limit of 0 or less means none.
int capped(int sum, int limit) {
  return limit > 0 ? std::min(sum, limit) : sum;
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

template <typename T>
const T* find_named(const std::vector<T>& list, const std::string& name) {
  for (const T& item : list) {
    if (item.name == name) return &item;
  }
  return nullptr;
}

// The password sluice's pool would use for `user` through `entry`, when it is plain text.
std::optional<std::string> plain_password(const config::Config& cfg,
                                          const config::DatabaseConfig* entry,
                                          const std::string& user,
                                          std::vector<std::string>& notes) {
  if (entry != nullptr && entry->password && (!entry->user || *entry->user == user)) {
    return entry->password;
  }
  const config::AuthEntry* a = cfg.find_auth(user);
  if (a == nullptr) return std::nullopt;
  if (a->kind == config::AuthEntry::Kind::Plain) return a->secret;
  std::string note = "the auth file holds only a hashed secret for " + quoted(user) +
                     ", which a client cannot log in with: trying it without a password "
                     "(PGPASSWORD, ~/.pgpass or trust)";
  if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
  return std::nullopt;
}

std::string server_dbname(const config::DatabaseConfig& d) {
  if (!d.dbname.empty()) return d.dbname;
  return d.name == "*" ? "postgres" : d.name;
}

void add_logins(const config::Config& cfg, const LoginOptions& opts, ServerPlan& plan) {
  std::string dbname = opts.dbname;
  if (dbname.empty()) {
    for (const auto& d : plan.entries) {
      if (d.name == "*") continue;
      dbname = server_dbname(d);
      break;
    }
  }
  if (dbname.empty()) dbname = "postgres";
  if (!opts.user.empty()) {
    const config::DatabaseConfig* with_password = nullptr;
    for (const auto& d : plan.entries) {
      if (d.user && *d.user == opts.user && d.password) with_password = &d;
    }
    plan.logins.push_back({opts.user, plain_password(cfg, with_password, opts.user, plan.notes),
                           dbname, "-U " + opts.user});
    return;
  }
  std::set<std::string> tried;
  for (const auto& d : plan.entries) {
    if (!d.user || !tried.insert(*d.user).second) continue;
    plan.logins.push_back({*d.user, plain_password(cfg, &d, *d.user, plan.notes),
                           opts.dbname.empty() ? server_dbname(d) : opts.dbname,
                           "user= of [databases] " + d.name});
  }
  plan.logins.push_back({"", std::nullopt, dbname, "libpq's defaults (PGUSER, else the OS user)"});
}

// Users a database without a forced user may get pools for: auth file, then [users].
std::vector<std::string> known_users(const config::Config& cfg) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& a : cfg.auth_entries) {
    if (seen.insert(a.user).second) out.push_back(a.user);
  }
  for (const auto& u : cfg.users) {
    if (seen.insert(u.name).second) out.push_back(u.name);
  }
  return out;
}

// Sizes as pool::PoolManager::refresh_pool computes them: [users], then the entry, then global.
PoolRow make_pool(const config::Config& cfg, const config::DatabaseConfig& d,
                  const std::string& database, const std::string& dbname, const std::string& user) {
  const auto& st = cfg.settings;
  const config::UserConfig* u = cfg.find_user(user);
  PoolRow p;
  p.database = database;
  p.dbname = dbname;
  p.user = user;
  p.forced_user = d.user.has_value();
  p.pool_size = (u != nullptr && u->pool_size >= 0) ? u->pool_size
                : d.pool_size >= 0                  ? d.pool_size
                                                    : st.default_pool_size;
  p.reserve_size = (u != nullptr && u->reserve_pool_size >= 0) ? u->reserve_pool_size
                   : d.reserve_pool_size >= 0                  ? d.reserve_pool_size
                                                               : st.reserve_pool_size;
  return p;
}

int db_limit(const config::Config& cfg, const config::DatabaseConfig& d) {
  return d.max_db_connections > 0 ? d.max_db_connections : cfg.settings.max_db_connections;
}

int user_limit(const config::Config& cfg, const std::string& user) {
  const config::UserConfig* u = cfg.find_user(user);
  return (u != nullptr && u->max_user_connections > 0) ? u->max_user_connections
                                                       : cfg.settings.max_user_connections;
}

// Open client backends of one role or database, summed and by state.
struct Open {
  int total = 0;
  std::map<std::string, int> states;
};

int state_rank(const std::string& s) {
  if (s == "active") return 0;
  if (s == "idle") return 1;
  if (s == "idle in transaction") return 2;
  if (s == "unknown") return 4;
  return 3;
}

std::string describe_states(const Open& o) {
  std::vector<std::pair<std::string, int>> v(o.states.begin(), o.states.end());
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return state_rank(a.first) < state_rank(b.first);
  });
  std::string out;
  for (const auto& [state, n] : v) {
    if (!out.empty()) out += ", ";
    out += state + " " + std::to_string(n);
  }
  return out;
}

void tally(std::map<std::string, Open>& m, const std::string& key, const ActivityRow& r) {
  Open& o = m[key];
  o.total += r.count;
  o.states[r.state.empty() ? "unknown" : r.state] += r.count;
}

std::string list_pools(const std::vector<std::pair<std::string, int>>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i == kListedPools) {
      out += ", ...";
      break;
    }
    if (i > 0) out += ", ";
    out += parts[i].first + " " + std::to_string(parts[i].second);
  }
  return out;
}

std::string slots_formula(const ServerFacts& f) {
  std::string s = "max_connections " + std::to_string(f.max_connections) +
                  " - superuser_reserved_connections " + std::to_string(f.superuser_reserved);
  if (f.reserved) s += " - reserved_connections " + std::to_string(*f.reserved);
  return s;
}

// What every server report says about itself: reserves, admin headroom, open connections.
void server_findings(ServerBudget& b) {
  const ServerFacts& f = b.facts;
  auto& out = b.findings;
  if (!f.reserved) {
    out.push_back({Severity::Note, "reserved_connections does not exist on PostgreSQL " +
                                       f.version +
                                       " (it is new in 16): only superuser_reserved_connections "
                                       "holds slots back"});
  }
  if (f.superuser_reserved <= 0) {
    if (f.reserved.value_or(0) > 0) {
      out.push_back({Severity::Note,
                     "superuser_reserved_connections is 0: only roles with "
                     "pg_use_reserved_connections have slots held back for them (" +
                         std::to_string(*f.reserved) + ")"});
    } else {
      out.push_back({Severity::Problem,
                     "no headroom for an admin: superuser_reserved_connections is 0, so once the " +
                         std::to_string(f.max_connections) +
                         " connections are taken not even a superuser can connect"});
    }
  }
  if (b.open_now > b.available) {
    out.push_back({Severity::Problem, "no headroom for an admin: " + std::to_string(b.open_now) +
                                          " client connections are open now, more than the " +
                                          std::to_string(b.available) +
                                          " slots for non-superuser roles (" + slots_formula(f) +
                                          "): the reserved slots are in use"});
  } else if (b.open_now == b.available) {
    out.push_back({Severity::Note, "the server is full for non-superuser roles now: " +
                                       std::to_string(b.open_now) + " connections are open"});
  }
  if (!f.states_visible) {
    out.push_back({Severity::Note, "role " + quoted(f.login_user) +
                                       " may not see other roles' session states (that needs a "
                                       "superuser or pg_read_all_stats): shown as unknown"});
  }
}

// Roles and databases that have a CONNECTION LIMIT or open connections, for the tables.
void add_other_rows(ServerBudget& b, const std::map<std::string, Open>& by_user,
                    const std::map<std::string, Open>& by_db) {
  auto has = [](const std::vector<LimitRow>& rows, const std::string& name) {
    return find_named(rows, name) != nullptr;
  };
  for (const auto& r : b.facts.roles) {
    auto it = by_user.find(r.name);
    const bool open = it != by_user.end();
    if (has(b.roles, r.name) || (!open && (r.connlimit < 0 || !r.can_login))) continue;
    LimitRow row{r.name, 0, r.connlimit, 0, r.superuser, 0, ""};
    if (open) {
      row.open_now = it->second.total;
      row.states = describe_states(it->second);
    }
    b.roles.push_back(std::move(row));
  }
  for (const auto& [name, o] : by_user) {
    if (has(b.roles, name)) continue;
    b.roles.push_back({name, 0, -1, 0, false, o.total, describe_states(o)});
  }
  for (const auto& d : b.facts.databases) {
    auto it = by_db.find(d.name);
    const bool open = it != by_db.end();
    if (has(b.databases, d.name) || (!open && d.connlimit < 0)) continue;
    LimitRow row{d.name, 0, d.connlimit, 0, false, 0, ""};
    if (open) {
      row.open_now = it->second.total;
      row.states = describe_states(it->second);
    }
    b.databases.push_back(std::move(row));
  }
}

void count_open(ServerBudget& b, std::map<std::string, Open>& by_user,
                std::map<std::string, Open>& by_db) {
  b.open_now = 0;
  for (const auto& r : b.facts.activity) {
    b.open_now += r.count;
    tally(by_user, r.user, r);
    tally(by_db, r.database, r);
  }
}

}  // namespace

std::string ServerAddress::display() const {
  return host + ":" + std::to_string(port);
}

int available_slots(const ServerFacts& f) {
  return std::max(0, f.max_connections - f.superuser_reserved - f.reserved.value_or(0));
}

bool ServerBudget::holds() const {
  return std::none_of(findings.begin(), findings.end(),
                      [](const Finding& x) { return x.severity == Severity::Problem; });
}

std::vector<ServerPlan> plan_servers(const config::Config& cfg, const LoginOptions& opts) {
  std::vector<ServerPlan> plans;
  const std::string unix_dir =
      cfg.settings.unix_socket_dir.empty() ? "/tmp" : cfg.settings.unix_socket_dir;
  for (const auto& d : cfg.databases) {
    std::vector<std::string> hosts = d.hosts;
    if (hosts.empty()) hosts.push_back(unix_dir);
    for (const auto& h : hosts) {
      ServerAddress addr{h, d.port};
      auto it = std::find_if(plans.begin(), plans.end(),
                             [&](const ServerPlan& p) { return p.address == addr; });
      if (it == plans.end()) {
        plans.push_back({addr, {}, {}, {}});
        it = plans.end() - 1;
      }
      it->entries.push_back(d);
      if (hosts.size() > 1) {
        it->notes.push_back("[databases] " + d.name +
                            " lists several hosts: its pools are counted in full on each");
      }
    }
  }
  for (auto& p : plans)
    add_logins(cfg, opts, p);
  return plans;
}

ServerBudget evaluate(const config::Config& cfg, const ServerPlan& plan, const ServerFacts& facts) {
  ServerBudget b;
  b.address = plan.address;
  b.facts = facts;
  b.available = available_slots(facts);
  std::map<std::string, Open> by_user, by_db;
  count_open(b, by_user, by_db);

  // Pools, with the entry each came from (for max_db_connections).
  const std::vector<std::string> users = known_users(cfg);
  std::vector<const config::DatabaseConfig*> pool_entry;
  std::set<std::string> missing_users, notes_seen;
  bool any_unforced = false;
  auto note = [&](std::string text) {
    if (notes_seen.insert(text).second) b.findings.push_back({Severity::Note, std::move(text)});
  };
  auto add_pools = [&](const config::DatabaseConfig& d, const std::string& database,
                       const std::string& dbname) {
    const DatabaseFacts* df = find_named(facts.databases, dbname);
    const bool db_ok = df != nullptr && df->allow_connections;
    if (df == nullptr) {
      note("database " + quoted(dbname) + " (of [databases] " + database +
           ") does not exist on the server: its pools are not counted");
    } else if (!df->allow_connections) {
      note("database " + quoted(dbname) + " does not allow connections: its pools are not counted");
    }
    std::vector<std::string> roles;
    if (d.user) {
      roles.push_back(*d.user);
    } else {
      any_unforced = true;
      roles = users;
    }
    for (const auto& role : roles) {
      PoolRow p = make_pool(cfg, d, database, dbname, role);
      const RoleFacts* rf = find_named(facts.roles, role);
      const bool role_ok = rf != nullptr && rf->can_login;
      if (!role_ok) {
        if (d.user) {
          note("role " + quoted(role) + " (user= of [databases] " + database + ") " +
               (rf == nullptr ? "does not exist on the server" : "may not log in") +
               ": its pool is not counted");
        } else {
          missing_users.insert(role);
        }
      }
      p.counted = db_ok && role_ok;
      b.pools.push_back(std::move(p));
      pool_entry.push_back(&d);
    }
  };
  for (const auto& d : plan.entries) {
    if (d.name != "*") {
      add_pools(d, d.name, server_dbname(d));
      continue;
    }
    if (!d.dbname.empty()) {
      note("the fallback entry * sends every database name a client asks for to " +
           quoted(d.dbname) +
           ", each with its own pool: those pools are not bounded and not "
           "counted");
      continue;
    }
    note(
        "the fallback entry * is counted as one pool per database of this server that has no "
        "entry of its own");
    for (const auto& df : facts.databases) {
      if (df.is_template || !df.allow_connections || config::is_reserved_database(df.name) ||
          cfg.find_database(df.name) != nullptr) {
        continue;
      }
      add_pools(d, df.name, df.name);
    }
  }
  if (any_unforced) {
    note(
        "databases without a forced user are counted with a pool for every user of the auth "
        "file and [users] (" +
        std::to_string(users.size()) + "): an upper bound, clients may use fewer");
    if (!cfg.settings.auth_user.empty() ||
        std::any_of(plan.entries.begin(), plan.entries.end(),
                    [](const auto& d) { return d.auth_user.has_value(); })) {
      note(
          "auth_user is set: users found through auth_query are not in the auth file and are "
          "not counted");
    }
    if (cfg.settings.auth_type == config::AuthType::Any) {
      note(
          "auth_type is any: clients may give any user name, so databases without a forced user "
          "have no bound");
    }
  }
  if (!missing_users.empty()) {
    std::string names;
    for (const auto& u : missing_users)
      names += (names.empty() ? "" : ", ") + u;
    note(
        "users of the auth file or [users] with no login role on this server (their pools cannot "
        "log in and are not counted): " +
        names);
  }

  // Caps: max_db_connections per client-facing database, max_user_connections per role.
  struct Group {
    int sum = 0;
    int limit = 0;
  };
  std::map<std::string, Group> db_groups, user_groups;
  for (std::size_t i = 0; i < b.pools.size(); ++i) {
    const PoolRow& p = b.pools[i];
    if (!p.counted) continue;
    b.pools_sum += p.max();
    Group& dg = db_groups[p.database];
    dg.sum += p.max();
    dg.limit = db_limit(cfg, *pool_entry[i]);
    Group& ug = user_groups[p.user];
    ug.sum += p.max();
    ug.limit = user_limit(cfg, p.user);
  }
  int by_dbs = 0, by_users = 0;
  for (const auto& [k, g] : db_groups)
    by_dbs += capped(g.sum, g.limit);
  for (const auto& [k, g] : user_groups)
    by_users += capped(g.sum, g.limit);
  b.sluice_max = std::min(by_dbs, by_users);

  if (b.sluice_max > b.available) {
    std::string how = b.sluice_max == b.pools_sum
                          ? "pool_size + reserve_pool_size of every pool"
                          : "pool_size + reserve_pool_size " + std::to_string(b.pools_sum) +
                                ", capped by max_db_connections and max_user_connections";
    b.findings.push_back(
        {Severity::Problem, "the pools together may open " + std::to_string(b.sluice_max) +
                                " connections to " + b.address.display() + " (" + how +
                                ") but the server has " + std::to_string(b.available) +
                                " for non-superuser roles (" + slots_formula(facts) + ")"});
  }

  // Roles: each pool at most its database group's cap, the sum at most max_user_connections.
  std::map<std::string, std::vector<std::pair<std::string, int>>> role_parts, db_parts;
  std::map<std::string, int> role_sum;
  for (const auto& p : b.pools) {
    if (!p.counted) continue;
    const Group& dg = db_groups[p.database];
    int n = capped(p.max(), dg.limit);
    role_sum[p.user] += n;
    role_parts[p.user].emplace_back(p.database, n);
  }
  for (const auto& [role, sum] : role_sum) {
    const RoleFacts* rf = find_named(facts.roles, role);
    const Group& ug = user_groups[role];
    LimitRow row{role, capped(sum, ug.limit), rf->connlimit, ug.limit, rf->superuser, 0, ""};
    if (auto it = by_user.find(role); it != by_user.end()) {
      row.open_now = it->second.total;
      row.states = describe_states(it->second);
    }
    if (rf->superuser) {
      note("role " + quoted(role) + " is a superuser: CONNECTION LIMITs do not hold it, and its " +
           "pools can take the slots reserved for superusers");
    } else if (rf->connlimit >= 0 && row.sluice_max > rf->connlimit) {
      b.findings.push_back(
          {Severity::Problem,
           "role " + quoted(role) + " has CONNECTION LIMIT " + std::to_string(rf->connlimit) +
               " but its pools may open " + std::to_string(row.sluice_max) + " (" +
               list_pools(role_parts[role]) + "): connections past " +
               std::to_string(rf->connlimit) + " fail with \"too many connections for role\""});
    }
    b.roles.push_back(std::move(row));
  }

  // Server databases: per client-facing group, pools capped by their role's cap and the group's.
  struct DbTake {
    int all = 0;
    int limited = 0;  // pools of non-superuser roles: the ones datconnlimit holds
    int config_limit = 0;
  };
  std::map<std::string, DbTake> db_take;
  std::map<std::string, std::string> group_dbname;
  std::map<std::string, DbTake> group_take;
  for (const auto& p : b.pools) {
    if (!p.counted) continue;
    const Group& ug = user_groups[p.user];
    int n = capped(p.max(), ug.limit);
    DbTake& t = group_take[p.database];
    t.all += n;
    if (!find_named(facts.roles, p.user)->superuser) t.limited += n;
    group_dbname[p.database] = p.dbname;
  }
  for (const auto& [group, t] : group_take) {
    const Group& dg = db_groups[group];
    DbTake& d = db_take[group_dbname[group]];
    d.all += capped(t.all, dg.limit);
    d.limited += capped(t.limited, dg.limit);
    if (dg.limit > 0) d.config_limit += dg.limit;
    db_parts[group_dbname[group]].emplace_back(group, capped(t.limited, dg.limit));
  }
  for (const auto& [dbname, t] : db_take) {
    const DatabaseFacts* df = find_named(facts.databases, dbname);
    LimitRow row{dbname, t.all, df->connlimit, t.config_limit, false, 0, ""};
    if (auto it = by_db.find(dbname); it != by_db.end()) {
      row.open_now = it->second.total;
      row.states = describe_states(it->second);
    }
    if (df->connlimit >= 0 && t.limited > df->connlimit) {
      b.findings.push_back({Severity::Problem,
                            "database " + quoted(dbname) + " has CONNECTION LIMIT " +
                                std::to_string(df->connlimit) + " but the pools for it may open " +
                                std::to_string(t.limited) + " (" + list_pools(db_parts[dbname]) +
                                "): connections past " + std::to_string(df->connlimit) +
                                " fail with \"too many connections for database\""});
    }
    b.databases.push_back(std::move(row));
  }
  add_other_rows(b, by_user, by_db);

  server_findings(b);
  // Problems first, each kind in the order found.
  std::stable_partition(b.findings.begin(), b.findings.end(),
                        [](const Finding& x) { return x.severity == Severity::Problem; });
  return b;
}

ServerBudget evaluate_server(const ServerAddress& address, const ServerFacts& facts) {
  ServerBudget b;
  b.address = address;
  b.facts = facts;
  b.with_config = false;
  b.available = available_slots(facts);
  std::map<std::string, Open> by_user, by_db;
  count_open(b, by_user, by_db);
  add_other_rows(b, by_user, by_db);
  server_findings(b);
  std::stable_partition(b.findings.begin(), b.findings.end(),
                        [](const Finding& x) { return x.severity == Severity::Problem; });
  return b;
}

}  // namespace sluice::app::budget
