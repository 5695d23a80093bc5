// PoolManager: checkout, release, waiter FIFO, launches and limits under one lock.
#include "pool/pool.h"

#include <algorithm>

#include "core/log.h"
#include "pool/pool_actions.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/writer.h"

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

Pool::Pool(std::string db, std::string user, int workers)
    : db_name(std::move(db)),
      user_name(std::move(user)),
      counters(std::make_unique<PoolCounters[]>(static_cast<std::size_t>(workers))),
      workers_(static_cast<std::size_t>(workers)),
      shards_(std::make_unique<PoolShard[]>(static_cast<std::size_t>(workers))) {}

int Pool::idle_count() const {
  int n = 0;
  for (std::size_t i = 0; i < workers_; ++i)
    n += shards_[i].idle_n.load();
  return n;
}

int Pool::active() const {
  int n = handoff;
  for (std::size_t i = 0; i < workers_; ++i)
    n += shards_[i].active_n.load();
  return n;
}

PoolManager::PoolManager(std::vector<WorkerBase*> workers, Connector* connector,
                         const core::Clock* clock)
    : workers_(std::move(workers)),
      connector_(connector),
      clock_(clock),
      idle_pools_(workers_.size()) {
  static PostgresConnector postgres;
  if (connector_ == nullptr) connector_ = &postgres;
}

void PostgresConnector::open(Pool& p, std::shared_ptr<const ConnectTarget> target, WorkerBase& w) {
  auto* s = new ServerConn(p, w);
  s->start(std::move(target));
}

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

Pool* PoolManager::get_pool(const config::DatabaseConfig& db, std::string_view db_name,
                            std::string_view server_user, WorkerBase& current) {
  std::lock_guard<std::mutex> g(mu_);
  std::string key(db_name);
  key.push_back('\0');
  key.append(server_user);
  core::Micros now = clock_now(current);
  auto it = pools_.find(key);
  if (it != pools_.end()) {
    ++it->second->refs;
    it->second->last_used = now;
    return it->second.get();
  }
  auto p = std::make_unique<Pool>(std::string(db_name), std::string(server_user), worker_count());
  if (cfg_) refresh_pool(*p, *cfg_);
  p->auto_db = cfg_ && cfg_->find_database(db_name) == nullptr;
  (void)db;
  p->refs = 1;
  p->last_used = now;
  Pool* raw = p.get();
  pools_.emplace(std::move(key), std::move(p));
  return raw;
}

void PoolManager::drop_ref(Pool& p) {
  std::lock_guard<std::mutex> g(mu_);
  --p.refs;
  p.last_used = clock_ != nullptr ? clock_->now() : core::monotonic_now();
  if (p.auto_db && p.refs == 0) watch(p);
}

bool PoolManager::needs_watch(const Pool& p) const {
  return !p.waiters.empty() || p.min_pool_size > 0 || (p.auto_db && p.refs == 0);
}

// autodb_idle_timeout: pools of `*` databases with no holder, server or waiter for that long
// are freed (lock held). Nothing outside the manager points at such a pool: clients and lookups
// hold a reference, servers are counted in `servers`.
void PoolManager::free_idle_auto_pools(core::Micros now) {
  if (!cfg_ || cfg_->settings.autodb_idle_timeout <= 0) return;
  core::Micros timeout = cfg_->settings.autodb_idle_timeout;
  std::vector<Pool*> freed;
  for (Pool* p : watched_) {
    if (p->auto_db && p->refs == 0 && p->clients == 0 && p->servers == 0 && p->waiters.empty() &&
        now - p->last_used >= timeout) {
      freed.push_back(p);
    }
  }
  for (Pool* p : freed) {
    core::log(core::LogLevel::Log, "{}/{}: auto-database pool freed after {} s unused", p->db_name,
              p->user_name, (now - p->last_used) / core::kMicrosPerSecond);
    std::erase(watched_, p);
    for (std::size_t w = 0; w < idle_pools_.size(); ++w) {
      if (p->shard(w).listed != 0) std::erase(idle_pools_[w], p);
    }
    std::string key = p->db_name;
    key.push_back('\0');
    key.append(p->user_name);
    pools_.erase(key);
  }
}

