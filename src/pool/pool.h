// Pools per (database, user) with one global, exact budget of server connections (I1).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/intrusive_list.h"
#include "core/relaxed.h"
#include "pool/connector.h"
#include "pool/params.h"
#include "pool/server_conn.h"
#include "pool/stats.h"
#include "pool/worker_base.h"
#include "proto/auth/scram.h"

namespace sluice::pool {

struct WaitTag;
class PoolManager;

// A client waiting for a server connection. All fields are guarded by the manager's lock.
class Waiter : public core::ListHook<WaitTag> {
 public:
  // The manager picked `assigned` for this waiter; deliver it on the waiter's own thread
  // (Client defers to its loop). Called with no lock held, on the waiter's worker thread.
  virtual void on_assignment() = 0;
  // A login waiter's pool could not log in to its server: `error_body` is the server's
  // ErrorResponse body (or empty). Called on the waiter's worker thread.
  virtual void on_login_failed(std::string error_body) = 0;

  WorkerBase* home = nullptr;
  core::Micros wait_since = 0;
  ServerConn* assigned = nullptr;
  bool queued = false;
  bool login = false;  // needs a server only to learn its parameters
  // The session state the waiter wants on its server (an interned SettingsSet, compared by
  // address): a released server that already holds it costs no sync query (affinity).
  const void* affinity_key = nullptr;
  bool delivery_pending = false;  // popped: an assignment or a login failure is on its way

 protected:
  ~Waiter() = default;
};

// A pool's FIFO of waiting clients (manager lock), with its length readable without the lock:
// a checkout or release that takes only a shard's lock first sees that nobody waits.
class WaiterQueue {
 public:
  [[nodiscard]] bool empty() const { return list_.empty(); }
  [[nodiscard]] std::size_t size() const { return list_.size(); }
  [[nodiscard]] Waiter* front() const { return list_.front(); }
  // Any thread, no lock: how many wait (sequentially consistent, see PoolManager::release).
  [[nodiscard]] int waiting() const { return n_.load(); }
  void push_back(Waiter& w) {
    list_.push_back(w);
    n_.store(static_cast<int>(list_.size()));
  }
  Waiter* pop_front() {
    Waiter* w = list_.pop_front();
    n_.store(static_cast<int>(list_.size()));
    return w;
  }
  void remove(Waiter& w) {
    list_.remove(w);
    n_.store(static_cast<int>(list_.size()));
  }
  template <typename Fn>
  void for_each_until(Fn&& fn) const {
    list_.for_each_until(std::forward<Fn>(fn));
  }
  template <typename Fn>
  void for_each(Fn&& fn) {
    list_.for_each(std::forward<Fn>(fn));
  }

