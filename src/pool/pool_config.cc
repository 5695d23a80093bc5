// PoolManager and the configuration: pools and limit groups refreshed from a Config (start
// and reload), with the targets their servers log in to.
#include "pool/pool.h"

namespace sluice::pool {
namespace {

// The server_tls_* settings other than the mode, as one comparable string (file names, not
// contents: a certificate renewed in place is picked up by new handshakes without closing).
std::string server_tls_summary(const config::Settings& st) {
  std::string t;
  for (const std::string* v :
       {&st.server_tls_ca_file, &st.server_tls_key_file, &st.server_tls_cert_file,
        &st.server_tls_protocols, &st.server_tls_ciphers, &st.server_tls13_ciphers}) {
    t.append(*v);
    t.push_back('\0');
  }
  return t;
}

}  // namespace

LimitGroup& PoolManager::db_group(std::string_view name) {
  auto it = dbs_.find(std::string(name));
  if (it == dbs_.end()) {
    auto g = std::make_unique<LimitGroup>();
    g->name = std::string(name);
    it = dbs_.emplace(std::string(name), std::move(g)).first;
  }
  return *it->second;
}

LimitGroup& PoolManager::user_group(std::string_view name) {
  auto it = users_.find(std::string(name));
  if (it == users_.end()) {
    auto g = std::make_unique<LimitGroup>();
    g->name = std::string(name);
    it = users_.emplace(std::string(name), std::move(g)).first;
  }
  return *it->second;
}

void PoolManager::refresh_pool(Pool& p, const config::Config& cfg) {
  const config::DatabaseConfig* d = cfg.find_database(p.db_name);
  if (d == nullptr) d = cfg.fallback_database();
  if (d == nullptr) {
    p.disabled = true;
    return;
  }
  p.disabled = false;
  p.dbcfg = *d;
  if (p.dbcfg.dbname.empty()) p.dbcfg.dbname = p.db_name;
  const auto& st = cfg.settings;
  const config::UserConfig* u = cfg.find_user(p.user_name);
  if (u != nullptr && u->pool_mode) {
    p.mode = *u->pool_mode;
  } else if (d->pool_mode) {
    p.mode = *d->pool_mode;
  } else {
    p.mode = st.pool_mode;
  }
  p.pool_size = (u != nullptr && u->pool_size >= 0) ? u->pool_size
                : d->pool_size >= 0                 ? d->pool_size
                                                    : st.default_pool_size;
  p.reserve_size = (u != nullptr && u->reserve_pool_size >= 0) ? u->reserve_pool_size
                   : d->reserve_pool_size >= 0                 ? d->reserve_pool_size
                                                               : st.reserve_pool_size;
  p.min_pool_size = d->min_pool_size >= 0 ? d->min_pool_size : st.min_pool_size;
  if (p.min_pool_size > 0) watch(p);  // global maintenance keeps it warm
  p.server_lifetime = d->server_lifetime >= 0 ? d->server_lifetime : st.server_lifetime;
  p.forced_user = d->user.has_value();
  p.password.reset();
  if (d->password && (!d->user || *d->user == p.user_name)) {
    p.password = d->password;
  } else if (const config::AuthEntry* a = cfg.find_auth(p.user_name)) {
    p.password = a->secret;
  }
  LimitGroup& dg = db_group(p.db_name);
  dg.max_servers = d->max_db_connections > 0 ? d->max_db_connections : st.max_db_connections;
  dg.max_clients = d->max_db_client_connections > 0 ? d->max_db_client_connections
                                                    : st.max_db_client_connections;
  if (p.db != &dg) p.db = &dg;  // set once: the shard paths read it without the lock
  LimitGroup& ug = user_group(p.user_name);
  ug.max_servers = (u != nullptr && u->max_user_connections > 0) ? u->max_user_connections
                                                                 : st.max_user_connections;
  if (p.user != &ug) p.user = &ug;

  auto t = std::make_shared<ConnectTarget>();
  t->hosts = d->hosts;
  t->port = d->port;
  t->unix_dir = st.unix_socket_dir.empty() ? "/tmp" : st.unix_socket_dir;
  t->load_balance = d->load_balance_hosts;
  t->dbname = p.dbcfg.dbname;
  t->user = p.user_name;
  t->password = p.password;
  t->startup_params = d->startup_params;
  t->connect_query = d->connect_query;
  t->lifetime = p.server_lifetime;
  t->connect_timeout = st.server_connect_timeout;
  t->tcp_keepalive = st.tcp_keepalive ? 1 : 0;
  t->tcp_keepcnt = st.tcp_keepcnt;
  t->tcp_keepidle = st.tcp_keepidle;
  t->tcp_keepintvl = st.tcp_keepintvl;
  t->tcp_user_timeout = st.tcp_user_timeout;
  t->tcp_socket_buffer = st.tcp_socket_buffer;
  t->sslmode = st.server_tls_sslmode;
  t->tls = server_tls_summary(st);
  if (auto it = switchovers_.find(p.db_name); it != switchovers_.end()) {
    t->hosts = it->second.to.hosts;  // SWITCHOVER outlives reloads that keep the address
    t->port = it->second.to.port;
  }
  if (p.target) {
    t->generation = p.target->same_login(*t) ? p.target->generation : p.target->generation + 1;
  }
  retarget(p, std::move(t));
}

void PoolManager::apply_config(const config::ConfigPtr& cfg) {
  {
    std::lock_guard<std::mutex> g(mu_);
    cfg_ = cfg;
    check_delay_ = cfg->settings.server_check_query.empty() ? -1 : cfg->settings.server_check_delay;
    apply_switchovers(*cfg);
    for (auto& [k, p] : pools_)
      refresh_pool(*p, *cfg);
    for (auto& [k, grp] : users_) {
      const config::UserConfig* u = cfg->find_user(grp->name);
      grp->max_servers = (u != nullptr && u->max_user_connections > 0)
                             ? u->max_user_connections
                             : cfg->settings.max_user_connections;
      grp->max_clients = (u != nullptr && u->max_user_client_connections > 0)
                             ? u->max_user_client_connections
                             : cfg->settings.max_user_client_connections;
    }
    for (auto& [k, grp] : dbs_) {
      const config::DatabaseConfig* d = cfg->find_database(grp->name);
      if (d == nullptr) d = cfg->fallback_database();  // as refresh_pool does
      int dmax = d != nullptr ? d->max_db_connections : 0;
      int cmax = d != nullptr ? d->max_db_client_connections : 0;
      grp->max_servers = dmax > 0 ? dmax : cfg->settings.max_db_connections;
      grp->max_clients = cmax > 0 ? cmax : cfg->settings.max_db_client_connections;
    }
    for (const auto& d : cfg->databases) {
      if (!d.user || d.name == "*") continue;
      std::string key = d.name + '\0' + *d.user;
      if (pools_.find(key) == pools_.end()) {
        auto p = std::make_unique<Pool>(d.name, *d.user, worker_count());
        refresh_pool(*p, *cfg);
        pools_.emplace(std::move(key), std::move(p));
      }
    }
  }
}

}  // namespace sluice::pool