std::string PoolManager::try_add_client(std::string_view db_name, std::string_view user_name,
                                        bool exempt) {
  std::lock_guard<std::mutex> g(mu_);
  const bool first_use = dbs_.find(std::string(db_name)) == dbs_.end();
  LimitGroup& d = db_group(db_name);
  LimitGroup& u = user_group(user_name);
  if (cfg_) {
    const auto& st = cfg_->settings;
    const config::DatabaseConfig* dc = cfg_->find_database(db_name);
    if (dc == nullptr) {
      dc = cfg_->fallback_database();
      if (dc != nullptr && first_use && db_name != "pgbouncer") {
        core::log(core::LogLevel::Log, "registered new auto-database: {}", db_name);
      }
    }
    d.max_clients = dc != nullptr && dc->max_db_client_connections > 0
                        ? dc->max_db_client_connections
                        : st.max_db_client_connections;
    const config::UserConfig* uc = cfg_->find_user(user_name);
    u.max_clients = uc != nullptr && uc->max_user_client_connections > 0
                        ? uc->max_user_client_connections
                        : st.max_user_client_connections;
  }
  if (!exempt) {
    if (d.max_clients > 0 && d.clients - d.exempt_clients >= d.max_clients) {
      return "max_db_client_connections";
    }
    if (u.max_clients > 0 && u.clients - u.exempt_clients >= u.max_clients) {
      return "max_user_client_connections";
    }
  }
  ++d.clients;
  ++u.clients;
  if (exempt) {
    ++d.exempt_clients;
    ++u.exempt_clients;
  }
  return {};
}

void PoolManager::remove_client(std::string_view db_name, std::string_view user_name, bool exempt) {
  std::lock_guard<std::mutex> g(mu_);
  LimitGroup& d = db_group(db_name);
  LimitGroup& u = user_group(user_name);
  --d.clients;
  --u.clients;
  if (exempt) {
    --d.exempt_clients;
    --u.exempt_clients;
  }
}

void PoolManager::pool_client_added(Pool& p) {
  std::lock_guard<std::mutex> g(mu_);
  ++p.clients;
  p.had_clients = true;
}

void PoolManager::remember_scram_keys(std::string_view user, std::string_view secret,
                                      const proto::auth::ScramKeys& keys) {
  std::lock_guard<std::mutex> g(mu_);
  std::string k(user);
  k.push_back('\0');
  k.append(secret);
  scram_keys_[k] = keys;
}

std::optional<proto::auth::ScramKeys> PoolManager::scram_keys(Pool& p, std::string_view secret) {
  std::lock_guard<std::mutex> g(mu_);
  std::string k(p.user_name);
  k.push_back('\0');
  k.append(secret);
  auto it = scram_keys_.find(k);
  if (it == scram_keys_.end()) return std::nullopt;
  return it->second;
}

bool PoolManager::try_pin(Pool& p) {
  std::lock_guard<std::mutex> g(mu_);
  int cap = cfg_ && cfg_->settings.max_pinned_servers > 0 ? cfg_->settings.max_pinned_servers
                                                          : p.pool_size;
  if (p.pinned >= cap) return false;
  ++p.pinned;
  return true;
}

void PoolManager::unpin(Pool& p) {
  std::lock_guard<std::mutex> g(mu_);
  if (p.pinned > 0) --p.pinned;
}

bool PoolManager::welcome(Pool& p, std::vector<std::pair<std::string, std::string>>& params) {
  std::lock_guard<std::mutex> g(mu_);
  if (!p.welcome_ready) return false;
  params = p.welcome;
  return true;
}

void PoolManager::pool_client_removed(Pool& p) {
  std::lock_guard<std::mutex> g(mu_);
  --p.clients;
  --p.refs;  // taken by get_pool at login
  p.last_used = clock_ != nullptr ? clock_->now() : core::monotonic_now();
  if (p.auto_db && p.refs == 0) watch(p);
}

bool PoolManager::can_open(const Pool& p, bool reserve) const {
  if (p.disabled) return false;
  int limit = p.pool_size + (reserve ? p.reserve_size : 0);
  if (p.servers >= limit) return false;
  return !blocked_by_group(p);
}

bool PoolManager::blocked_by_group(const Pool& p) const {
  if (p.db->max_servers > 0 && p.db->servers >= p.db->max_servers) return true;
  if (p.user->max_servers > 0 && p.user->servers >= p.user->max_servers) return true;
  return false;
}

