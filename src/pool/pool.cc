// PoolManager: checkout, release, the waiter FIFO, launches and limits under one lock; the pool
// shards for the checkout and release of an idle server (pool_config.cc: settings;
// pool_maintenance.cc: periodic work).
#include "pool/pool.h"

#include <algorithm>

#include "core/log.h"
#include "pool/pool_actions.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/writer.h"

namespace sluice::pool {
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

void PoolManager::handoff_arrived(ServerConn& s) {
  std::lock_guard<std::mutex> g(mu_);
  move(s, ServerState::Active);
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
