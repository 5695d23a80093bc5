// ServerConn life after login: idle watch, internal queries, closing, moving between workers.
#include "pool/server_conn.h"

#include <unistd.h>

#include "core/log.h"
#include "core/socket_id.h"
#include "pool/login_state.h"
#include "pool/pool.h"
#include "proto/backend.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/writer.h"

namespace sluice::pool {
namespace {
constexpr std::uint32_t kMaxServerInternalFrame = 1u << 20;
// Sluice's own queries when server_connect_timeout is 0 (no bound for connecting).
constexpr core::Micros kDefaultInternalQueryBound = 15 * core::kMicrosPerSecond;
}  // namespace

std::string_view to_string(ServerState s) {
  switch (s) {
    case ServerState::Connecting:
      return "connecting";
    case ServerState::Login:
      return "login";
    case ServerState::Internal:
      return "internal";
    case ServerState::Idle:
      return "idle";
    case ServerState::Active:
      return "active";
    case ServerState::Handoff:
      return "handoff";
    case ServerState::Closing:
      return "closing";
    case ServerState::Closed:
      return "closed";
  }
  return "?";
}

ServerConn::ServerConn(Pool& p, WorkerBase& w) : id(core::next_socket_id()), pool(&p), worker(&w) {
  created_at = w.loop().now();
  w.servers.push_back(*this);
}

ServerConn::~ServerConn() {
  if (io.fd >= 0) ::close(io.fd);
}

std::string ServerConn::log_prefix() const {
  return fmt::format("S-{}: {}/{}@{}", id, pool->db_name, pool->user_name,
                     addr_text.empty() ? "-" : addr_text);
}

void ServerConn::on_io(std::uint32_t events) {
  if (closed_) return;
  // Remembered in every state: whoever reads this socket next must read up to the end.
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) io.hup = true;
  switch (state) {
    case ServerState::Connecting:
      on_connecting(events);
      break;
    case ServerState::Login:
      on_login_io();
      break;
    case ServerState::Internal:
      on_internal_io();
      break;
    case ServerState::Idle:
      on_idle_io();
      break;
    case ServerState::Active:
      if (user != nullptr) {
        user->on_server_io(events);
      } else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        io.readable = true;  // assigned, not yet picked up by its client
      }
      break;
    case ServerState::Handoff:
    case ServerState::Closing:
    case ServerState::Closed:
      break;
  }
}

bool ServerConn::flush_out() {
  int err = 0;
  auto r = io.flush(err);
  if (r == net::Outbox::Flush::Error) {
    close("server conn crashed?", false);
    return false;
  }
  return true;
}

void ServerConn::close(std::string_view reason, bool graceful) {
  if (closed_) return;
  closed_ = true;
  core::Micros age = worker->loop().now() - created_at;
  if (worker->cfg().settings.log_disconnections) {
    core::log(core::LogLevel::Log, "{} closing because: {} (age={}s)", log_prefix(), reason,
              age / core::kMicrosPerSecond);
  }
  if (graceful && io.fd >= 0 &&
      (state == ServerState::Idle || state == ServerState::Internal ||
       state == ServerState::Closing || state == ServerState::Active)) {
    std::string t;
    proto::write_terminate(t);
    io.send_now(t);
  }
  // connect_query runs as Internal but the pool still counts the server as connecting.
  if (login && state == ServerState::Internal) state = ServerState::Login;
  worker->pools->server_closed(*this, *worker);  // Closed from here
  user = nullptr;
  if (io.fd >= 0) {
    worker->loop().remove(io.fd);
    ::close(io.fd);
    io.fd = -1;
  }
  worker->buffers().release(io.in);
  io.out.clear();
  login.reset();
  worker->servers.remove(*this);
  if (cancels_in_flight == 0) worker->loop().retire(this);
}

void ServerConn::cancel_done() {
  if (--cancels_in_flight > 0) return;
  if (closed_) {
    worker->loop().retire(this);
    return;
  }
  if (release_after_cancels) {
    release_after_cancels = false;
    if (state == ServerState::Active && user == nullptr) {
      if (io.hup) {
        close("server closed the connection", false);  // ended while the cancel was on its way
      } else {
        worker->pools->release(*this, *worker);
      }
    }
  }
}

void ServerConn::detach_from_worker() {
  worker->loop().remove(io.fd);
  worker->buffers().release(io.in);  // empty when released; blocks belong to a worker
  io.scan = 0;
  worker->servers.remove(*this);
}

bool ServerConn::attach_to_worker(WorkerBase& w) {
  worker = &w;
  w.servers.push_back(*this);
  io.readable = false;
  if (!w.loop().add(io.fd, this)) {
    core::log(core::LogLevel::Warning, "{} cannot register socket", log_prefix());
    return false;
  }
  return true;
}

void ServerConn::run_internal(std::string sql, After after, std::string_view what) {
  std::vector<std::string> v;
  v.push_back(std::move(sql));
  run_internal(v, after, what);
}

