// PoolManager::Actions: work decided under the manager lock and carried out after it is
// released (pool.cc, pool_control.cc).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pool/pool.h"

namespace sluice::pool {

// What to do once the manager lock is released. Nearly every checkout and release has nothing
// to do: the lists then stay unallocated, so building, checking and dropping an Actions costs a
// pointer test.
struct PoolManager::Actions {
  struct Lists {
    struct Launch {
      Pool* pool;
      std::shared_ptr<const ConnectTarget> target;
      WorkerBase* where;  // the worker of the waiter it is for; null: the current one
    };
    std::vector<Launch> launches;
    std::vector<std::pair<ServerConn*, Waiter*>> assign;  // server of the current worker
    std::vector<std::pair<WorkerBase*, Pool*>> kicks;     // serve waiters from that worker's idle
    std::vector<std::pair<ServerConn*, const char*>> closes;  // servers to close, on their worker
    std::vector<std::pair<Waiter*, std::string>> login_failures;
    std::vector<Pool*> reserve_logs;
    std::vector<ServerConn*> checks;  // idle too long: run server_check_query first
    std::vector<WorkerBase*> sweeps;  // other workers: close their idle servers now due to close
    std::vector<std::pair<WorkerBase*, Pool*>> evictions;  // close one idle server, on its owner
    std::string check_query;
  };
  std::unique_ptr<Lists> lists;

  Lists& add() {
    if (!lists) lists = std::make_unique<Lists>();
    return *lists;
  }
};

}  // namespace sluice::pool