void PoolManager::launch(Pool& p, Actions& a, WorkerBase* where) {
  ++p.servers;
  ++p.connecting;
  ++p.db->servers;
  ++p.user->servers;
  ++p.total_connects;
  a.add().launches.push_back({&p, p.target, where});
}

void PoolManager::launch_for_waiters(Pool& p, core::Micros now, Actions& a) {
  if (p.waiters.empty() || p.disabled || held(p)) return;
  if (p.last_connect_failed != 0 && cfg_ &&
      now < p.last_connect_failed + cfg_->settings.server_login_retry) {
    return;
  }
  int covered = p.connecting + p.idle_count() + p.checking;
  int need = static_cast<int>(p.waiters.size()) - covered;
  if (need <= 0) return;
  // Each new server opens on the worker of the waiter it is for (the waiters past those the
  // servers already on their way will serve), so that it need not move there later.
  int i = 0;
  p.waiters.for_each_until([&](Waiter& w) {
    if (i++ < covered) return true;
    if (!can_open(p, false)) return false;
    launch(p, a, w.home);
    return --need > 0;
  });
}

void PoolManager::give(ServerConn& s, Waiter& w, WorkerBase& current, Actions& a) {
  Pool& p = *s.pool;
  w.queued = false;
  w.assigned = &s;
  w.delivery_pending = true;
  // A waiter of another worker: the server moves there after this loop iteration (run()).
  move(s, w.home == &current ? ServerState::Active : ServerState::Handoff);
  s.linked_once = true;
  core::Micros waited = clock_now(current) - w.wait_since;
  ++p.total_waits;
  p.total_wait_time += waited;
  a.add().assign.emplace_back(&s, &w);
}

void PoolManager::make_available(ServerConn& s, WorkerBase& current, Actions& a) {
  Pool& p = *s.pool;
  core::Micros now = clock_now(current);
  if (s.close_requested || p.disabled) {
    move(s, ServerState::Closing);
    a.add().closes.emplace_back(&s, p.disabled ? "database removed" : "reconnect requested");
    return;
  }
  if (stale(s, p)) {
    move(s, ServerState::Closing);
    a.add().closes.emplace_back(&s, "database configuration changed");
    return;
  }
  if (lifetime_over(s, now)) {
    move(s, ServerState::Closing);
    a.add().closes.emplace_back(&s, "server lifetime over");
    return;
  }
  if (closes_on_release(p)) {
    move(s, ServerState::Closing);
    a.add().closes.emplace_back(&s, "pause mode");
    return;
  }
  if (Waiter* w = held(p) ? nullptr : pick_waiter(p, s, current, now)) {
    give(s, *w, current, a);
    return;
  }
  s.idle_since = now;
  move(s, ServerState::Idle);
}

// The waiter a released server of worker `on` goes to (removed from the queue). Strict FIFO
// once the oldest waiter has waited `affinity_wait`; before that, among the first
// kAffinityScan waiters, the oldest one whose session settings the server already holds (no
// sync query), then on the server's own worker (no move between threads). So affinity can
// pass the oldest waiter over only while it has waited less than the bound.
Waiter* PoolManager::pick_waiter(Pool& p, const ServerConn& s, const WorkerBase& on,
                                 core::Micros now) {
  constexpr int kAffinityScan = 16;
  Waiter* front = p.waiters.front();
  if (front == nullptr) return nullptr;
  core::Micros bound = cfg_ ? cfg_->settings.affinity_wait : 0;
  if (bound <= 0 || now - front->wait_since >= bound || p.waiters.size() == 1) {
    return p.waiters.pop_front();
  }
  const void* key = s.settings.get();
  Waiter* best = nullptr;
  int best_score = -1;
  int seen = 0;
  p.waiters.for_each_until([&](Waiter& w) {
    int score = (w.affinity_key == key ? 2 : 0) + (w.home == &on ? 1 : 0);
    if (score > best_score) {
      best = &w;
      best_score = score;
    }
    return best_score < 3 && ++seen < kAffinityScan;
  });
  p.waiters.remove(*best);
  if (best != front) ++p.affinity_picks;
  return best;
}