 private:
  core::IntrusiveList<Waiter, WaitTag> list_;
  std::atomic<int> n_{0};
};

// One worker's part of a pool: the idle servers that worker owns and the servers counted
// active there (docs/ARCHITECTURE.md, "Pool shards"). Only the owning worker changes the list
// and the counts, holding `mu`; other threads hold `mu` to read the list, or read the counts
// alone. A checkout that finds an idle server here, and a release that puts one back, take only
// this lock while nobody waits: no cache line of the pool is shared on that path.
struct alignas(64) PoolShard {
  std::mutex mu;
  core::IntrusiveList<ServerConn, IdleTag> idle;
  std::atomic<int> idle_n{0};    // idle.size(), readable without `mu`
  std::atomic<int> active_n{0};  // Active servers of this worker (Handoff: Pool::handoff)
  // Listed in the manager's idle_pools_ of this worker (maintenance visits it); written by the
  // owner under the manager lock only.
  char listed = 0;
};

// Limits shared by all pools of one database or one server user.
struct LimitGroup {
  std::string name;
  int servers = 0;         // server connections of all its pools
  int max_servers = 0;     // 0 = unlimited
  int clients = 0;         // logged-in clients
  int exempt_clients = 0;  // of them, console admins: counted, but never held to max_clients
  int max_clients = 0;     // 0 = unlimited
  // Database groups only, set from the console (pool_control.cc): PAUSE, KILL and SWITCHOVER
  // hold new transactions; DISABLE refuses new clients.
  core::Relaxed<bool> paused = false;  // read without the lock by the shard paths
  bool disabled = false;
};

// Where and how a pool's server connections log in; rebuilt on reload, shared by the
// connections started from it.
struct ConnectTarget {
  std::vector<std::string> hosts;  // empty: unix socket in unix_dir
  int port = 5432;
  std::string unix_dir;
  bool load_balance = true;
  std::string dbname;
  std::string user;
  std::optional<std::string> password;  // plaintext, md5 hash or SCRAM secret
  std::vector<std::pair<std::string, std::string>> startup_params;
  std::string connect_query;
  // server_tls_sslmode and the other server_tls_* settings in force when it was built: a change
  // closes the connections made with the old ones (as a changed host does).
  config::SslMode sslmode = config::SslMode::Prefer;
  std::string tls;
  core::Micros lifetime = 0;
  core::Micros connect_timeout = 0;
  int tcp_keepalive = 1, tcp_keepcnt = 0, tcp_keepidle = 0, tcp_keepintvl = 0;
  int tcp_user_timeout = 0, tcp_socket_buffer = 0;
  // Changes when what a server connection logs in as or to changes (reload): older
  // connections are closed instead of reused.
  std::uint64_t generation = 0;
  [[nodiscard]] bool same_login(const ConnectTarget& o) const {
    return hosts == o.hosts && port == o.port && unix_dir == o.unix_dir && dbname == o.dbname &&
           user == o.user && password == o.password && startup_params == o.startup_params &&
           connect_query == o.connect_query && sslmode == o.sslmode && tls == o.tls;
  }
};

class Pool {
 public:
  Pool(std::string db, std::string user, int workers);

  // Identity: the database name clients use and the user the server connections log in as.
  const std::string db_name;
  const std::string user_name;

  // Effective settings, refreshed from the config on reload (under the manager lock).
  config::DatabaseConfig dbcfg;
  std::optional<std::string> password;  // for server login: db entry or auth file
  core::Relaxed<config::PoolMode> mode = config::PoolMode::Session;  // read per transaction
  int pool_size = 0;
  int min_pool_size = 0;
  int reserve_size = 0;
  core::Micros server_lifetime = 0;
  bool forced_user = false;
  core::Relaxed<bool> disabled = false;  // removed from the config: no new clients, drain
  // Reached through the `*` entry: freed after autodb_idle_timeout with nothing left using it.
  bool auto_db = false;
  // Holders of this Pool* outside the manager (clients, auth_query lookups), from get_pool to
  // drop_ref; a pool with holders, servers or waiters is never freed.
  int refs = 0;
  core::Micros last_used = 0;
  // Membership of the manager's global watch list (maintenance visits only listed pools): while
  // it has waiters, a min_pool_size, or is an unused auto-database pool. Per worker: see
  // PoolShard::listed.
  bool watched = false;

  LimitGroup* db = nullptr;
  LimitGroup* user = nullptr;
  std::shared_ptr<const ConnectTarget> target;
  // target->generation, readable without the manager lock (a shard's release checks it).
  core::Relaxed<std::uint64_t> generation = 0;
  std::atomic<unsigned> next_host{0};
  // Targets replaced (reload, RECONNECT, SWITCHOVER) while servers started from them may still
  // be open: each such server holds a reference (WAIT_CLOSE counts them).
  std::vector<std::weak_ptr<const ConnectTarget>> old_targets;

