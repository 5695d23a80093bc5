// One client connection: startup and auth, then the query loop relaying to a server connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/intrusive_list.h"
#include "net/loop.h"
#include "net/stream.h"
#include "pool/params.h"
#include "pool/pool.h"
#include "pool/server_conn.h"
#include "proto/writer.h"
#include "session/session_worker.h"

namespace sluice::session {

struct ClientListTag;
struct AuthState;

enum class ClientState : std::uint8_t {
  Startup,     // reading the first packet(s)
  Auth,        // password exchange
  LoginWait,   // authenticated; waiting for the pool to learn server parameters
  Idle,        // logged in, no server linked (or linked and idle in session mode)
  Waiting,     // needs a server, queued in its pool
  Active,      // linked to a server
  CancelWait,  // a CancelRequest connection, waiting for the cancel to be delivered
  Closed,
};
[[nodiscard]] std::string_view to_string(ClientState s);

class Client final : public net::Pollable,
                     public net::Deferrable,
                     public net::Retirable,
                     public pool::Waiter,
                     public pool::ServerUser,
                     public core::ListHook<ClientListTag> {
 public:
  Client(SessionWorker& w, int fd, bool unix_socket);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // net::Pollable: the client socket.
  void on_io(std::uint32_t events) override;
  // net::Deferrable: a server was assigned, or input to process after a release.
  void on_deferred() override;
  // pool::Waiter
  void on_assignment() override;
  void on_login_failed(std::string error_body) override;
  // pool::ServerUser: the linked server's socket.
  void on_server_io(std::uint32_t events) override;

  // Ends the client: logs "closing because: <reason>", sends an error first if `sqlstate` is
  // set (FATAL), cleans or closes a linked server.
  void close(std::string_view reason, const char* sqlstate = nullptr,
             std::string_view message = {});

  // Periodic timeouts; `now` from the loop.
  void check_timeouts(core::Micros now);
  // SIGTERM drain: closes the client if it is between transactions.
  void drain_if_idle();
  // The rest of an asynchronous console command's response (see AdminHandler).
  void finish_admin_query(std::string_view messages);

  // A CancelRequest for this client's key arrived (on this client's worker).
  void cancel_request_received();
  // The cancel connection this CancelWait client asked for is done.
  void cancel_delivered();

  [[nodiscard]] std::string log_prefix() const;

  // Identity (read by the console).
  std::uint64_t id;
  SessionWorker& worker;
  ClientState state = ClientState::Startup;
  std::string peer;  // "1.2.3.4:5678" or "unix"
  int peer_port = 0;
  bool unix_socket;
  std::string db_name;
  std::string user_name;
  std::string application_name;
  bool admin = false;        // connected to the admin console database
  bool admin_control = false;  // may run control commands (admin_users), not only SHOW
  pool::Pool* pool = nullptr;
  pool::ServerConn* server = nullptr;
  core::Micros connected_at = 0;
  core::Micros request_start = 0;  // current request forwarded and not yet answered
  core::Micros xact_start = 0;     // server reported a transaction (status T/E)
  core::Micros last_activity = 0;
  core::Micros idle_since = 0;     // last ReadyForQuery sent to the client
  std::uint64_t cancel_key = 0;
  net::Stream io;  // the client socket

 private:
  // login (client_login.cc)
  void on_startup_input();
  bool handle_first_packet(std::uint32_t len);
  void handle_startup(std::vector<std::pair<std::string, std::string>> params,
                      std::uint32_t version);
  void begin_auth();
  void on_auth_input();
  bool handle_auth_message(std::string_view body);
  void auth_succeeded();
  void fail_auth(const char* sqlstate = nullptr, std::string_view message = {});
  void finish_login();
  void send_welcome(const std::vector<std::pair<std::string, std::string>>& welcome,
                    const pool::ParamValues& defaults);
  void route_cancel(std::uint32_t pid, std::uint32_t secret);

  // relay (client_relay.cc)
  void relay_client();
  enum class Step : std::uint8_t { NeedInput, Blocked, Waiting, Stop };
  Step scan_client_frames();
  void relay_server();
  Step scan_server_frames();
  bool flush_to_client();
  bool flush_to_server();
  void link(pool::ServerConn& s, bool resume);
  void maybe_release();
  void release_server();
  void detach_server_on_close();
  void request_server(bool login);
  bool handle_unlinked_message(char type, std::uint32_t wire);
  void handle_admin_query(std::string_view sql);
  void server_failed(std::string_view reason);
  void after_request_done(char status);

  // output helpers
  void send_error(const char* sqlstate, std::string_view message, bool fatal);
  void send_ready(char status);
  void compute_limits();

  std::unique_ptr<AuthState> auth_;
  std::vector<std::pair<std::string, std::string>> startup_;
  std::uint32_t protocol_minor_ = 0;       // what the client asked for
  std::vector<std::string> unknown_pq_;   // _pq_.* options we do not implement
  pool::ParamValues params_{};  // tracked parameters this client wants

  std::uint32_t client_fwd_left_ = 0;  // rest of a client message being streamed to the server
  std::uint32_t client_skip_left_ = 0; // rest of a client message being dropped
  std::uint32_t server_fwd_left_ = 0;  // rest of a server message being streamed to the client
  std::uint32_t sync_rfq_ = 0;         // ReadyForQuery still to swallow (parameter sync)
  std::string sync_error_;             // ErrorResponse body from the parameter sync
  bool release_pending_ = false;
  bool closing_ = false;
  bool pending_assignment_ = false;    // a server was assigned; deliver on_deferred
  bool zombie_ = false;                // closed, but an assignment is still on its way
  bool server_read_pending_ = false;
  bool server_fatal_ = false;          // the linked backend sent FATAL: it will close
  bool admin_pending_ = false;         // an asynchronous console command is running
  bool cancel_outstanding_ = false;    // CancelWait: the owner worker will call back

  // Effective limits (refreshed on reload via cfg_version_).
  std::uint64_t cfg_version_ = 0;
  core::Micros query_timeout_ = 0;
  core::Micros query_wait_timeout_ = 0;
  core::Micros idle_transaction_timeout_ = 0;
  core::Micros client_idle_timeout_ = 0;
  core::Micros transaction_timeout_ = 0;
  core::Micros login_timeout_ = 0;
  std::uint32_t max_packet_ = 0;
  bool counted_in_groups_ = false;
  bool counted_in_pool_ = false;
};

}  // namespace sluice::session
