// A connection to a Postgres server: its socket, what it still owes, its parameters and state.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/intrusive_list.h"
#include "core/relaxed.h"
#include "net/dns_cache.h"
#include "net/loop.h"
#include "net/stream.h"
#include "pool/prepared.h"
#include "pool/settings.h"
#include "proto/request_queue.h"

namespace sluice::pool {

class Pool;
class WorkerBase;
struct IdleTag;
struct WorkerServersTag;
struct LoginState;

enum class ServerState : std::uint8_t {
  Connecting,  // host name lookup or TCP connect in progress
  Login,       // startup and authentication
  Internal,    // running queries of its own (connect_query, check, reset, rollback)
  Idle,        // in its pool's idle list on its worker
  Active,      // linked to a client
  Handoff,     // on its way to another worker's loop
  Closing,     // taken out of its pool, a close is on its way to the owning worker
  Closed,
};
[[nodiscard]] std::string_view to_string(ServerState s);

// The client driving an Active server connection's I/O (session layer).
class ServerUser {
 public:
  virtual void on_server_io(std::uint32_t events) = 0;

 protected:
  ~ServerUser() = default;
};

class ServerConn final : public net::Pollable,
                         public net::Retirable,
                         public core::ListHook<IdleTag>,
                         public core::ListHook<WorkerServersTag> {
 public:
  ServerConn(Pool& pool, WorkerBase& worker);
  ~ServerConn() override;
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;

  void on_io(std::uint32_t events) override;

  // Starts connecting (state Connecting); failures are reported to the pool manager.
  void start(std::shared_ptr<const struct ConnectTarget> target);
  // Logs "closing because: <reason>", sends Terminate when `graceful`, closes the socket and
  // tells the pool manager the slot is free. Safe to call once; the object is retired.
  void close(std::string_view reason, bool graceful = true);

  // Runs `sql` (one simple Query, may hold several statements) and swallows its results; then
  // either goes back to the pool (release) or closes. Used for connect_query, server_check_query,
  // server_reset_query and ROLLBACK of an abandoned transaction.
  enum class After : std::uint8_t { Release, Close, Ready };
  void run_internal(std::string sql, After after, std::string_view what);
  void run_internal(const std::vector<std::string>& sqls, After after, std::string_view what);

  // Moves the socket between worker loops (the caller holds no lock).
  void detach_from_worker();
  [[nodiscard]] bool attach_to_worker(WorkerBase& w);

  [[nodiscard]] std::string log_prefix() const;
  [[nodiscard]] bool is_closed() const { return closed_; }
  // A cancel aimed at this backend finished; frees a closed connection once none are left.
  void cancel_done();
  // Closes a connection still connecting or logging in (connect_query included) past
  // server_connect_timeout, or running sluice's own query past internal_deadline.
  void check_deadlines(core::Micros now);
  // How long sluice's own queries (reset, ROLLBACK, server_check_query, parameter sync,
  // session probes) may take before the server is taken for broken and closed.
  [[nodiscard]] core::Micros internal_query_bound() const;

  // identity and ownership
  std::uint64_t id;
  Pool* pool;
  WorkerBase* worker;
  // Written by the owning worker under the manager lock when the change affects accounting;
  // read by the owner without the lock and by others under it or as a hint (SHOW).
  core::Relaxed<ServerState> state = ServerState::Connecting;
  ServerUser* user = nullptr;

  // I/O
  net::Stream io;
  proto::RequestQueue requests;

  // Session state this backend holds (transaction pooling keeps track, design.md §3).
  SettingsPtr settings;                          // set in the session (source 'session')
  std::unique_ptr<ServerStatements> statements;  // protocol-level prepared, by registry id
  std::unique_ptr<std::unordered_map<std::string, std::string>> sql_prepared;  // name -> PREPARE
  // Forgets all of it (after DISCARD ALL).
  void forget_session_state() {
    settings.reset();
    if (statements) statements->clear();
    if (sql_prepared) sql_prepared->clear();
  }

  // from the server
  std::uint32_t backend_pid = 0;
  std::uint32_t backend_secret = 0;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string unix_path;   // set when connected over a unix socket
  std::string addr_text;   // "127.0.0.1:5432"
  std::string local_text;  // our side, for "new connection to server (from ...)"

  // times
  core::Micros created_at = 0;
  core::Micros connected_at = 0;
  core::Micros idle_since = 0;
  core::Micros lifetime = 0;  // 0 = used by one client (or transaction) only
  // Set while sluice's own query runs on it (state Internal, or a client's parameter sync or
  // session probe while Active): past it the server is closed, never returned (0 = none).
  core::Micros internal_deadline = 0;

  // cancel requests on their way to this backend: it is not reused until they are done
  int cancels_in_flight = 0;
  bool release_after_cancels = false;
  bool close_requested = false;  // close instead of returning to the pool (reload, RECONNECT)
  bool usable_counted = false;   // counted in its pool's `usable` (logged in, current target)
  bool in_handoff_to_client = false;
  bool checking = false;     // running server_check_query (counted in Pool::checking)
  bool linked_once = false;  // has served a client (server_lifetime = 0 closes it after that)

  std::unique_ptr<LoginState> login;  // only while Connecting / Login
  std::shared_ptr<const struct ConnectTarget> target;

 private:
  friend class Connector;
  void on_connecting(std::uint32_t events);
  void on_resolved(net::DnsAnswer answer);
  void try_next_address(std::string_view last_error);
  void begin_login();
  bool handle_login_frame(char type, std::string_view body);
  void login_done();
  void on_login_io();
  void on_internal_io();
  void on_idle_io();
  void fail_connect(std::string_view reason, bool login_error, std::string error_fields = {});
  bool flush_out();

  std::string internal_what_;
  After internal_after_ = After::Release;
  std::uint32_t internal_rfq_ = 0;
  bool closed_ = false;
};

}  // namespace sluice::pool
