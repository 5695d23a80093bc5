// PoolManager's operator controls (PAUSE, RESUME, SUSPEND, DISABLE, RECONNECT, SWITCHOVER) and
// the snapshots the console and /metrics read.
#include <algorithm>

#include "core/log.h"
#include "pool/pool.h"
#include "pool/pool_actions.h"

namespace sluice::pool {
namespace {

// `db` empty selects every pool.
bool matches(const Pool& p, std::string_view db) {
  return db.empty() || p.db_name == db;
}

}  // namespace

void PoolManager::retarget(Pool& p, std::shared_ptr<const ConnectTarget> t) {
  std::erase_if(p.old_targets, [](const auto& w) { return w.expired(); });
  if (p.target) p.old_targets.push_back(p.target);
  // Servers logged in with another generation are not usable any more (they close on release).
  if (!p.target || p.target->generation != t->generation) p.usable = 0;
  p.target = std::move(t);
  p.generation = p.target->generation;
}

void PoolManager::pause(std::string_view db, WorkerBase* current) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (db.empty()) {
      pause_all_ = true;
    } else {
      db_group(db).paused = true;
    }
    for (auto& [k, p] : pools_) {
      if (matches(*p, db)) take_own_idle(*p, current, a, "pause mode");
    }
    sweep_others(current, a);
  }
  run_anywhere(a, current);
}

// run() for a caller that may be off the worker threads (then only sweeps were collected).
void PoolManager::run_anywhere(Actions& a, WorkerBase* current) {
  if (current != nullptr) {
    run(a, *current);
    return;
  }
  if (!a.lists) return;
  for (WorkerBase* w : a.lists->sweeps) {
    WorkerBase* wb = w;
    wb->loop().post([this, wb] { maintain_worker(*wb); });
  }
}

bool PoolManager::resume(std::string_view db, WorkerBase& current) {
  bool was = false;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (db.empty()) {
      was = pause_all_ || suspended_;
      pause_all_ = false;
      suspended_ = false;
      for (auto& [k, grp] : dbs_) {
        was = was || grp->paused;
        grp->paused = false;
      }
    } else if (auto it = dbs_.find(std::string(db)); it != dbs_.end()) {
      was = it->second->paused;
      it->second->paused = false;
    }
  }
  // Serve the queues now rather than at the next global maintenance.
  maintain_global(current);
  return was;
}

void PoolManager::suspend() {
  std::lock_guard<std::mutex> g(mu_);
  suspended_ = true;
}

bool PoolManager::paused(std::string_view db) {
  std::lock_guard<std::mutex> g(mu_);
  if (db.empty()) return pause_all_;
  auto it = dbs_.find(std::string(db));
  return it != dbs_.end() && it->second->paused;
}

bool PoolManager::suspended() {
  std::lock_guard<std::mutex> g(mu_);
  return suspended_;
}

int PoolManager::paused_databases() {
  std::lock_guard<std::mutex> g(mu_);
  int n = 0;
  for (auto& [k, grp] : dbs_)
    n += grp->paused ? 1 : 0;
  return n;
}

void PoolManager::set_disabled(std::string_view db, bool disabled) {
  std::lock_guard<std::mutex> g(mu_);
  db_group(db).disabled = disabled;
}

bool PoolManager::database_disabled(std::string_view db) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = dbs_.find(std::string(db));
  return it != dbs_.end() && it->second->disabled;
}

void PoolManager::reconnect(std::string_view db, WorkerBase& current) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [k, p] : pools_) {
      if (!matches(*p, db) || !p->target) continue;
      auto t = std::make_shared<ConnectTarget>(*p->target);
      ++t->generation;
      retarget(*p, std::move(t));
      take_own_idle(*p, &current, a, "database configuration changed");
    }
    sweep_others(&current, a);
  }
  run(a, current);
}

bool PoolManager::fast_close_due(const ServerConn& s) {
  std::lock_guard<std::mutex> g(mu_);
  const Pool& p = *s.pool;
  if (p.mode != config::PoolMode::Session) return false;
  if (s.close_requested || p.disabled) return true;
  return stale(s, p);
}