  // Server connections, by state (manager lock; idle and active per worker in the shards).
  int servers = 0;      // every state that holds a Postgres backend or a connect attempt
  int connecting = 0;   // Connecting + Login
  int checking = 0;     // running server_check_query; back in a moment
  int handoff = 0;      // given to a waiter of another worker, not there yet
  WaiterQueue waiters;  // FIFO over all workers
  [[nodiscard]] std::size_t worker_count() const { return workers_; }
  [[nodiscard]] PoolShard& shard(std::size_t worker) { return shards_[worker]; }
  [[nodiscard]] PoolShard& shard(const WorkerBase& w) {
    return shards_[static_cast<std::size_t>(w.id())];
  }
  // Sums over the shards (each count read alone; exact when no shard is changing); active()
  // includes `handoff` (manager lock).
  [[nodiscard]] int idle_count() const;
  [[nodiscard]] int active() const;
  int clients = 0;
  bool had_clients = false;
  int pinned = 0;  // clients holding (or about to hold) their server for session state

  // What clients are told at login: the first server's ParameterStatus messages.
  bool welcome_ready = false;
  std::vector<std::pair<std::string, std::string>> welcome;

  // Connect failures hold new attempts back for server_login_retry.
  core::Micros last_connect_failed = 0;
  std::string last_login_error;  // ErrorResponse body of the last login failure
  // The last attempt to open a server failed: why (any failure), and whether the server refused
  // the login with the target of `login_fail_generation`; then clients that need a server while
  // none is logged in are refused at once with `login_fail_message` (PoolManager::fail_fast).
  std::string login_fail_message;
  bool login_failing = false;
  std::uint64_t login_fail_generation = 0;
  // Logged-in servers of the current target generation: 0 means nothing usable is left, so a
  // refused login fails every waiting client, not only those waiting to log in.
  int usable = 0;

  // Traffic counters, one slot per worker (see stats.h); no lock.
  std::unique_ptr<PoolCounters[]> counters;
  [[nodiscard]] PoolCounters& counters_of(const WorkerBase& w) {
    return counters[static_cast<std::size_t>(w.id())];
  }
  [[nodiscard]] PoolTotals totals() const {
    PoolTotals t;
    for (std::size_t i = 0; i < workers_; ++i)
      t.add(counters[i]);
    return t;
  }

  // Monotonic counters for SHOW/metrics (manager lock).
  std::uint64_t total_connects = 0;
  std::uint64_t total_waits = 0;
  core::Micros total_wait_time = 0;
  core::Micros max_wait_start = 0;
  std::uint64_t affinity_picks = 0;  // releases that went to a waiter other than the oldest

 private:
  std::size_t workers_;
  std::unique_ptr<PoolShard[]> shards_;
};

// All pools and limit groups of the process, behind one mutex; a checkout or release of an idle
// server of the caller's own worker, while nobody waits, takes only that worker's PoolShard
// lock. Every change of a server connection's state that affects accounting goes through here,
// on the owning worker's thread.
class PoolManager {
 public:
  // `connector` and `clock` are borrowed; null means Postgres connections and loop time.
  explicit PoolManager(std::vector<WorkerBase*> workers, Connector* connector = nullptr,
                       const core::Clock* clock = nullptr);
  PoolManager(const PoolManager&) = delete;
  PoolManager& operator=(const PoolManager&) = delete;

  // Installs a config (start and reload): refreshes every pool's settings and creates pools of
  // databases with a forced user (they keep min_pool_size warm from the start). Any thread;
  // new connections it makes possible are opened by the next global maintenance.
  void apply_config(const config::ConfigPtr& cfg);

  // The pool for a client: (database entry, server user). Creates it on first use. The caller
  // holds a reference until drop_ref (pool_client_removed drops a client's).
  Pool* get_pool(const config::DatabaseConfig& db, std::string_view db_name,
                 std::string_view server_user, WorkerBase& current);
  void drop_ref(Pool& p);

