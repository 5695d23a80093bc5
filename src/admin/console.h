// The admin console: the virtual database `pgbouncer` (alias `sluice`) and its commands.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/control.h"
#include "admin/stats_history.h"
#include "pool/stats.h"
#include "session/client.h"
#include "session/session_worker.h"

namespace sluice::admin {

[[nodiscard]] std::string version_string();

// How a command ended: its whole reply is in `out` (Ok, or Error after an ErrorResponse), or
// it will call Request::finish later (Later).
enum class Status : std::uint8_t { Ok, Error, Later };

// One console statement being run, on the admin client's worker thread.
struct Request {
  session::Client& client;
  std::string& out;  // reply messages (without ReadyForQuery)
  // For Status::Later: called exactly once with the reply, on the client's worker thread.
  std::function<void(std::string reply, bool ok)> finish;
};

// Commands run on the admin client's worker thread. Those that need every worker (SHOW
// CLIENTS, KILL, ...) post work to each (fanout.h) and answer when all have run; those that
// wait for a condition (PAUSE, WAIT_CLOSE, SWITCHOVER) are polled on that worker's tick. No
// worker thread ever blocks waiting for another.
class Console final : public session::AdminHandler {
 public:
  Console(session::Shared& shared, Control& control);
  ~Console() override;

  bool handle_query(session::Client& c, std::string_view sql, std::string& out) override;
  [[nodiscard]] std::string version() const override { return version_string(); }
  void tick(session::SessionWorker& w) override;

  // Rotates the stats_period snapshots (SHOW STATS averages) and logs the stats line; called
  // by the app about every 100 ms, from any one thread.
  void stats_tick(core::Micros now);
  [[nodiscard]] StatsHistory& history() { return history_; }
  // Traffic of the console itself (the `pgbouncer` database row of SHOW STATS).
  [[nodiscard]] pool::PoolTotals admin_totals() const;

 private:
  class Batch;
  using Handler = Status (Console::*)(Request&, std::string_view args);
  struct Command {
    std::string_view name;
    Handler handler;
    bool control;  // admin_users only (stats_users may run the others)
  };

  Status run(Request& r, std::string_view stmt);

  // Polls `poll` on r.client's worker tick until it returns a reply; then finishes r.
  using Poll = std::function<std::optional<std::pair<std::string, bool>>(core::Micros now)>;
  Status wait_for(Request& r, Poll poll);

  // SHOW ... (show_*.cc)
  Status show(Request& r, std::string_view args);
  Status show_help(Request& r);
  Status show_version(Request& r);
  Status show_config(Request& r);
  Status show_state(Request& r);
  Status show_dns_hosts(Request& r);
  Status show_empty(Request& r, std::string_view what);  // PEERS, MEM, DNS_ZONES: nothing to list
  Status show_pools(Request& r);
  Status show_databases(Request& r);
  Status show_users(Request& r);
  Status show_stats(Request& r, std::string_view which);
  Status show_totals(Request& r);
  Status show_sockets(Request& r, std::string_view which);  // CLIENTS, SERVERS, *SOCKETS
  Status show_lists(Request& r);
  Status show_pins(Request& r);  // clients holding a server for session state

  // Process commands (process_cmds.cc)
  Status cmd_set(Request& r, std::string_view args);
  Status cmd_reload(Request& r, std::string_view args);
  Status cmd_shutdown(Request& r, std::string_view args);

  // Pool commands (pool_cmds.cc)
  Status cmd_pause(Request& r, std::string_view args);
  Status cmd_resume(Request& r, std::string_view args);
  Status cmd_suspend(Request& r, std::string_view args);
  Status cmd_disable(Request& r, std::string_view args);
  Status cmd_enable(Request& r, std::string_view args);
  Status cmd_reconnect(Request& r, std::string_view args);
  Status cmd_kill(Request& r, std::string_view args);
  Status cmd_kill_client(Request& r, std::string_view args);
  Status cmd_wait_close(Request& r, std::string_view args);
  // SWITCHOVER db TO 'host=... port=...' [TIMEOUT seconds] (switchover.cc)
  Status cmd_switchover(Request& r, std::string_view args);

  // A database the commands may name: configured (or served by "*") and not the console.
  // Writes the error and returns false otherwise.
  bool check_database(Request& r, const std::string& db, std::string_view verb);

  session::Shared& shared_;
  Control& control_;
  StatsHistory history_;
  std::unique_ptr<pool::PoolCounters[]> admin_counters_;  // per worker

  // Commands waiting for a condition, per worker; each list is touched only by its worker.
  struct Pending {
    Poll poll;
    std::function<void(std::string, bool)> finish;
  };
  std::vector<std::vector<Pending>> pending_;
};

}  // namespace sluice::admin