int PoolManager::busy_servers(std::string_view db) {
  std::lock_guard<std::mutex> g(mu_);
  int n = 0;
  for (auto& [k, p] : pools_) {
    if (!matches(*p, db)) continue;
    // Each shard read under its lock: a checkout on a shard either happened before (its server
    // is counted busy here) or sees the PAUSE flag set before this count (pool.cc
    // checkout_local).
    int idle = 0;
    for (std::size_t i = 0; i < p->worker_count(); ++i) {
      std::lock_guard<std::mutex> sg(p->shard(i).mu);
      idle += p->shard(i).idle_n.load();
    }
    n += p->servers - idle - p->connecting;
  }
  return n;
}

int PoolManager::stale_servers(std::string_view db) {
  std::lock_guard<std::mutex> g(mu_);
  long n = 0;
  for (auto& [k, p] : pools_) {
    if (!matches(*p, db)) continue;
    std::erase_if(p->old_targets, [](const auto& w) { return w.expired(); });
    for (const auto& w : p->old_targets) {
      auto t = w.lock();
      if (t && p->target && t->generation != p->target->generation) n += t.use_count() - 1;
    }
  }
  return static_cast<int>(n);
}

void PoolManager::switch_target(std::string_view db, std::vector<std::string> hosts, int port,
                                WorkerBase& current) {
  Actions a;
  {
    std::lock_guard<std::mutex> g(mu_);
    Address file;
    if (cfg_) {
      const config::DatabaseConfig* d = cfg_->find_database(db);
      if (d == nullptr) d = cfg_->fallback_database();
      if (d != nullptr) file = {d->hosts, d->port};
    }
    std::string key(db);
    if (auto it = switchovers_.find(key); it != switchovers_.end()) file = it->second.file;
    if (hosts == file.hosts && port == file.port) {
      switchovers_.erase(key);  // back to what the file says
    } else {
      switchovers_[key] = Switchover{Address{hosts, port}, file};
    }
    for (auto& [k, p] : pools_) {
      if (!matches(*p, db) || !p->target) continue;
      auto t = std::make_shared<ConnectTarget>(*p->target);
      t->hosts = hosts;
      t->port = port;
      ++t->generation;
      retarget(*p, std::move(t));
      take_own_idle(*p, &current, a, "switchover");
    }
    sweep_others(&current, a);
  }
  run(a, current);
}

std::optional<PoolManager::Address> PoolManager::switched_target(std::string_view db) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = switchovers_.find(std::string(db));
  if (it == switchovers_.end()) return std::nullopt;
  return it->second.to;
}

void PoolManager::apply_switchovers(const config::Config& cfg) {
  for (auto it = switchovers_.begin(); it != switchovers_.end();) {
    const config::DatabaseConfig* d = cfg.find_database(it->first);
    if (d == nullptr) d = cfg.fallback_database();
    if (d != nullptr && d->hosts == it->second.file.hosts && d->port == it->second.file.port) {
      ++it;
      continue;
    }
    core::log(core::LogLevel::Log,
              "{}: the configuration file changed the database's address; it replaces the "
              "switchover",
              it->first);
    it = switchovers_.erase(it);
  }
}

void PoolManager::with_lock(const std::function<void()>& fn) {
  std::lock_guard<std::mutex> g(mu_);
  fn();
}