void ServerConn::run_internal(const std::vector<std::string>& sqls, After after,
                              std::string_view what) {
  if (closed_) return;
  if (login) {
    state = ServerState::Internal;  // connect_query: still counted as logging in
  } else {
    worker->pools->begin_internal(*this);
  }
  user = nullptr;
  internal_after_ = after;
  internal_what_ = std::string(what);
  internal_rfq_ = static_cast<std::uint32_t>(sqls.size());
  internal_deadline = worker->loop().now() + internal_query_bound();
  requests.reset();
  std::size_t mark = io.out.synth_mark();
  for (const auto& sql : sqls)
    proto::write_query(io.out.synth(), sql);
  if (!io.out.commit_synth(mark)) {
    close("internal error", false);
    return;
  }
  if (!flush_out()) return;
  if (io.readable) on_internal_io();
}

// Reads what is available and hands complete frames to `fn(type, body)`; fn returns false to
// stop. Returns false if the connection was closed.
template <typename Fn>
static bool read_frames(ServerConn& s, Fn&& fn) {
  for (;;) {
    if (s.io.in.allocated() && s.io.in.free_tail() == 0) s.io.compact();
    auto r = s.io.read(s.worker->buffers());
    if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
      s.close(s.state == ServerState::Login ? "server closed connection during login"
                                            : "server conn crashed?",
              false);
      return false;
    }
    if (r.kind == net::IoResult::Kind::Data && r.n == 0) {  // no room: never retry in a loop
      s.close("server message too large", false);
      return false;
    }
    // Handle every complete frame.
    for (;;) {
      proto::Header h;
      auto st = proto::decode_header(s.io.scan_ptr(), s.io.unscanned(), kMaxServerInternalFrame, h);
      if (st == proto::HeaderStatus::NeedMore) break;
      if (st != proto::HeaderStatus::Ok || !proto::backend_header_ok(h.type, h.len) ||
          (h.type == proto::be::kReadyForQuery && s.io.unscanned() >= h.wire_size() &&
           !proto::is_tx_status(s.io.scan_ptr()[proto::kHeaderLen]))) {
        s.close("server protocol violation", false);
        return false;
      }
      if (s.io.unscanned() < h.wire_size()) {
        if (h.wire_size() > s.io.in.cap &&
            !s.io.reserve(s.worker->buffers(), static_cast<std::uint32_t>(h.wire_size()))) {
          s.close("out of memory", false);
          return false;
        }
        break;
      }
      std::string_view body(s.io.scan_ptr() + proto::kHeaderLen, h.body_size());
      s.io.scan += static_cast<std::uint32_t>(h.wire_size());
      if (!fn(h.type, body)) {
        s.io.consume_scanned();
        return true;
      }
    }
    s.io.consume_scanned();
    if (r.kind == net::IoResult::Kind::WouldBlock || !s.io.readable) break;
  }
  s.worker->buffers().release_if_empty(s.io.in);
  return true;
}

void ServerConn::on_internal_io() {
  bool finished = false;
  bool ok = read_frames(*this, [&](char type, std::string_view body) {
    switch (type) {
      case proto::be::kErrorResponse: {
        auto e = proto::ErrorView::decode(body);
        core::log(core::LogLevel::Warning, "{} {} failed: {}", log_prefix(), internal_what_,
                  e ? e->message : "?");
        break;
      }
      case proto::be::kParameterStatus: {
        if (auto ps = proto::ParameterStatusView::decode(body)) {
          if (login) login->params.emplace_back(std::string(ps->name), std::string(ps->value));
        }
        break;
      }
      case proto::be::kReadyForQuery:
        if (--internal_rfq_ == 0) {
          finished = true;
          requests.reset();
          if (!body.empty()) requests.on_ready_for_query(body[0]);
          return false;
        }
        break;
      default:
        break;
    }
    return true;
  });
  if (!ok || !finished) return;
  internal_deadline = 0;
  if (requests.tx_status() != 'I') {
    close("internal query left a transaction open");
    return;
  }
  switch (internal_after_) {
    case After::Release:
      worker->pools->release(*this, *worker);
      break;
    case After::Close:
      close(internal_what_);
      break;
    case After::Ready:
      login_done();
      break;
  }
}

core::Micros ServerConn::internal_query_bound() const {
  core::Micros t = worker->cfg().settings.server_connect_timeout;
  return t > 0 ? t : kDefaultInternalQueryBound;
}

void ServerConn::on_idle_io() {
  auto r = io.read(worker->buffers());
  if (r.kind == net::IoResult::Kind::WouldBlock) return;
  if (r.kind == net::IoResult::Kind::Data && r.n == 0) return;
  // An idle server has nothing to say; anything (a FATAL on termination, EOF) ends it.
  close(r.kind == net::IoResult::Kind::Data ? "unexpected data from idle server"
                                            : "server conn crashed?",
        false);
}

}  // namespace sluice::pool
