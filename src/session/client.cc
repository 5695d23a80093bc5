// Client lifecycle: socket events, errors, closing, timeouts.
#include "session/client.h"

#include <unistd.h>

#include "core/log.h"
#include "core/socket_id.h"
#include "proto/backend.h"
#include "proto/codes.h"

namespace sluice::session {

std::string_view to_string(ClientState s) {
  switch (s) {
    case ClientState::Startup:
      return "startup";
    case ClientState::Auth:
      return "auth";
    case ClientState::LoginWait:
      return "login-wait";
    case ClientState::Idle:
      return "idle";
    case ClientState::Waiting:
      return "waiting";
    case ClientState::Active:
      return "active";
    case ClientState::CancelWait:
      return "cancel";
    case ClientState::Closed:
      return "closed";
  }
  return "?";
}

Client::Client(SessionWorker& w, int fd, bool unix)
    : id(core::next_socket_id()), worker(w), unix_socket(unix) {
  io.fd = fd;
  connected_at = last_activity = w.loop().now();
  home = &w;
  w.clients.push_back(*this);
  compute_limits();
  login_ = std::make_unique<Login>(w, static_cast<LoginHost&>(*this));
}

Client::~Client() {
  if (io.fd >= 0) ::close(io.fd);
}

std::string Client::log_prefix() const {
  return fmt::format("C-{}: {}/{}@{}", id, db_name.empty() ? "(nodb)" : db_name,
                     user_name.empty() ? "(nouser)" : user_name, peer);
}

void Client::compute_limits() {
  const auto& cfg = worker.cfg();
  const auto& st = cfg.settings;
  cfg_version_ = worker.cfg_version;
  query_timeout_ = st.query_timeout;
  query_wait_timeout_ = st.query_wait_timeout;
  idle_transaction_timeout_ = st.idle_transaction_timeout;
  client_idle_timeout_ = st.client_idle_timeout;
  transaction_timeout_ = st.transaction_timeout;
  login_timeout_ = st.client_login_timeout;
  pinned_idle_timeout_ = st.pinned_idle_timeout;
  max_packet_ = st.max_packet_size;
  if (!user_name.empty()) {
    if (const config::UserConfig* u = cfg.find_user(user_name)) {
      if (u->query_timeout >= 0) query_timeout_ = u->query_timeout;
      if (u->idle_transaction_timeout >= 0) idle_transaction_timeout_ = u->idle_transaction_timeout;
      if (u->client_idle_timeout >= 0) client_idle_timeout_ = u->client_idle_timeout;
      if (u->transaction_timeout >= 0) transaction_timeout_ = u->transaction_timeout;
    }
  }
}

void Client::on_io(std::uint32_t events) {
  if (state == ClientState::Closed) return;
  if ((events & EPOLLOUT) && !io.out.empty()) {
    if (!flush_to_client()) return;
    if (io.out.empty()) {
      if (server != nullptr) {
        relay_server();  // it stopped reading the server while we could not write
        if (state == ClientState::Closed) return;
      }
    }
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) io.readable = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) io.hup = true;  // read up to the end
  switch (state) {
    case ClientState::Startup:
    case ClientState::Auth:
      if (login_) login_->on_input();
      break;
    case ClientState::LoginWait:
      // Authenticated, waiting for the pool's first server: a client may already send its
      // first queries (Postgres accepts them before ReadyForQuery). They are kept, at most a
      // buffer block of them (the rest waits in the socket), and run once login completes.
      io.consume_scanned();  // login input (nothing sluice sends points into it)
      while (io.readable) {
        if (io.in.allocated() && io.in.free_tail() == 0) io.compact();
        if (io.in.allocated() && io.in.free_tail() == 0) break;  // full: read after login
        auto r = io.read(worker.buffers());
        if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
          close("client unexpected eof");
          return;
        }
      }
      worker.buffers().release_if_empty(io.in);
      break;
    case ClientState::CancelWait: {
      // Nothing may arrive here but the end of the connection.
      if (!io.readable) break;
      auto r = io.read(worker.buffers());
      if (r.kind == net::IoResult::Kind::WouldBlock ||
          (r.kind == net::IoResult::Kind::Data && r.n == 0)) {
        worker.buffers().release_if_empty(io.in);
      } else if (r.kind != net::IoResult::Kind::Data) {
        close("client unexpected eof");
      } else {
        close("client sent data before login completed", proto::sqlstate::kProtocolViolation,
              "unexpected message before ReadyForQuery");
      }
      break;
    }
    case ClientState::Idle:
    case ClientState::Waiting:
    case ClientState::Active:
      relay_client();
      break;
    case ClientState::Closed:
      break;
  }
}

