// The query loop: client and server frames relayed as original bytes, tracked, released on time.
#include <algorithm>

#include "core/log.h"
#include "proto/backend.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/writer.h"
#include "session/client.h"

namespace sluice::session {

bool Client::flush_to_client() {
  int err = 0;
  if (io.flush(err) == net::Outbox::Flush::Error) {
    close("client unexpected eof");
    return false;
  }
  return true;
}

bool Client::flush_to_server() {
  int err = 0;
  if (server->io.flush(err) == net::Outbox::Flush::Error) {
    server_failed("server conn crashed?");
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- client -> server

void Client::relay_client() {
  for (;;) {
    if (state == ClientState::Closed) return;
    if (server != nullptr && !server->io.out.empty()) return;  // resumes on server EPOLLOUT
    Step st = scan_client_frames();
    if (state == ClientState::Closed) return;
    if (server != nullptr && !server->io.out.empty()) {
      if (!flush_to_server()) return;
      if (!server->io.out.empty()) return;
    }
    if (!io.out.empty() && !flush_to_client()) return;
    io.consume_scanned();
    if (st == Step::Blocked) continue;  // the segment table was full and has been flushed
    if (st != Step::NeedInput) return;
    if (need_whole_ > 0) {
      // A message sluice must see whole (a query to classify, a statement to rename).
      if (!io.reserve(worker.buffers(), need_whole_)) {
        close("out of memory", proto::sqlstate::kProgramLimitExceeded, "out of memory");
        return;
      }
      need_whole_ = 0;
    }
    if (!io.readable) {
      worker.buffers().release_if_empty(io.in);
      // All input is handled: a server kept for this client's turn (or for the rest of a
      // message it was sending) may be due back now.
      if (server != nullptr) maybe_release();
      return;
    }
    if (io.in.allocated() && io.in.free_tail() == 0) io.compact();
    auto r = io.read(worker.buffers());
    if (r.kind == net::IoResult::Kind::Eof) {
      close("client unexpected eof");
      return;
    }
    if (r.kind == net::IoResult::Kind::Error) {
      close("client unexpected eof");
      return;
    }
    if (r.kind == net::IoResult::Kind::Data) {
      if (r.n == 0) {  // buffer full of one message we must see whole
        close("message too large", proto::sqlstate::kProgramLimitExceeded,
              "message exceeds the buffer");
        return;
      }
      last_activity = worker.loop().now();
    }
  }
}

bool Client::handle_unlinked_message(char type, std::uint32_t wire) {
  switch (type) {
    case proto::fe::kTerminate:
      close("client close request");
      return true;
    case proto::fe::kCopyData:
    case proto::fe::kCopyDone:
    case proto::fe::kCopyFail:
    case proto::fe::kFlush:
      // After a COPY failed the server drops these; with no server there is nothing to flush.
      from_client_.skip(io, wire);
      return true;
    case proto::fe::kSync: {
      // No server: nothing to synchronize. Consumed as it arrives (it is 5 bytes).
      from_client_.skip(io, wire);
      send_ready('I');
      return true;
    }
    default:
      return false;
  }
}

void Client::request_server(bool login_wait) {
  login = login_wait;
  state = login_wait ? ClientState::LoginWait : ClientState::Waiting;
  wait_since = worker.loop().now();
  wait_notified_ = false;
  affinity_key = tracker_.settings().get();
  pool::ServerConn* s = worker.pools->checkout(*pool, *this, worker);
  if (s != nullptr) link(*s, false);
}

void Client::on_assignment() {
  pending_assignment_ = true;
  worker.loop().defer(*this);
}

void Client::on_deferred() {
  if (pending_assignment_) {
    pending_assignment_ = false;
    pool::ServerConn* s = assigned;
    assigned = nullptr;
    delivery_pending = false;
    if (zombie_ || state == ClientState::Closed) {
      s->user = nullptr;
      worker.pools->release(*s, worker);
      if (zombie_) {
        zombie_ = false;
        worker.loop().retire(this);
      }
      return;
    }
    link(*s, true);
    return;
  }
  if (state == ClientState::Closed) return;
  relay_client();
}

// `resume`: continue with the client's input here (not when called from inside the scan).
void Client::link(pool::ServerConn& s, bool resume) {
  server = &s;
  s.user = this;
  counters_ = &pool->counters_of(worker);
  {
    pool::PoolCounters& pc = *counters_;
    pc.server_assignments.add(1);
    if (state == ClientState::Waiting || state == ClientState::LoginWait) {
      pc.wait_time.add(static_cast<std::uint64_t>(worker.loop().now() - wait_since));
    }
  }
  bool was_login = state == ClientState::LoginWait;
  state = ClientState::Active;
  from_server_.reset_forward();
  turn_owed_ = true;  // until a request of this client has been sent to it (maybe_release)
  if (was_login) {
    finish_login();
    if (state == ClientState::Closed) return;
  }
  worker.sync_config();  // a console SET must apply to the next transaction, not the next tick
  const auto& st = worker.cfg().settings;
  tracker_.configure(pool->mode != config::PoolMode::Session && st.track_session_state,
                     pool->mode != config::PoolMode::Session && st.max_prepared_statements > 0);
  // Bring the server's session settings to what this client wants: one round trip, only
  // when they differ (a client that never changed anything costs nothing).
  std::string sql = tracker_.replay_sql(s);
  if (!sql.empty()) {
    std::size_t mark = s.io.out.synth_mark();
    proto::write_query(s.io.out.synth(), sql);
    (void)s.io.out.commit_synth(mark);
    sync_rfq_ = 1;
    s.internal_deadline = worker.loop().now() + s.internal_query_bound();
    sync_error_.reset();
    counters_->server_syncs.add(1);
    if (!flush_to_server()) return;
  }
  if (s.io.readable || s.io.unscanned() > 0) relay_server();
  if (state == ClientState::Closed || server == nullptr) return;
  if (sync_rfq_ == 0) {
    if (was_login) maybe_release();
    if (resume) relay_client();
  }
}

// ---------------------------------------------------------------- server -> client

void Client::on_server_io(std::uint32_t events) {
  if (state == ClientState::Closed || server == nullptr) return;
  if ((events & EPOLLOUT) && !server->io.out.empty()) {
    if (!flush_to_server()) return;
    if (server->io.out.empty()) {
      io.consume_scanned();
      relay_client();
      if (state == ClientState::Closed || server == nullptr) return;
    }
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) server->io.readable = true;
  relay_server();
}

void Client::relay_server() {
  for (;;) {
    if (state == ClientState::Closed || server == nullptr) return;
    if (!io.out.empty()) return;  // resumes when the client drains (on_io EPOLLOUT)
    Step st = scan_server_frames();
    if (state == ClientState::Closed) return;
    if (server == nullptr) {  // detached during the scan (statement-mode refusal)
      if (!io.out.empty()) flush_to_client();
      return;
    }
    if (server_fatal_) {
      // Forward what the server said, then end both: the backend is gone.
      pool::ServerConn* s = server;
      server = nullptr;
      s->user = nullptr;
      io.out.materialize();
      s->close("server sent FATAL", false);
      flush_to_client();
      close("server closed the connection");
      return;
    }
    if (!io.out.empty()) {
      if (!flush_to_client()) return;
      if (!io.out.empty()) return;
    }
    server->io.consume_scanned();
    maybe_release();
    if (server == nullptr || state == ClientState::Closed) return;
    if (st == Step::Blocked) continue;
    if (sync_rfq_ == 0 && !tracker_.probing() && st == Step::Waiting) {
      // Sluice's own query finished: release if due, and the client's request may go now.
      maybe_release();
      if (state == ClientState::Closed) return;
      relay_client();
      if (server == nullptr || state == ClientState::Closed) return;
      continue;
    }
    if (st == Step::Stop) return;
    if (!server->io.readable) {
      worker.buffers().release_if_empty(server->io.in);
      return;
    }
    if (server->io.in.allocated() && server->io.in.free_tail() == 0) server->io.compact();
    auto r = server->io.read(worker.buffers());
    if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
      server_failed("server conn crashed?");
      return;
    }
    if (r.kind == net::IoResult::Kind::Data && r.n == 0) {
      server_failed("server message too large");
      return;
    }
  }
}

void Client::after_request_done(char status) {
  core::Micros now = worker.loop().now();
  pool::PoolCounters& pc = (*counters_);
  pc.queries.add(1);
  if (request_start != 0) pc.query_time.add(static_cast<std::uint64_t>(now - request_start));
  if (status == 'I') {
    // A statement outside a transaction block is a transaction of its own.
    core::Micros began = xact_start != 0 ? xact_start : request_start;
    pc.xacts.add(1);
    if (began != 0) pc.xact_time.add(static_cast<std::uint64_t>(now - began));
    xact_start = 0;
  } else if (xact_start == 0) {
    xact_start = request_start != 0 ? request_start : now;
  }
  request_start = 0;
  idle_since = now;
}

void Client::maybe_release() {
  pool::ServerConn* s = server;
  if (s == nullptr || sync_rfq_ > 0 || tracker_.probing() || !s->requests.idle() ||
      s->requests.tx_status() != 'I') {
    return;
  }
  if (pool->mode == config::PoolMode::Session && !closing_) return;
  // The rest of a message the client is sending goes to this server (a CopyData the server
  // already refused, say): it is not released in the middle of a frame.
  if (from_client_.forwarding() > 0) return;
  if (turn_owed_) {
    // Checked out for a request still in the client's buffer (behind sluice's own sync
    // query): that request runs here first. A checkout is one turn, never lost to state sync.
    if (io.unscanned() > 0) return;
    turn_owed_ = false;
  }
  if (from_server_.forwarding() > 0 || s->io.unscanned() > 0 || !s->io.out.empty()) return;
  if (tracker_.read_back_owed()) {
    // The transaction may have changed session state: ask the server before anyone else
    // can get it (truth from the server, not from guessing at SQL).
    tracker_.start_probe(*s);
    (void)flush_to_server();
    return;
  }
  if (tracker_.pin_reason() != nullptr) return;  // pinned: keep it
  if (from_server_.forwarding() > 0 || s->io.unscanned() > 0 || !s->io.out.empty()) return;
  if (!io.out.empty()) io.out.materialize();  // keep the bytes, free the server's buffer
  release_server();
}

void Client::release_server() {
  pool::ServerConn* s = server;
  server = nullptr;
  s->user = nullptr;
  request_start = 0;
  xact_start = 0;
  if (state == ClientState::Active) state = ClientState::Idle;
  s->requests.reset();
  s->io.consume_scanned();
  worker.buffers().release_if_empty(s->io.in);
  const auto& st = worker.cfg().settings;
  if (s->io.hup) {
    s->close("server closed the connection", false);  // its end is still to be read: not reusable
  } else if (s->cancels_in_flight > 0) {
    s->release_after_cancels = true;  // a cancel aimed at this backend must not hit the next user
  } else if (st.server_reset_query_always && !st.server_reset_query.empty()) {
    s->run_internal(tracker_.reset_sqls(*s, st.server_reset_query),
                    pool::ServerConn::After::Release, "server reset");
  } else {
    worker.pools->release(*s, worker);
  }
  if (state != ClientState::Closed && io.unscanned() > 0) worker.loop().defer(*this);
}

// The client is going away while linked: give the server back clean, or close it.
void Client::detach_server_on_close() {
  pool::ServerConn* s = server;
  server = nullptr;
  s->user = nullptr;
  io.out.clear();
  const auto& st = worker.cfg().settings;
  // Not quiet either: half a client message sent (its rest would swallow sluice's ROLLBACK).
  bool quiet = sync_rfq_ == 0 && !tracker_.probing() && s->requests.idle() &&
               from_server_.forwarding() == 0 && from_client_.forwarding() == 0 &&
               s->io.unscanned() == 0 && s->io.out.empty();
  if (tracker_.loaded()) {
    std::vector<std::string> unused;
    tracker_.reset_on_close(*this, *s, unused);  // gives the pin back
    s->close("client gone after LOAD");
    return;
  }
  if (!quiet) {
    std::vector<std::string> none;
    tracker_.reset_on_close(*this, *s, none);
    s->close("client disconnect while server was not ready");
    return;
  }
  s->io.consume_scanned();
  worker.buffers().release_if_empty(s->io.in);
  std::vector<std::string> sqls;
  if (s->requests.tx_status() != 'I') sqls.emplace_back("ROLLBACK");
  tracker_.reset_on_close(*this, *s, sqls);  // state of a pinned client: DISCARD ALL
  bool reset = pool->mode == config::PoolMode::Session || st.server_reset_query_always;
  if (reset && !st.server_reset_query.empty()) {
    sqls.push_back(st.server_reset_query);
    s->forget_session_state();
  }
  s->requests.reset();
  if (s->cancels_in_flight > 0) {
    s->close("client gone with a cancel in flight");
  } else if (sqls.empty()) {
    worker.pools->release(*s, worker);
  } else {
    s->run_internal(sqls, pool::ServerConn::After::Release, "server reset");
  }
}

void Client::server_failed(std::string_view reason) {
  pool::ServerConn* s = server;
  server = nullptr;
  if (s != nullptr) {
    s->user = nullptr;
    io.out.materialize();
    s->close(reason, false);
  }
  close(reason, proto::sqlstate::kConnectionFailure, reason);
}

void Client::handle_admin_query(std::string_view sql) {
  last_activity = worker.loop().now();
  std::size_t mark = io.out.synth_mark();
  bool done = worker.shared().admin->handle_query(*this, sql, io.out.synth());
  (void)io.out.commit_synth(mark);
  if (state == ClientState::Closed) return;
  if (!done) {
    admin_pending_ = true;  // input waits until finish_admin_query
    return;
  }
  send_ready('I');
}

void Client::finish_admin_query(std::string_view messages) {
  admin_pending_ = false;
  if (zombie_) {
    zombie_ = false;
    worker.loop().retire(this);
    return;
  }
  if (state == ClientState::Closed) return;
  if (console_ext_ && console_ext_->running != ConsoleExtended::Run::None) {
    console_ext_->out.append(messages);  // a Describe or Execute: no ReadyForQuery until Sync
    console_run_done();
  } else {
    io.out.add_synth(messages);
    send_ready('I');
  }
  if (!flush_to_client()) return;
  relay_client();  // commands queued behind this one
}

}  // namespace sluice::session