  // Client counters for the max_*_client_connections limits. `try_add_client` is atomic
  // with its checks; it returns an empty string or the name of the limit hit.
  // `exempt`: counted but never refused (admins on the console).
  [[nodiscard]] std::string try_add_client(std::string_view db_name, std::string_view user_name,
                                           bool exempt);
  void remove_client(std::string_view db_name, std::string_view user_name, bool exempt);
  void pool_client_added(Pool& p);
  // Pins: a client keeps its server for session state that cannot move. False when the pool's
  // limit (max_pinned_servers, else pool_size) is reached.
  [[nodiscard]] bool try_pin(Pool& p);
  void unpin(Pool& p);
  // SCRAM pass-through: keys a client's proof revealed for `secret`; later server logins of
  // pools of that user use them instead of a plaintext password.
  void remember_scram_keys(std::string_view user, std::string_view secret,
                           const proto::auth::ScramKeys& keys);
  [[nodiscard]] std::optional<proto::auth::ScramKeys> scram_keys(Pool& p, std::string_view secret);
  // Copies what clients of `p` are told at login; false until a server has logged in.
  [[nodiscard]] bool welcome(Pool& p, std::vector<std::pair<std::string, std::string>>& params);
  void pool_client_removed(Pool& p);

  // Checkout: returns an idle server of this worker right away (state Active), or queues the
  // waiter (nullptr) and arranges for a server to come.
  ServerConn* checkout(Pool& p, Waiter& w, WorkerBase& current);
  // Removes a queued waiter. False if a server is already assigned to it (it will arrive
  // through on_assignment; the waiter must then release it).
  bool cancel_wait(Pool& p, Waiter& w);

  // A clean server (ReadyForQuery 'I', nothing owed) goes to the next waiter or idle.
  void release(ServerConn& s, WorkerBase& current);
  // Its owner runs a query of its own on a linked server (reset, ROLLBACK): no longer Active.
  void begin_internal(ServerConn& s);
  // A server finished login (and connect_query): same as release, and learns the welcome.
  void server_ready(ServerConn& s, WorkerBase& current,
                    std::vector<std::pair<std::string, std::string>> params);
  // A server connection is gone (closed after any state); frees its slot.
  void server_closed(ServerConn& s, WorkerBase& current);
  // Connect or login failed: `login_error` carries the server's ErrorResponse body when it
  // refused the login (login waiters get it, and every waiter when no usable server is left);
  // network and TLS failures only delay the next attempt. `reason` (or the body's message) is
  // what later clients are told while the failure lasts; `from` is the failed server's target.
  void connect_failed(Pool& p, bool login_error, std::string error_body,
                      std::string_view reason = {}, const ConnectTarget* from = nullptr);
  // Why the last attempt to open a server of `p` failed; empty when the last one succeeded.
  [[nodiscard]] std::string login_failure(Pool& p);

  // Periodic work on every worker: idle/lifetime/check of this worker's idle servers.
  void maintain_worker(WorkerBase& w);
  // Periodic work on one worker: min_pool_size, reserve pool, retries, evictions.
  void maintain_global(WorkerBase& w);

  // Marks every server of a pool (or all pools) to be closed when released; closes idle ones.
  void reconnect_all(WorkerBase& current);

  // Snapshot helpers for the console (copies taken under the lock).
  struct PoolStats {
    std::string database, user, pool_mode;
    int cl_active = 0, cl_waiting = 0, sv_active = 0, sv_idle = 0, sv_used = 0, sv_login = 0;
    int sv_pinned = 0;
    int servers = 0, pool_size = 0, reserve_size = 0, min_pool_size = 0;
    core::Micros maxwait = 0;
  };
  [[nodiscard]] std::vector<PoolStats> pool_stats(core::Micros now);
  struct GroupStats {
    std::string name;
    int servers, max_servers, clients, max_clients;
  };
  [[nodiscard]] std::vector<GroupStats> database_stats();
  [[nodiscard]] std::vector<GroupStats> user_stats();
  [[nodiscard]] int total_servers();
  [[nodiscard]] int total_waiting();

  [[nodiscard]] int worker_count() const { return static_cast<int>(workers_.size()); }

