// One client connection: its login (Login, until the welcome), then the query loop relaying to a
// server connection.
#pragma once

#include <algorithm>
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
#include "pool/pool.h"
#include "pool/server_conn.h"
#include "pool/settings.h"
#include "proto/writer.h"
#include "session/client_session.h"
#include "session/console_extended.h"
#include "session/login.h"
#include "session/message_cursor.h"
#include "session/session_tracker.h"
#include "session/session_worker.h"

namespace sluice::session {

struct ClientListTag;
using RequestAction = proto::RequestQueue::Action;

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
                     public core::ListHook<ClientListTag>,
                     private LoginHost,
                     private TrackerHost {
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

  // Client messages sluice reads whole (a query it classifies, a statement it renames) are at
  // most this long; past it they stream (a Bind past its names) or are refused (a named Parse).
  static constexpr std::uint32_t kMaxWholeMessage = 1u << 20;

  // Session state pins (SHOW CLIENTS / SHOW PINS): the reason, or nullptr, and since when.
  [[nodiscard]] const char* pin_reason() const { return tracker_.pin_reason(); }
  [[nodiscard]] core::Micros pinned_since() const { return tracker_.pinned_since(); }

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
  bool admin = false;          // connected to the admin console database
  bool admin_control = false;  // may run control commands (admin_users), not only SHOW
  pool::Pool* pool = nullptr;
  pool::ServerConn* server = nullptr;
  core::Micros connected_at = 0;
  core::Micros request_start = 0;  // current request forwarded and not yet answered
  core::Micros xact_start = 0;     // server reported a transaction (status T/E)
  core::Micros last_activity = 0;
  core::Micros idle_since = 0;  // last ReadyForQuery sent to the client
  std::uint64_t cancel_key = 0;
  net::Stream io;  // the client socket

 private:
  // LoginHost: what the login (login.h) asks of this client (client_login.cc).
  net::Stream& login_stream() override { return io; }
  [[nodiscard]] bool login_unix_socket() const override { return unix_socket; }
  [[nodiscard]] std::string login_log_prefix() const override { return log_prefix(); }
  bool login_flush() override { return flush_to_client(); }
  void login_close(std::string_view reason, const char* sqlstate,
                   std::string_view message) override {
    close(reason, sqlstate, message);
  }
  void login_named(const std::string& user, const std::string& db,
                   const std::string& application_name, bool admin_db) override;
  void login_authenticating() override { state = ClientState::Auth; }
  void login_cancel(std::uint32_t pid, std::uint32_t secret) override {
    end_login();
    route_cancel(pid, secret);
  }
  void login_authenticated(bool peer_admin) override;
  // after authentication (client_login.cc): limits, the pool, the welcome
  void finish_login();
  void send_welcome(const std::vector<std::pair<std::string, std::string>>& welcome);
  void end_login();  // the Login is freed after this event batch
  void route_cancel(std::uint32_t pid, std::uint32_t secret);  // cancel.cc

  // relay (client_relay.cc, client_frames.cc)
  void relay_client();
  enum class Step : std::uint8_t { NeedInput, Blocked, Waiting, Stop, Next, Plain };
  Step scan_client_frames();
  Step forward_client_message(char type, std::uint32_t wire);
  Step forward_large_message(char type, std::uint32_t wire, std::string_view seen, bool prepared);
  // A request sluice adds to (or rewrites into) the server's queue. The queue is bounded: past
  // it the client is marked (request_overflow_) and the relay closes it with close_queue_full(),
  // the same way as a forwarded message that finds the queue full.
  void note_request(pool::ServerConn& s, char type, RequestAction a = RequestAction::Forward,
                    std::uint32_t tag = 0) {
    if (!s.requests.on_frontend(type, a, tag)) request_overflow_ = true;
  }
  Step close_queue_full();
  // Fast paths: a run of whole messages that go through untouched, forwarded as one segment;
  // the bytes taken (0: the general path handles the next message).
  std::uint32_t pass_client_run(pool::ServerConn& s);
  std::uint32_t pass_server_run(pool::ServerConn& s);
  void relay_server();
  Step scan_server_frames();
  bool handle_swallowed_server_frame(char type, std::string_view body);
  bool flush_to_client();
  bool flush_to_server();
  void link(pool::ServerConn& s, bool resume);
  void maybe_release();
  void release_server();
  void detach_server_on_close();
  void request_server(bool login);
  bool handle_unlinked_message(char type, std::uint32_t wire);
  void handle_admin_query(std::string_view sql);
  // admin console input (client_admin.cc)
  Step admin_message(char type, std::uint32_t wire);
  void admin_extended(char type, std::string_view body);
  void console_run(const std::string& sql, ConsoleExtended::Run mode);
  void console_run_done();
  void server_failed(std::string_view reason);
  // The server sent what no server may (an unknown type, a bad length or status): it is closed,
  // the client gets 08006.
  void server_protocol_violation(char type, std::uint32_t len);
  void after_request_done(char status);

  // prepared statements (client_prepared.cc)
  Step handle_parse(std::string_view body, std::uint32_t wire);
  pool::PreparedPtr client_statement(std::string_view name);  // or closes the client (26000)
  Step handle_bind(std::string_view body, std::uint32_t wire);
  Step handle_describe(std::string_view body, std::uint32_t wire);
  Step handle_close(std::string_view body, std::uint32_t wire);
  bool ensure_server_statement(const pool::PreparedPtr& st, RequestAction how);
  void capture_for_retry(char type, std::uint32_t avail, std::uint32_t wire);
  void resend_retry();
  void queue_synth(std::string message);
  void emit_synth();

  // session state: the tracker decides (session_tracker.h); the I/O it asks for and the relay's
  // side of it (client_state.cc)
  ClientSession& sess() { return tracker_.sess(); }
  [[nodiscard]] ClientSession* sess_ptr() const { return tracker_.session(); }
  // A refused statement: the server raises the error in its place.
  Step send_refusal(char type, std::string_view body, std::uint32_t wire, const std::string& why);
  void inject_internal_query(std::string_view sql);
  void parameter_status(std::string_view name, std::string_view value);
  // TrackerHost
  void tracker_inject(std::string_view sql) override { inject_internal_query(sql); }
  void tracker_send_ready(char status) override { send_ready(status); }
  void tracker_close(std::string_view reason, const char* sqlstate,
                     std::string_view message) override {
    close(reason, sqlstate, message);
  }
  bool tracker_try_pin() override { return worker.pools->try_pin(*pool); }
  void tracker_unpin() override { worker.pools->unpin(*pool); }
  [[nodiscard]] std::string tracker_log_prefix() const override { return log_prefix(); }

  // output helpers
  void send_error(const char* sqlstate, std::string_view message, bool fatal);
  void send_ready(char status);
  void compute_limits();

  std::unique_ptr<Login> login_;            // from the first byte to the welcome
  pool::PoolCounters* counters_ = nullptr;  // this worker's slot of the pool's counters
  // Session state in transaction pooling; need_whole_ fills the tracker's tail padding.
  [[no_unique_address]] SessionTracker tracker_;
  std::uint32_t need_whole_ = 0;  // a message to inspect needs this many bytes buffered
  std::unique_ptr<ConsoleExtended> console_ext_;  // console extended protocol, on first use

  MessageCursor from_client_;   // the rest of a client message streamed to the server or dropped
  MessageCursor from_server_;   // the rest of a server message streamed to the client or dropped
  std::uint32_t sync_rfq_ = 0;  // ReadyForQuery still to swallow (parameter sync)
  // Linked for a request that has not reached the server yet: the server stays this client's
  // until it has (parameter sync, settings replay and re-Parse are part of the turn).
  bool turn_owed_ = false;
  std::unique_ptr<std::string> sync_error_;  // ErrorResponse body from the parameter sync
  bool closing_ = false;
  bool pending_assignment_ = false;  // a server was assigned; deliver on_deferred
  bool zombie_ = false;              // closed, but an assignment is still on its way
  bool server_fatal_ = false;        // the linked backend sent FATAL: it will close
  bool admin_pending_ = false;       // an asynchronous console command is running
  bool cancel_outstanding_ = false;  // CancelWait: the owner worker will call back
  bool request_overflow_ = false;    // a request found the server's queue full (note_request)

  // Effective limits (refreshed on reload via cfg_version_).
  std::uint64_t cfg_version_ = 0;
  // A timeout kept as 32 bits of milliseconds (up to 49 days), read as microseconds: the
  // per-client copies of these settings cost 28 bytes instead of 56 (bytes per idle client).
  class Timeout {
   public:
    Timeout& operator=(core::Micros us) {
      constexpr core::Micros kMax = UINT32_MAX;
      ms_ =
          us <= 0 ? 0 : static_cast<std::uint32_t>(std::min<core::Micros>((us + 999) / 1000, kMax));
      return *this;
    }
    operator core::Micros() const { return static_cast<core::Micros>(ms_) * 1000; }

   private:
    std::uint32_t ms_ = 0;
  };
  Timeout query_timeout_;
  Timeout query_wait_timeout_;
  Timeout idle_transaction_timeout_;
  Timeout client_idle_timeout_;
  Timeout transaction_timeout_;
  Timeout login_timeout_;
  Timeout pinned_idle_timeout_;
  bool wait_notified_ = false;  // query_wait_notify NOTICE sent for the current wait
  std::uint32_t max_packet_ = 0;
  bool counted_in_groups_ = false;
  bool limits_exempt_ = false;  // a console admin: counted in the groups, never refused by them
  bool counted_in_pool_ = false;
};

}  // namespace sluice::session