void Client::send_error(const char* sqlstate, std::string_view message, bool fatal) {
  std::size_t mark = io.out.synth_mark();
  proto::write_error(io.out.synth(),
                     {fatal ? proto::Severity::Fatal : proto::Severity::Error, sqlstate, message});
  (void)io.out.commit_synth(mark);
}

void Client::send_ready(char status) {
  std::size_t mark = io.out.synth_mark();
  proto::write_ready_for_query(io.out.synth(), status);
  (void)io.out.commit_synth(mark);
}

void Client::close(std::string_view reason, const char* sqlstate, std::string_view message) {
  if (state == ClientState::Closed) return;
  closing_ = true;
  const auto& st = worker.cfg().settings;
  bool cancel = state == ClientState::CancelWait;
  if (st.log_disconnections && !cancel) {
    core::log(core::LogLevel::Log, "{} closing because: {} (age={}s)", log_prefix(), reason,
              (worker.loop().now() - connected_at) / core::kMicrosPerSecond);
  }
  if (sqlstate != nullptr && st.log_pooler_errors && !cancel) {
    core::log(core::LogLevel::Warning, "{} pooler error: {}", log_prefix(),
              message.empty() ? reason : message);
  }
  if (sqlstate != nullptr) {
    if (io.out.has_forwarded()) io.out.materialize();
    send_error(sqlstate, message.empty() ? reason : message, true);
    int err = 0;
    (void)io.flush(err);
  }
  if (server != nullptr) detach_server_on_close();
  tracker_.release_pin(*this);
  if (state == ClientState::Waiting || state == ClientState::LoginWait) {
    if (pool != nullptr && !worker.pools->cancel_wait(*pool, *this)) zombie_ = true;
  }
  if (pending_assignment_) zombie_ = true;
  if (cancel_outstanding_) zombie_ = true;
  if (admin_pending_) zombie_ = true;
  if (cancel_key != 0) worker.unregister_cancel_key(cancel_key);
  if (counted_in_groups_) {
    worker.pools->remove_client(db_name, user_name, limits_exempt_);
    counted_in_groups_ = false;
  }
  if (counted_in_pool_) {
    worker.pools->pool_client_removed(*pool);
    counted_in_pool_ = false;
  }
  worker.shared().clients.fetch_sub(1, std::memory_order_relaxed);
  state = ClientState::Closed;
  io.out.clear();
  worker.buffers().release(io.in);
  end_login();
  if (io.fd >= 0) {
    worker.loop().remove(io.fd);
    ::close(io.fd);
    io.fd = -1;
  }
  worker.clients.remove(*this);
  if (!zombie_) worker.loop().retire(this);
}

void Client::on_login_failed(std::string error_body) {
  delivery_pending = false;
  if (zombie_) {
    zombie_ = false;
    worker.loop().retire(this);
    return;
  }
  if (state == ClientState::Closed) return;
  // Pass the server's refusal on (as PgBouncer does), then close.
  auto e = proto::ErrorView::decode(error_body);
  std::string msg = e && !e->message.empty() ? std::string(e->message) : "server login failed";
  std::string code = e && !e->sqlstate.empty() ? std::string(e->sqlstate) : "08P01";
  close(msg, code.c_str(), msg);
}