  // ---- Operator controls: console and signals (pool_control.cc) ----
  // PAUSE [db] (empty: every database): new transactions wait in their pool's queue, idle
  // servers are closed now and busy ones when they are released; RESUME undoes it and serves
  // the queue. SUSPEND holds new transactions too but keeps the servers.
  // `current`: the calling worker, or null off the worker threads (every close is posted).
  void pause(std::string_view db, WorkerBase* current);
  // Returns false if nothing (or, with a name, that database) was paused or suspended.
  bool resume(std::string_view db, WorkerBase& current);
  void suspend();
  [[nodiscard]] bool paused(std::string_view db);  // empty: the global PAUSE
  [[nodiscard]] bool suspended();
  [[nodiscard]] int paused_databases();
  // DISABLE / ENABLE: clients logging in to a disabled database are refused.
  void set_disabled(std::string_view db, bool disabled);
  [[nodiscard]] bool database_disabled(std::string_view db);
  // RECONNECT [db]: servers started before now are closed instead of reused.
  void reconnect(std::string_view db, WorkerBase& current);
  // Servers of the database (empty: all) that are linked, running a query of their own or on
  // their way to be closed: PAUSE, KILL and SWITCHOVER are done when this is 0.
  [[nodiscard]] int busy_servers(std::string_view db);
  // Servers still open from a replaced target (WAIT_CLOSE waits for 0).
  [[nodiscard]] int stale_servers(std::string_view db);
  // server_fast_close: a session-mode server whose database was reconnected, reloaded or
  // disabled since it was linked, so its client should be cut off between transactions.
  [[nodiscard]] bool fast_close_due(const ServerConn& s);
  // SWITCHOVER: points every pool of `db` at hosts/port without touching the configuration
  // file; servers of the old target are closed instead of reused. The choice survives RELOAD
  // until the file changes that database's host or port.
  void switch_target(std::string_view db, std::vector<std::string> hosts, int port,
                     WorkerBase& current);
  struct Address {
    std::vector<std::string> hosts;
    int port = 0;
  };
  // The address a SWITCHOVER put in place of the file's, if any.
  [[nodiscard]] std::optional<Address> switched_target(std::string_view db);

  // Runs `fn` under the manager lock: reading server states and pool targets consistently.
  void with_lock(const std::function<void()>& fn);

  // A pool as SHOW POOLS, SHOW STATS and /metrics see it (copied under the lock).
  struct PoolSnapshot {
    std::string database, user, pool_mode;
    int cl_active = 0, cl_waiting = 0;
    int sv_active = 0, sv_idle = 0, sv_used = 0, sv_tested = 0, sv_login = 0, sv_pinned = 0;
    int pool_size = 0;
    core::Micros maxwait = 0;  // oldest waiter
    bool paused = false;
    PoolTotals totals;
    PoolHistograms histograms;
  };
  [[nodiscard]] std::vector<PoolSnapshot> pool_snapshots(core::Micros now);
  // Per database, for /readyz: logged-in servers, and whether the last attempt to open one
  // failed (and none has succeeded since).
  struct DatabaseHealth {
    std::string name;
    int servers_up = 0;
    bool failing = false;
    bool disabled = false;
  };
  [[nodiscard]] std::vector<DatabaseHealth> database_health();