// An idle server of worker `on` that already holds the session settings `key`, among the
// first few; checked like pop_fresh_idle. Null when none is at hand.
ServerConn* PoolManager::pop_matching_idle(Pool& p, WorkerBase& on, const void* key) {
  constexpr int kIdleScan = 8;
  auto& idle = p.shard(on).idle;
  if (idle.size() < 2) return nullptr;  // nothing to choose from
  ServerConn* found = nullptr;
  int seen = 0;
  idle.for_each_until([&](ServerConn& s) {
    if (s.settings.get() == key) found = &s;
    return found == nullptr && ++seen < kIdleScan;
  });
  if (found == nullptr || found->close_requested || stale(*found, p) ||
      needs_check(*found, clock_now(on))) {
    return nullptr;  // the general path deals with it
  }
  return found;  // still Idle: the caller moves it
}

bool PoolManager::stale(const ServerConn& s, const Pool& p) {
  return s.target && s.target->generation != p.generation;
}

// server_lifetime = 0: a connection serves one client (or transaction) only.
bool PoolManager::lifetime_over(const ServerConn& s, core::Micros now) const {
  return s.lifetime > 0 ? now - s.connected_at >= s.lifetime : s.linked_once;
}

// An idle server of worker `on` that may still be used (still Idle: the caller moves it);
// stale ones met on the way are closed, ones idle too long checked first.
ServerConn* PoolManager::pop_fresh_idle(Pool& p, WorkerBase& on, Actions& a) {
  auto& idle = p.shard(on).idle;
  core::Micros now = clock_now(on);
  while (ServerConn* s = idle.front()) {
    if (s->close_requested || stale(*s, p)) {
      move(*s, ServerState::Closing);
      a.add().closes.emplace_back(s, "database configuration changed");
    } else if (needs_check(*s, now)) {
      start_check(p, *s, a);  // comes back through release() and make_available()
    } else {
      return s;
    }
  }
  return nullptr;
}

// The one place a server's state changes once it has logged in (manager lock held; the shard
// paths call shift() alone): leaves the old state's list and counter, enters the new one's.
// States and what counts them: Connecting/Login (and Internal while logging in: connect_query)
// `connecting`; Idle the owner's shard (idle list, `idle_n`); Active its `active_n`; Handoff
// `handoff`; Internal for server_check_query `checking`; Closing and Closed nothing but
// `servers`, which only server_closed() lowers (a slot is free once the socket is).
void PoolManager::move(ServerConn& s, ServerState to) {
  Pool& p = *s.pool;
  auto opening = [](ServerState x) {
    return x == ServerState::Connecting || x == ServerState::Login;
  };
  ServerState from = s.state;
  if (opening(from) && !opening(to)) --p.connecting;
  if (from == ServerState::Internal && s.checking) {
    s.checking = false;
    --p.checking;
  }
  if (to == ServerState::Idle) {
    PoolShard& sh = p.shard(*s.worker);
    if (sh.listed == 0) {  // maintenance of that worker visits it from now on
      sh.listed = 1;
      idle_pools_[static_cast<std::size_t>(s.worker->id())].push_back(&p);
    }
  }
  if (in_shard(from) || in_shard(to)) {
    std::lock_guard<std::mutex> g(p.shard(*s.worker).mu);
    shift(s, to);
  } else {
    s.state = to;
  }
}

bool PoolManager::in_shard(ServerState x) {
  return x == ServerState::Idle || x == ServerState::Active || x == ServerState::Handoff;
}

// The part of a move kept in shards, by the server's owner holding its shard's lock. Only the
// owner writes its shard's counts: plain loads and stores, except the one that publishes an
// idle server, which is sequentially consistent (release_local). Handoff is counted in the pool
// (a handoff is decided, and completed, under the manager lock).
void PoolManager::shift(ServerConn& s, ServerState to) {
  Pool& p = *s.pool;
  PoolShard& sh = p.shard(*s.worker);
  auto bump = [](std::atomic<int>& c, int d) {
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  };
  switch (s.state.get()) {
    case ServerState::Idle:
      sh.idle.remove(s);
      bump(sh.idle_n, -1);
      break;
    case ServerState::Active:
      bump(sh.active_n, -1);
      break;
    case ServerState::Handoff:
      --p.handoff;
      break;
    default:
      break;
  }
  switch (to) {
    case ServerState::Idle:
      sh.idle.push_back(s);
      sh.idle_n.store(sh.idle_n.load(std::memory_order_relaxed) + 1);
      break;
    case ServerState::Active:
      bump(sh.active_n, 1);
      break;
    case ServerState::Handoff:
      ++p.handoff;
      break;
    default:
      break;
  }
  s.state = to;
}

