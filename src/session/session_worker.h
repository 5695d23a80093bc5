// A worker as the session layer sees it: its clients, cancel keys and process-wide shared state.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/intrusive_list.h"
#include "pool/pool.h"
#include "pool/registries.h"
#include "pool/worker_base.h"
#include "session/cancel_limit.h"
#include "session/plain_scram.h"

namespace sluice::session {

class Client;
class SessionWorker;
struct ClientListTag;

// Answers queries sent to the admin console database (implemented in admin/).
class AdminHandler {
 public:
  virtual ~AdminHandler() = default;
  // Appends the response messages for one simple Query string (without ReadyForQuery) and
  // returns true; or returns false and later calls c.finish_admin_query() on c's worker thread
  // with the messages (for commands that gather from every worker).
  virtual bool handle_query(Client& c, std::string_view sql, std::string& out) = 0;
  // The version string for SHOW VERSION, ParameterStatus server_version and --version.
  [[nodiscard]] virtual std::string version() const = 0;
  // Every worker's tick (100 ms), on that worker's thread: console commands that wait for a
  // condition (PAUSE, WAIT_CLOSE, SWITCHOVER) check it again.
  virtual void tick(SessionWorker& w) { (void)w; }
};

// A shutdown that waits (SHUTDOWN WAIT_FOR_SERVERS / WAIT_FOR_CLIENTS, SIGINT / SIGTERM): only
// the admin console may still log in; with WaitForServers, clients that need a server are closed.
enum class ShutdownMode : int { None = 0, WaitForServers = 1, WaitForClients = 2 };

// State shared by all workers (set up once by the app; counters are atomic).
struct Shared {
  std::vector<SessionWorker*> workers;
  pool::PoolManager* pools = nullptr;
  AdminHandler* admin = nullptr;
  net::Resolver* resolver = nullptr;  // server host names (SHOW DNS_HOSTS)
  std::atomic<int> clients{0};        // every accepted client socket
  std::atomic<bool> draining{false};  // SIGTERM: no new clients, close idle ones
  std::atomic<bool> accepting{true};
  std::atomic<ShutdownMode> shutdown{ShutdownMode::None};
  uid_t uid = 0;                 // ours, for admin login by peer credentials
  std::string scram_mock_key;    // per-process secret for unknown-user SCRAM
  CancelLimiter cancel_limiter;  // cancel_rate_limit, across workers
  // The process's tables, owned here rather than as statics so that tests build their own.
  pool::Registries registries;    // each worker's registries() (the pool layer reaches them)
  PlainScramSecrets plain_scram;  // SCRAM secrets of plain-text passwords

  // The current configuration; workers pick it up when the version moves.
  void publish_config(config::ConfigPtr cfg);
  [[nodiscard]] config::ConfigPtr current_config(std::uint64_t& version);
  std::atomic<std::uint64_t> cfg_version{0};

 private:
  std::mutex cfg_mu_;
  config::ConfigPtr cfg_;
};

class SessionWorker : public pool::WorkerBase {
 public:
  SessionWorker(int id, std::uint32_t block_size, Shared& shared);
  ~SessionWorker() override;

  [[nodiscard]] Shared& shared() { return shared_; }

  // Picks up a newer configuration if one was published.
  void sync_config();

  // Takes ownership of an accepted socket.
  void adopt_client(int fd, bool unix_socket);

  // Called every tick (100 ms): client timeouts; every few ticks: server maintenance.
  void tick();

  // Cancel keys of this worker's clients (the owning worker is encoded in the key).
  void register_cancel_key(std::uint64_t key, Client& c);
  void unregister_cancel_key(std::uint64_t key);
  [[nodiscard]] Client* find_cancel_key(std::uint64_t key) const;

  // Graceful shutdown: close clients that are not inside a transaction.
  void drain_idle_clients();
  // Immediate shutdown: close everything.
  void close_all(std::string_view reason);

  [[nodiscard]] int client_count() const { return static_cast<int>(clients.size()); }

  core::IntrusiveList<Client, ClientListTag> clients;
  std::vector<class CancelConn*> cancels;  // outgoing cancel requests in flight
  std::uint64_t cfg_version = 0;
  // When tick() last ran (monotonic): /healthz reports a worker whose loop stopped turning.
  std::atomic<core::Micros> last_tick{core::monotonic_now()};

 private:
  Shared& shared_;
  std::unordered_map<std::uint64_t, Client*> cancel_keys_;
  std::uint64_t ticks_ = 0;
};

}  // namespace sluice::session