 private:
  struct Actions;
  void run(Actions& a, WorkerBase& current);
  void refresh_pool(Pool& p, const config::Config& cfg);
  LimitGroup& db_group(std::string_view name);
  LimitGroup& user_group(std::string_view name);
  [[nodiscard]] bool can_open(const Pool& p, bool reserve) const;
  [[nodiscard]] bool blocked_by_group(const Pool& p) const;
  void launch(Pool& p, Actions& a, WorkerBase* where = nullptr);
  void launch_for_waiters(Pool& p, core::Micros now, Actions& a);
  void give(ServerConn& s, Waiter& w, WorkerBase& current, Actions& a);
  ServerConn* checkout_local(Pool& p, Waiter& w, WorkerBase& current);
  bool release_local(ServerConn& s, WorkerBase& current);
  [[nodiscard]] bool lifetime_over(const ServerConn& s, core::Micros now) const;
  Waiter* pick_waiter(Pool& p, const ServerConn& s, const WorkerBase& on, core::Micros now);
  ServerConn* pop_matching_idle(Pool& p, WorkerBase& on, const void* key);
  void make_available(ServerConn& s, WorkerBase& current, Actions& a);
  void kick_others(Pool& p, WorkerBase& current, Actions& a);
  void serve_from_idle(Pool& p, WorkerBase& current, Actions& a);
  void serve(Pool& p, WorkerBase& on, Actions& a);
  ServerConn* pop_fresh_idle(Pool& p, WorkerBase& on, Actions& a);
  // Idle longer than server_check_delay (0: always): must pass server_check_query first.
  bool needs_check(const ServerConn& s, core::Micros now) const;
  void start_check(Pool& p, ServerConn& s, Actions& a);
  [[nodiscard]] static bool stale(const ServerConn& s, const Pool& p);
  bool fail_fast(Pool& p, Waiter& w, WorkerBase& current, Actions& a);
  bool evict_for(Pool& p, WorkerBase& current, Actions& a);
  void free_idle_auto_pools(core::Micros now);
  void evict_one(Pool& q, WorkerBase& owner);
  void take_own_idle(Pool& p, WorkerBase* current, Actions& a, const char* why);
  void sweep_others(WorkerBase* current, Actions& a);
  void run_anywhere(Actions& a, WorkerBase* current);
  // A server moved to another worker is registered there: Active again (under the lock).
  void handoff_arrived(ServerConn& s);
  void move(ServerConn& s, ServerState to);
  void shift(ServerConn& s, ServerState to);  // the shard part of move(), shard lock held
  [[nodiscard]] static bool in_shard(ServerState x);

  [[nodiscard]] core::Micros clock_now(WorkerBase& w) const {
    return clock_ != nullptr ? clock_->now() : w.loop().now();
  }

  std::mutex mu_;
  std::vector<WorkerBase*> workers_;
  Connector* connector_;
  const core::Clock* clock_;
  config::ConfigPtr cfg_;
  std::unordered_map<std::string, std::unique_ptr<Pool>> pools_;  // db_name + '\0' + user
  // What maintenance visits instead of every pool (lock held): per worker, the pools that have
  // (or recently had) idle servers there; and the pools that need the global maintenance.
  std::vector<std::vector<Pool*>> idle_pools_;
  std::vector<Pool*> watched_;
  void watch(Pool& p) {
    if (!p.watched) {
      p.watched = true;
      watched_.push_back(&p);
    }
  }
  [[nodiscard]] bool needs_watch(const Pool& p) const;
  std::unordered_map<std::string, std::unique_ptr<LimitGroup>> dbs_;
  std::unordered_map<std::string, std::unique_ptr<LimitGroup>> users_;
  std::unordered_map<std::string, proto::auth::ScramKeys> scram_keys_;  // user + '\0' + secret

  // Operator controls (pool_control.cc).
  // Read without the manager lock by the shard paths (flags written under it).
  [[nodiscard]] bool held(const Pool& p) const {  // new transactions wait
    return pause_all_ || suspended_ || (p.db != nullptr && p.db->paused);
  }
  [[nodiscard]] bool closes_on_release(const Pool& p) const {  // PAUSE: servers go away
    return pause_all_ || (p.db != nullptr && p.db->paused);
  }
  void apply_switchovers(const config::Config& cfg);
  void retarget(Pool& p, std::shared_ptr<const ConnectTarget> t);
  core::Relaxed<bool> pause_all_ = false;
  core::Relaxed<bool> suspended_ = false;
  // server_check_delay, or -1 when server_check_query is empty (no checks): read by the shard
  // paths without the manager lock (apply_config writes it).
  core::Relaxed<core::Micros> check_delay_ = -1;
  struct Switchover {
    Address to;
    Address file;  // the file's address when it was made: a reload that changes it wins
  };
  std::unordered_map<std::string, Switchover> switchovers_;
};

}  // namespace sluice::pool