void PoolManager::begin_internal(ServerConn& s) {
  std::lock_guard<std::mutex> g(mu_);
  if (s.state != ServerState::Internal) move(s, ServerState::Internal);
}

bool PoolManager::needs_check(const ServerConn& s, core::Micros now) const {
  core::Micros delay = check_delay_;
  return delay >= 0 && now - s.idle_since >= delay;  // -1: server_check_query "" disables checks
}

void PoolManager::start_check(Pool& p, ServerConn& s, Actions& a) {
  move(s, ServerState::Internal);
  s.checking = true;
  ++p.checking;
  a.add().checks.push_back(&s);
  if (cfg_) a.add().check_query = cfg_->settings.server_check_query;
}

void PoolManager::serve(Pool& p, WorkerBase& on, Actions& a) {
  while (!p.waiters.empty() && !held(p)) {
    ServerConn* s = pop_fresh_idle(p, on, a);
    if (s == nullptr) break;
    give(*s, *p.waiters.pop_front(), on, a);
  }
}

void PoolManager::kick_others(Pool& p, WorkerBase& current, Actions& a) {
  for (WorkerBase* w : workers_) {
    if (w == &current) continue;
    if (p.shard(*w).idle_n.load() > 0) a.add().kicks.emplace_back(w, &p);
  }
}

// The shard path of a checkout: an idle server of this worker that needs nothing first, while
// nobody waits and the pool is not held, under the shard's lock only. Null: the general path.
ServerConn* PoolManager::checkout_local(Pool& p, Waiter& w, WorkerBase& current) {
  PoolShard& sh = p.shard(current);
  ServerConn* s = sh.idle.front();  // the list changes only on this thread
  if (s == nullptr) return nullptr;
  core::Micros now = clock_now(current);
  if (s->close_requested || stale(*s, p) || needs_check(*s, now)) return nullptr;
  if (s->settings.get() != w.affinity_key) {
    if (ServerConn* m = pop_matching_idle(p, current, w.affinity_key)) s = m;
  }
  {
    std::lock_guard<std::mutex> g(sh.mu);
    // Checked under the shard lock: PAUSE sets the flag, then counts busy servers shard by shard
    // under these locks, so it either sees this server taken or this checkout sees the flag.
    if (p.waiters.waiting() > 0 || held(p)) return nullptr;
    shift(*s, ServerState::Active);
  }
  s->linked_once = true;
  return s;
}

ServerConn* PoolManager::checkout(Pool& p, Waiter& w, WorkerBase& current) {
  if (ServerConn* s = checkout_local(p, w, current)) return s;
  Actions a;
  ServerConn* got = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (p.waiters.empty() && !held(p)) {
      got = pop_fresh_idle(p, current, a);
      // The usual case: the least recently used idle server already holds the client's settings
      // (one compare). Otherwise one among the next few that does, if any.
      if (got != nullptr && got->settings.get() != w.affinity_key) {
        if (ServerConn* m = pop_matching_idle(p, current, w.affinity_key)) got = m;
      }
    }
    if (got != nullptr) {
      move(*got, ServerState::Active);
      got->linked_once = true;
    }
  }
  if (got != nullptr) {
    run(a, current);  // stale idle servers met on the way
    return got;
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    w.home = &current;
    w.wait_since = clock_now(current);
    w.queued = false;
    w.assigned = nullptr;
    w.delivery_pending = false;
    if (fail_fast(p, w, current, a)) {
      w.delivery_pending = true;
    } else {
      w.queued = true;
      p.waiters.push_back(w);
      watch(p);
    }
    serve(p, current, a);
    if (w.queued) {
      kick_others(p, current, a);  // after the wait is published: see release_local
      launch_for_waiters(p, clock_now(current), a);
    }
  }
  run(a, current);
  return nullptr;
}

// A client that needs a server while the pool has none logged in and the last login with the
// current target failed is refused at once with that failure (as PgBouncer does), instead of
// waiting out query_wait_timeout; one new attempt is started if server_login_retry allows.
// Clients waiting only to log in keep waiting (client_login_timeout bounds them).
bool PoolManager::fail_fast(Pool& p, Waiter& w, WorkerBase& current, Actions& a) {
  if (w.login || !p.login_failing || !p.target || p.login_fail_generation != p.target->generation ||
      p.servers - p.connecting > 0) {
    return false;
  }
  std::string body;
  proto::write_error(body, {proto::Severity::Fatal, proto::sqlstate::kProtocolViolation,
                            "server login has been failing, cached error: " + p.login_fail_message +
                                " (server_login_retry)"});
  a.add().login_failures.emplace_back(&w, body.substr(proto::kHeaderLen));
  core::Micros now = clock_now(current);
  bool retry_ok = !cfg_ || p.last_connect_failed == 0 ||
                  now >= p.last_connect_failed + cfg_->settings.server_login_retry;
  if (retry_ok && p.connecting == 0 && !p.disabled && !held(p) && can_open(p, false)) {
    launch(p, a);
  }
  return true;
}

