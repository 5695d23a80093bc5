// PoolManager maintenance: each worker's idle servers (timeouts, lifetimes, checks), the global
// pass (min_pool_size, waiters, reserve pool, eviction, unused auto-database pools) and
// RECONNECT, which only a server's owner carries out for its own servers.
#include <algorithm>

#include "core/log.h"
#include "pool/pool.h"
#include "pool/pool_actions.h"

namespace sluice::pool {

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

}  // namespace sluice::pool
