// AuthQuery: borrow a server of the auth_user's pool, run auth_query for one user, report back.
#include "session/auth_query.h"

#include "core/log.h"
#include "proto/backend.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/reader.h"
#include "proto/writer.h"
#include "session/auth_state.h"
#include "session/login.h"
#include "session/session_worker.h"

namespace sluice::session {
namespace {
constexpr std::uint32_t kMaxFrame = 1u << 20;  // a row with a password hash is tiny
}  // namespace

AuthState::~AuthState() {
  if (lookup != nullptr) lookup->abandon();
}

AuthQuery::AuthQuery(SessionWorker& w, pool::Pool& p, std::string sql, std::string user, Login& l)
    : w_(w), pool_(p), sql_(std::move(sql)), user_(std::move(user)), login_(&l) {}

AuthQuery::~AuthQuery() {
  w_.pools->drop_ref(pool_);
}

AuthQuery* AuthQuery::start(SessionWorker& w, pool::Pool& auth_pool, std::string sql,
                            std::string user, Login& login) {
  auto* q = new AuthQuery(w, auth_pool, std::move(sql), std::move(user), login);
  q->login = true;  // a refused auth_user login is reported to us at once
  if (pool::ServerConn* s = w.pools->checkout(auth_pool, *q, w)) {
    // Never report inside start(): the caller has not stored the lookup yet.
    q->assigned = s;
    q->pending_assignment_ = true;
    w.loop().defer(*q);
  }
  return q;
}

void AuthQuery::abandon() {
  login_ = nullptr;
  if (finished_ || pending_assignment_) return;  // on_deferred cleans up
  if (server_ != nullptr) {
    pool::ServerConn* s = server_;
    server_ = nullptr;
    s->user = nullptr;
    s->close("auth query abandoned", false);  // a query is in flight: not reusable
    finished_ = true;
    w_.loop().retire(this);
    return;
  }
  if (w_.pools->cancel_wait(pool_, *this)) {
    finished_ = true;
    w_.loop().retire(this);
  }
  // Otherwise an assignment or a login failure is on its way and cleans up.
}

void AuthQuery::on_assignment() {
  pending_assignment_ = true;
  w_.loop().defer(*this);
}

void AuthQuery::on_deferred() {
  if (!pending_assignment_) return;
  pending_assignment_ = false;
  pool::ServerConn* s = assigned;
  assigned = nullptr;
  delivery_pending = false;
  if (login_ == nullptr || finished_) {
    s->user = nullptr;
    w_.pools->release(*s, w_);
    if (!finished_) {
      finished_ = true;
      w_.loop().retire(this);
    }
    return;
  }
  link(*s);
}

void AuthQuery::on_login_failed(std::string error_body) {
  delivery_pending = false;
  if (login_ == nullptr) {
    if (!finished_) {
      finished_ = true;
      w_.loop().retire(this);
    }
    return;
  }
  AuthLookup r;
  r.kind = AuthLookup::Kind::LoginFailed;
  r.error_body = std::move(error_body);
  finish(std::move(r), false);
}

void AuthQuery::link(pool::ServerConn& s) {
  server_ = &s;
  s.user = this;
  std::size_t mark = s.io.out.synth_mark();
  proto::MessageWriter m(s.io.out.synth());
  // Unnamed statement and portal; the statement is closed again so that nothing of the
  // lookup stays on the server connection.
  m.begin('P').cstring("").cstring(sql_).u16(0).finish();
  m.begin('B').cstring("").cstring("").u16(0).u16(1);
  m.i32(static_cast<std::int32_t>(user_.size())).bytes(user_).u16(0).finish();
  m.begin('E').cstring("").i32(0).finish();
  m.begin('C').u8('S').cstring("").finish();
  m.begin('S').finish();
  if (!s.io.out.commit_synth(mark)) s.io.out.materialize();
  int err = 0;
  if (s.io.flush(err) == net::Outbox::Flush::Error) {
    core::log(core::LogLevel::Warning, "{} auth_query: cannot send to the server", s.log_prefix());
    finish(AuthLookup{AuthLookup::Kind::QueryFailed, std::nullopt, {}}, false);
    return;
  }
  if (s.io.readable || s.io.unscanned() > 0) read_server();
}

void AuthQuery::on_server_io(std::uint32_t events) {
  if (server_ == nullptr || finished_) return;
  if ((events & EPOLLOUT) && !server_->io.out.empty()) {
    int err = 0;
    if (server_->io.flush(err) == net::Outbox::Flush::Error) {
      finish(AuthLookup{AuthLookup::Kind::QueryFailed, std::nullopt, {}}, false);
      return;
    }
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) server_->io.readable = true;
  read_server();
}

void AuthQuery::read_server() {
  net::Stream& io = server_->io;
  core::BufferPool& bufs = w_.buffers();
  for (;;) {
    for (;;) {
      proto::Header h;
      auto st = proto::decode_header(io.scan_ptr(), io.unscanned(), kMaxFrame, h);
      if (st == proto::HeaderStatus::NeedMore) break;
      if (st != proto::HeaderStatus::Ok) {
        core::log(core::LogLevel::Warning, "{} auth_query: bad packet from server",
                  server_->log_prefix());
        finish(AuthLookup{AuthLookup::Kind::QueryFailed, std::nullopt, {}}, false);
        return;
      }
      auto wire = static_cast<std::uint32_t>(h.wire_size());
      if (io.unscanned() < wire) {
        if (wire > io.in.cap - io.in.lo && !io.reserve(bufs, wire)) {
          finish(AuthLookup{AuthLookup::Kind::QueryFailed, std::nullopt, {}}, false);
          return;
        }
        break;
      }
      std::string_view body(io.scan_ptr() + proto::kHeaderLen, h.body_size());
      io.scan += wire;
      if (!handle_frame(h.type, body)) {
        io.consume_scanned();
        bool clean = tx_status_ == 'I' && io.unscanned() == 0 && io.out.empty();
        bufs.release_if_empty(io.in);
        AuthLookup r;
        std::string who = login_ != nullptr ? login_->log_prefix() : server_->log_prefix();
        if (!error_.empty()) {
          core::log(core::LogLevel::Warning, "{} auth_query failed: {}", who, error_);
          r.kind = AuthLookup::Kind::QueryFailed;
        } else if (rows_ == 0) {
          r.kind = AuthLookup::Kind::NotFound;
        } else if (rows_ > 1 || columns_ < 2) {
          core::log(core::LogLevel::Warning,
                    "{} auth_query must return one row of two columns (user, password)", who);
          r.kind = AuthLookup::Kind::QueryFailed;
        } else {
          r.kind = AuthLookup::Kind::Found;
          r.secret = std::move(secret_);
        }
        finish(std::move(r), clean);
        return;
      }
    }
    io.consume_scanned();
    if (!io.readable) {
      bufs.release_if_empty(io.in);
      return;
    }
    if (io.in.allocated() && io.in.free_tail() == 0) io.compact();
    auto r = io.read(bufs);
    if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
      core::log(core::LogLevel::Warning, "{} auth_query: server closed the connection",
                server_->log_prefix());
      finish(AuthLookup{AuthLookup::Kind::QueryFailed, std::nullopt, {}}, false);
      return;
    }
    if (r.kind == net::IoResult::Kind::Data && r.n == 0) {  // no room: never retry in a loop
      finish(AuthLookup{AuthLookup::Kind::QueryFailed, std::nullopt, {}}, false);
      return;
    }
  }
}