bool PoolManager::cancel_wait(Pool& p, Waiter& w) {
  std::lock_guard<std::mutex> g(mu_);
  if (w.queued) {
    p.waiters.remove(w);
    w.queued = false;
    return true;
  }
  return !w.delivery_pending;
}

// The shard path of a release: back to this worker's idle list under the shard's lock only,
// when nobody waits and nothing else is due (closing it, a listing for maintenance). False:
// the general path. A client that queues meanwhile is not missed: it publishes its wait, then
// reads every shard's idle count (checkout, kick_others); this path publishes the idle server,
// then reads the wait count; with both sequentially consistent, one of them sees the other.
bool PoolManager::release_local(ServerConn& s, WorkerBase& current) {
  Pool& p = *s.pool;
  PoolShard& sh = p.shard(current);
  if (s.state != ServerState::Active || s.worker != &current || sh.listed == 0) return false;
  core::Micros now = clock_now(current);
  if (s.close_requested || p.disabled || stale(s, p) || lifetime_over(s, now)) return false;
  {
    std::lock_guard<std::mutex> g(sh.mu);
    if (p.waiters.waiting() > 0 || held(p)) return false;
    s.user = nullptr;
    s.idle_since = now;
    shift(s, ServerState::Idle);
  }
  if (p.waiters.waiting() > 0) {  // a client queued meanwhile: serve it from here
    Actions a;
    {
      std::lock_guard<std::mutex> g(mu_);
      serve(p, current, a);
    }
    run(a, current);
  }
  return true;
}

void PoolManager::release(ServerConn& s, WorkerBase& current) {
  if (release_local(s, current)) return;
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    s.user = nullptr;
    make_available(s, current, a);  // moves it out of Active or Internal
  }
  run(a, current);
}

void PoolManager::server_ready(ServerConn& s, WorkerBase& current,
                               std::vector<std::pair<std::string, std::string>> params) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    Pool& p = *s.pool;
    // Logged in (connect_query done, if any): leaves the `connecting` count in make_available.
    s.state = ServerState::Login;
    p.last_connect_failed = 0;
    p.last_login_error.clear();
    p.login_failing = false;
    if (!stale(s, p)) {
      s.usable_counted = true;
      ++p.usable;
    }
    if (!p.welcome_ready) {
      p.welcome = std::move(params);
      p.welcome_ready = true;
    }
    make_available(s, current, a);
  }
  run(a, current);
}

void PoolManager::server_closed(ServerConn& s, WorkerBase& current) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    Pool& p = *s.pool;
    move(s, ServerState::Closed);
    if (s.usable_counted && !stale(s, p)) --p.usable;
    s.usable_counted = false;
    --p.servers;
    --p.db->servers;
    --p.user->servers;
    // The freed slot may let this pool or a pool of the same database or user open one.
    core::Micros now = clock_now(current);
    launch_for_waiters(p, now, a);
    for (Pool* q : watched_) {  // pools with waiters are watched
      if (q != &p && (q->db == p.db || q->user == p.user)) launch_for_waiters(*q, now, a);
    }
  }
  run(a, current);
}

// Closes an idle server of another pool of the same database or user. One of this worker is
// closed here; one of another worker is closed by its owner (posted), which finds it again
// under the lock: only a server's owner changes its state.
bool PoolManager::evict_for(Pool& p, WorkerBase& current, Actions& a) {
  bool by_db = p.db->max_servers > 0 && p.db->servers >= p.db->max_servers;
  for (auto& [k, q] : pools_) {
    if (q.get() == &p || q->idle_count() == 0) continue;
    if (by_db ? q->db != p.db : q->user != p.user) continue;
    if (ServerConn* s = q->shard(current).idle.front()) {
      move(*s, ServerState::Closing);
      a.add().closes.emplace_back(s, "evicted");
      return true;
    }
    for (WorkerBase* w : workers_) {
      if (q->shard(*w).idle_n.load() > 0) {
        a.add().evictions.emplace_back(w, q.get());
        return true;
      }
    }
  }
  return false;
}