void Client::check_timeouts(core::Micros now) {
  if (cfg_version_ != worker.cfg_version) compute_limits();
  switch (state) {
    case ClientState::Startup:
    case ClientState::Auth:
      if (login_timeout_ > 0 && now - connected_at >= login_timeout_) {
        close("client_login_timeout", proto::sqlstate::kProtocolViolation,
              "client_login_timeout (server down)");
      }
      return;
    case ClientState::LoginWait:
    case ClientState::Waiting: {
      if (state == ClientState::LoginWait && login_timeout_ > 0 &&
          now - connected_at >= login_timeout_) {
        // Say why the server is "down" when the pool knows (a TLS or network failure).
        std::string why = worker.pools->login_failure(*pool);
        close("client_login_timeout", proto::sqlstate::kProtocolViolation,
              why.empty() ? std::string("client_login_timeout (server down)")
                          : "client_login_timeout (server down: " + why + ")");
        return;
      }
      core::Micros age = now - wait_since;
      if (query_timeout_ > 0 && age >= query_timeout_) {
        close("query_timeout", proto::sqlstate::kProtocolViolation, "query_timeout");
      } else if (query_wait_timeout_ > 0 && age >= query_wait_timeout_) {
        close("query_wait_timeout", proto::sqlstate::kProtocolViolation, "query_wait_timeout");
      } else if (state == ClientState::Waiting && !wait_notified_) {
        core::Micros notify = worker.cfg().settings.query_wait_notify;
        if (notify > 0 && age >= notify) {
          wait_notified_ = true;  // the wording is PgBouncer's, which clients may match on
          std::size_t mark = io.out.synth_mark();
          proto::write_notice(io.out.synth(),
                              "No server connection available in postgres backend, client being "
                              "queued");
          (void)io.out.commit_synth(mark);
          (void)flush_to_client();
        }
      }
      return;
    }
    case ClientState::Active: {
      if (server == nullptr) return;
      if ((sync_rfq_ > 0 || tracker_.probing()) && now >= server->internal_deadline) {
        // Sluice's own parameter sync or session probe got no answer in time: the server is
        // taken for broken, never given back.
        server_failed("internal query timeout");
        return;
      }
      bool busy = !server->requests.idle() || sync_rfq_ > 0 || tracker_.probing();
      if (busy && query_timeout_ > 0 && request_start != 0 &&
          now - request_start >= query_timeout_) {
        pool::ServerConn* s = server;
        server = nullptr;
        s->user = nullptr;
        io.out.materialize();
        s->close("query timeout", false);
        close("query timeout", proto::sqlstate::kQueryCanceled, "query timeout");
        return;
      }
      char tx = server->requests.tx_status();
      if (!busy && tx == 'I' && worker.cfg().settings.server_fast_close &&
          worker.pools->fast_close_due(*server)) {
        // The session would outlive its database's configuration: end both sides now so the
        // client notices (server_fast_close).
        pool::ServerConn* s = server;
        server = nullptr;
        s->user = nullptr;
        io.out.materialize();
        s->close("database configuration changed");
        close("database configuration changed", proto::sqlstate::kAdminShutdown,
              "database configuration changed");
        return;
      }
      if (!busy && tx != 'I' && idle_transaction_timeout_ > 0 &&
          now - std::max(idle_since, last_activity) >= idle_transaction_timeout_) {
        close("idle transaction timeout", proto::sqlstate::kIdleInTransactionTimeout,
              "idle transaction timeout");
        return;
      }
      if (tx != 'I' && xact_start != 0 && transaction_timeout_ > 0 &&
          now - xact_start >= transaction_timeout_) {
        close("transaction timeout", proto::sqlstate::kIdleInTransactionTimeout,
              "transaction timeout");
        return;
      }
      if (!busy && tx == 'I' && tracker_.pin_reason() != nullptr && pinned_idle_timeout_ > 0 &&
          now - last_activity >= pinned_idle_timeout_) {
        close("pinned_idle_timeout", proto::sqlstate::kIdleSessionTimeout,
              std::string("pinned connection idle too long (") + tracker_.pin_reason() + ")");
        return;
      }
      if (!busy && tx == 'I' && client_idle_timeout_ > 0 &&
          now - last_activity >= client_idle_timeout_) {
        close("client_idle_timeout", proto::sqlstate::kIdleSessionTimeout, "client_idle_timeout");
      }
      return;
    }
    case ClientState::Idle:
      if (client_idle_timeout_ > 0 && now - last_activity >= client_idle_timeout_) {
        close("client_idle_timeout", proto::sqlstate::kIdleSessionTimeout, "client_idle_timeout");
      }
      return;
    case ClientState::CancelWait:
      if (now - connected_at >=
          worker.cfg().settings.cancel_wait_timeout + core::kMicrosPerSecond) {
        close("cancel_wait_timeout");
      }
      return;
    case ClientState::Closed:
      return;
  }
}

void Client::drain_if_idle() {
  if (state == ClientState::Idle ||
      (state == ClientState::Active && server != nullptr && server->requests.idle() &&
       server->requests.tx_status() == 'I' && sync_rfq_ == 0) ||
      state == ClientState::Startup || state == ClientState::Auth) {
    close("server shutting down", proto::sqlstate::kAdminShutdown,
          "terminating connection due to administrator command");
  }
}

}  // namespace sluice::session