bool AuthQuery::handle_frame(char type, std::string_view body) {
  switch (type) {
    case proto::be::kDataRow: {
      if (++rows_ > 1) return true;
      proto::BodyReader rd(body);
      auto n = rd.u16();
      if (!n) return true;
      columns_ = *n;
      for (int i = 0; i < columns_ && i < 2; ++i) {
        auto len = rd.i32();
        if (!len) {
          columns_ = 0;
          return true;
        }
        if (*len < 0) {
          if (i == 1) secret_.reset();
          continue;
        }
        auto v = rd.bytes(static_cast<std::size_t>(*len));
        if (!v) {
          columns_ = 0;
          return true;
        }
        if (i == 1) secret_ = std::string(*v);
      }
      return true;
    }
    case proto::be::kErrorResponse: {
      auto e = proto::ErrorView::decode(body);
      if (error_.empty()) error_ = e && !e->message.empty() ? std::string(e->message) : "error";
      return true;
    }
    case proto::be::kReadyForQuery:
      tx_status_ = body.empty() ? 0 : body[0];
      return false;
    default:  // ParseComplete, BindComplete, CloseComplete, CommandComplete, notices
      return true;
  }
}

void AuthQuery::finish(AuthLookup result, bool server_clean) {
  if (finished_) return;
  finished_ = true;
  if (server_ != nullptr) {
    pool::ServerConn* s = server_;
    server_ = nullptr;
    s->user = nullptr;
    if (server_clean) {
      w_.pools->release(*s, w_);
    } else {
      s->close("auth query failed", false);
    }
  }
  Login* l = login_;
  login_ = nullptr;
  w_.loop().retire(this);
  if (l != nullptr) l->lookup_done(std::move(result));
}

}  // namespace sluice::session