void PoolManager::evict_one(Pool& q, WorkerBase& owner) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (ServerConn* s = q.shard(owner).idle.front()) {
      move(*s, ServerState::Closing);
      a.add().closes.emplace_back(s, "evicted");
    }
  }
  run(a, owner);
}

void PoolManager::handoff_arrived(ServerConn& s) {
  std::lock_guard<std::mutex> g(mu_);
  move(s, ServerState::Active);
}

void PoolManager::maintain_worker(WorkerBase& w) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!cfg_) return;
    const auto& st = cfg_->settings;
    core::Micros now = clock_now(w);
    auto wi = static_cast<std::size_t>(w.id());
    auto& listed = idle_pools_[wi];
    for (Pool* p : listed) {
      auto& idle = p->shard(wi).idle;  // this worker's: only it changes the list
      std::vector<std::pair<ServerConn*, const char*>> drop;
      std::vector<ServerConn*> check;
      idle.for_each([&](ServerConn& s) {
        if (s.close_requested) {
          drop.emplace_back(&s, "reconnect requested");
        } else if (p->disabled) {
          drop.emplace_back(&s, "database removed");
        } else if (closes_on_release(*p)) {
          drop.emplace_back(&s, "pause mode");
        } else if (stale(s, *p)) {
          drop.emplace_back(&s, "database configuration changed");
        } else if (s.lifetime > 0 && now - s.connected_at >= s.lifetime) {
          drop.emplace_back(&s, "server lifetime over");
        } else if (st.server_idle_timeout > 0 && now - s.idle_since >= st.server_idle_timeout &&
                   p->servers - static_cast<int>(drop.size()) > p->min_pool_size) {
          drop.emplace_back(&s, "server idle timeout");
        } else if (st.server_check_delay > 0 && !st.server_check_query.empty() &&
                   now - s.idle_since >= st.server_check_delay) {
          check.push_back(&s);
        }
      });
      for (auto& [s, why] : drop) {
        move(*s, ServerState::Closing);
        a.add().closes.emplace_back(s, why);
      }
      for (ServerConn* s : check)
        start_check(*p, *s, a);
    }
    // Pools with no idle server here any more leave the list (going idle lists them again).
    std::erase_if(listed, [wi](Pool* p) {
      if (!p->shard(wi).idle.empty()) return false;
      p->shard(wi).listed = 0;
      return true;
    });
  }
  run(a, w);
}

void PoolManager::maintain_global(WorkerBase& w) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!cfg_) return;
    const auto& st = cfg_->settings;
    core::Micros now = clock_now(w);
    free_idle_auto_pools(now);
    // Only the pools that need it: waiters, min_pool_size, unused auto-databases (watch()).
    std::vector<Pool*> visit = watched_;
    std::erase_if(watched_, [this](Pool* p) {
      if (needs_watch(*p)) return false;
      p->watched = false;
      return true;
    });
    for (Pool* pp : visit) {
      Pool& p = *pp;
      if (p.disabled || held(p)) continue;
      bool retry_ok =
          p.last_connect_failed == 0 || now >= p.last_connect_failed + st.server_login_retry;
      if (!retry_ok) continue;
      // Keep min_pool_size warm once the pool is in use (or its user is forced).
      if ((p.forced_user || p.had_clients) && p.servers < p.min_pool_size && can_open(p, false)) {
        launch(p, a);
      }
      launch_for_waiters(p, now, a);
      if (p.waiters.empty()) continue;
      if (p.idle_count() > 0) {
        serve(p, w, a);
        kick_others(p, w, a);
      }
      int need = static_cast<int>(p.waiters.size()) - p.connecting - p.idle_count();
      if (need <= 0) continue;
      // Reserve pool: clients waited long enough.
      if (p.reserve_size > 0 && now - p.waiters.front()->wait_since >= st.reserve_pool_timeout) {
        while (need > 0 && !can_open(p, false) && can_open(p, true)) {
          launch(p, a);
          a.add().reserve_logs.push_back(&p);
          --need;
        }
      }
      // Limited by max_db_connections / max_user_connections: take an idle server of another
      // pool of the same database or user.
      if (need > 0 && p.servers < p.pool_size && blocked_by_group(p)) evict_for(p, w, a);
    }
  }
  run(a, w);
}