std::vector<PoolManager::PoolSnapshot> PoolManager::pool_snapshots(core::Micros now) {
  std::lock_guard<std::mutex> g(mu_);
  core::Micros check_delay = cfg_ ? cfg_->settings.server_check_delay : 0;
  std::vector<PoolSnapshot> out;
  out.reserve(pools_.size());
  for (auto& [k, p] : pools_) {
    PoolSnapshot s;
    s.database = p->db_name;
    s.user = p->user_name;
    s.pool_mode = std::string(config::to_string(p->mode));
    s.cl_waiting = static_cast<int>(p->waiters.size());
    s.cl_active = std::max(0, p->clients - s.cl_waiting);
    int used = 0, idle = 0, active = 0;
    for (std::size_t i = 0; i < p->worker_count(); ++i) {  // other workers' lists: under the lock
      PoolShard& sh = p->shard(i);
      std::lock_guard<std::mutex> sg(sh.mu);
      idle += sh.idle_n.load();
      active += sh.active_n.load();
      if (check_delay > 0) {
        sh.idle.for_each_until([&](const ServerConn& sc) {
          used += now - sc.idle_since >= check_delay ? 1 : 0;
          return true;
        });
      }
    }
    active += p->handoff;
    s.sv_active = active;
    s.sv_used = used;
    s.sv_idle = idle - used;
    s.sv_login = p->connecting;
    s.sv_tested = std::max(0, p->servers - p->connecting - active - idle);
    s.sv_pinned = p->pinned;
    s.pool_size = p->pool_size;
    if (Waiter* w = p->waiters.front()) s.maxwait = now - w->wait_since;
    s.paused = held(*p);
    s.totals = p->totals();
    for (std::size_t i = 0; i < p->worker_count(); ++i)
      s.histograms.add(p->counters[i]);
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const PoolSnapshot& a, const PoolSnapshot& b) {
    return std::tie(a.database, a.user) < std::tie(b.database, b.user);
  });
  return out;
}

std::vector<PoolManager::DatabaseHealth> PoolManager::database_health() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<DatabaseHealth> out;
  auto entry = [&](const std::string& name) -> DatabaseHealth& {
    for (auto& h : out) {
      if (h.name == name) return h;
    }
    out.push_back(DatabaseHealth{name});
    return out.back();
  };
  for (auto& [k, p] : pools_) {
    DatabaseHealth& h = entry(p->db_name);
    h.servers_up += p->servers - p->connecting;
    if (p->last_connect_failed != 0) h.failing = true;
  }
  for (auto& [k, grp] : dbs_) {
    if (grp->disabled) entry(grp->name).disabled = true;
  }
  return out;
}

std::vector<PoolManager::PoolStats> PoolManager::pool_stats(core::Micros now) {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<PoolStats> out;
  for (auto& [k, p] : pools_) {
    PoolStats s;
    s.database = p->db_name;
    s.user = p->user_name;
    s.pool_mode = std::string(config::to_string(p->mode));
    s.cl_active = p->clients - static_cast<int>(p->waiters.size());
    s.cl_waiting = static_cast<int>(p->waiters.size());
    s.sv_active = p->active();
    s.sv_idle = p->idle_count();
    s.sv_login = p->connecting;
    s.sv_pinned = p->pinned;
    s.servers = p->servers;
    s.pool_size = p->pool_size;
    s.reserve_size = p->reserve_size;
    s.min_pool_size = p->min_pool_size;
    if (Waiter* w = p->waiters.front()) s.maxwait = now - w->wait_since;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const PoolStats& a, const PoolStats& b) {
    return std::tie(a.database, a.user) < std::tie(b.database, b.user);
  });
  return out;
}

std::vector<PoolManager::GroupStats> PoolManager::database_stats() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<GroupStats> out;
  for (auto& [k, d] : dbs_)
    out.push_back({d->name, d->servers, d->max_servers, d->clients, d->max_clients});
  return out;
}

std::vector<PoolManager::GroupStats> PoolManager::user_stats() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<GroupStats> out;
  for (auto& [k, u] : users_)
    out.push_back({u->name, u->servers, u->max_servers, u->clients, u->max_clients});
  return out;
}

int PoolManager::total_servers() {
  std::lock_guard<std::mutex> g(mu_);
  int n = 0;
  for (auto& [k, p] : pools_)
    n += p->servers;
  return n;
}

int PoolManager::total_waiting() {
  std::lock_guard<std::mutex> g(mu_);
  int n = 0;
  for (auto& [k, p] : pools_)
    n += static_cast<int>(p->waiters.size());
  return n;
}

}  // namespace sluice::pool