void PoolManager::reconnect_all(WorkerBase& current) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [k, p] : pools_) {
      // Servers started before now close instead of going back to the pool.
      if (p->target) {
        auto t = std::make_shared<ConnectTarget>(*p->target);
        ++t->generation;
        retarget(*p, std::move(t));
      }
      take_own_idle(*p, &current, a, "reconnect requested");
    }
    sweep_others(&current, a);
  }
  run(a, current);
}

// This worker's idle servers of `p` taken out to be closed (manager lock held); the idle
// servers of other workers are closed by their owners (sweep_others).
void PoolManager::take_own_idle(Pool& p, WorkerBase* current, Actions& a, const char* why) {
  if (current == nullptr) return;
  auto& list = p.shard(*current).idle;
  while (ServerConn* s = list.front()) {
    move(*s, ServerState::Closing);
    a.add().closes.emplace_back(s, why);
  }
}

// Every other worker runs its maintenance now, which closes its idle servers that are stale,
// of a paused or removed database, or marked to close.
void PoolManager::sweep_others(WorkerBase* current, Actions& a) {
  for (WorkerBase* w : workers_) {
    if (w != current) a.add().sweeps.push_back(w);
  }
}

void PoolManager::run(Actions& acts, WorkerBase& current) {
  if (!acts.lists) return;
  Actions::Lists& a = *acts.lists;
  for (auto& [w, body] : a.login_failures) {
    Waiter* wp = w;
    w->home->loop().post(
        [wp, b = std::move(body)]() mutable { wp->on_login_failed(std::move(b)); });
  }
  for (Pool* p : a.reserve_logs) {
    core::log(core::LogLevel::Log, "{}/{}: taking connection from reserve_pool", p->db_name,
              p->user_name);
  }
  for (auto& l : a.launches) {
    if (l.where == nullptr || l.where == &current) {
      connector_->open(*l.pool, std::move(l.target), current);
    } else {
      WorkerBase* wb = l.where;
      wb->loop().post([this, p = l.pool, t = std::move(l.target), wb]() mutable {
        connector_->open(*p, std::move(t), *wb);
      });
    }
  }
  for (auto& [s, w] : a.assign) {
    if (w->home == &current) {
      w->on_assignment();
    } else {
      ServerConn* sp = s;
      Waiter* wp = w;
      sp->pool->counters_of(current).server_moves.add(1);
      // The server (state Handoff, its events ignored) changes owner between event batches:
      // after this iteration it leaves this loop, then the waiter's loop takes it.
      current.loop().after_batch([this, sp, wp] {
        sp->detach_from_worker();
        wp->home->loop().post([this, sp, wp] {
          bool ok = sp->attach_to_worker(*wp->home);
          handoff_arrived(*sp);
          if (!ok) {
            // Could not take over the socket: the server is lost, the waiter is told.
            wp->assigned = nullptr;
            sp->close("cannot register socket", false);
            wp->on_login_failed({});
            return;
          }
          wp->on_assignment();
        });
      });
    }
  }
  for (auto& [w, p] : a.kicks) {
    Pool* pp = p;
    WorkerBase* wb = w;
    wb->loop().post([this, pp, wb] {
      Actions b;
      {
        std::lock_guard<std::mutex> g(mu_);
        serve(*pp, *wb, b);
      }
      run(b, *wb);
    });
  }
  for (WorkerBase* w : a.sweeps) {
    WorkerBase* wb = w;
    wb->loop().post([this, wb] { maintain_worker(*wb); });
  }
  for (auto& [w, q] : a.evictions) {
    WorkerBase* wb = w;
    Pool* qp = q;
    wb->loop().post([this, wb, qp] { evict_one(*qp, *wb); });
  }
  for (ServerConn* s : a.checks) {
    // "<empty>" sends an empty query, as PgBouncer does ("" disables checks).
    s->run_internal(a.check_query == "<empty>" ? std::string() : a.check_query,
                    ServerConn::After::Release, "server check");
  }
  for (auto& [s, why] : a.closes) {
    ServerConn* sp = s;
    const char* reason = why;
    if (sp->worker == &current) {
      sp->close(reason);
    } else {
      sp->worker->loop().post([sp, reason] { sp->close(reason); });
    }
  }
}

}  // namespace sluice::pool
