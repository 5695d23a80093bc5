// Cancel routing (Client::route_cancel / cancel_request_received) and CancelConn.
#include "session/cancel.h"

#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/socket.h"
#include "proto/writer.h"
#include "session/client.h"
#include "session/session_worker.h"

namespace sluice::session {

void CancelConn::start(SessionWorker& w, const Target& t, core::Micros timeout, Done done) {
  auto* c = new CancelConn(w, std::move(done));
  c->deadline_ = w.loop().now() + timeout;
  proto::write_cancel_request(c->packet_, t.pid, t.secret);
  core::Result<int> fd = core::Error{"no address"};
  if (!t.unix_path.empty()) {
    fd = net::connect_unix_start(t.unix_path);
  } else {
    fd = net::connect_tcp_start(t.addr, t.addr_len);
  }
  if (!fd || !w.loop().add(fd.value(), c)) {
    if (fd) ::close(fd.value());
    c->finish();
    return;
  }
  c->fd_ = fd.value();
  w.cancels.push_back(c);
}

void CancelConn::on_io(std::uint32_t events) {
  if (finished_) return;
  if (!sent_) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    if (net::connect_result(fd_) != 0) {
      finish();
      return;
    }
    auto r = net::send_some(fd_, packet_.data(), packet_.size());
    if (r.kind != net::IoResult::Kind::Data || r.n != packet_.size()) {
      finish();
      return;
    }
    sent_ = true;
  }
  // The server answers nothing; it closes once the cancel is processed.
  char b[16];
  for (;;) {
    auto r = net::recv_some(fd_, b, sizeof b);
    if (r.kind == net::IoResult::Kind::WouldBlock) return;
    if (r.kind != net::IoResult::Kind::Data) break;
  }
  finish();
}

void CancelConn::check_deadline(core::Micros now) {
  if (!finished_ && now >= deadline_) {
    core::log(core::LogLevel::Log, "cancel request closing because: cancel_wait_timeout");
    finish();
  }
}

void CancelConn::finish() {
  if (finished_) return;
  finished_ = true;
  if (fd_ >= 0) {
    w_.loop().remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  std::erase(w_.cancels, this);
  Done d = std::move(done_);
  w_.loop().retire(this);
  if (d) d();
}

// A CancelRequest arrived on this (fresh) client connection: find the owner of the key.
void Client::route_cancel(std::uint32_t pid, std::uint32_t secret) {
  state = ClientState::CancelWait;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (unix_socket || ::getpeername(io.fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    ss.ss_family = AF_UNIX;
  }
  int limit = worker.cfg().settings.cancel_rate_limit;
  auto v = worker.shared().cancel_limiter.admit(ss, len, limit, worker.loop().now());
  if (v.report > 0) {
    core::log(core::LogLevel::Warning,
              "cancel_rate_limit: dropped {} cancel request(s) over {} a second from one source "
              "address (last from {})",
              v.report, limit, peer);
  }
  if (!v.allowed) {
    close("cancel request over cancel_rate_limit");  // as a wrong key: nothing is routed
    return;
  }
  std::uint64_t key = (std::uint64_t{pid} << 32) | secret;
  auto owner_id = static_cast<std::size_t>(secret & 0xffu);
  auto& workers = worker.shared().workers;
  if (owner_id >= workers.size()) {
    close("cancel request for unknown key");
    return;
  }
  SessionWorker* owner = workers[owner_id];
  SessionWorker* here = &worker;
  Client* me = this;
  cancel_outstanding_ = true;
  auto reply = [here, me] { here->loop().post([me] { me->cancel_delivered(); }); };
  owner->loop().post([owner, key, reply] {
    Client* target = owner->find_cancel_key(key);
    if (target == nullptr || target->server == nullptr ||
        target->server->state != pool::ServerState::Active) {
      reply();
      return;
    }
    pool::ServerConn* s = target->server;
    CancelConn::Target t;
    t.addr = s->addr;
    t.addr_len = s->addr_len;
    t.unix_path = s->unix_path;
    t.pid = s->backend_pid;
    t.secret = s->backend_secret;
    ++s->cancels_in_flight;
    SessionWorker* o = owner;
    (void)o;
    CancelConn::start(*owner, t, owner->cfg().settings.cancel_wait_timeout, [s, reply] {
      s->cancel_done();
      reply();
    });
  });
}

void Client::cancel_delivered() {
  cancel_outstanding_ = false;
  if (zombie_) {
    zombie_ = false;
    worker.loop().retire(this);
    return;
  }
  close("cancel request forwarded");
}

void Client::cancel_request_received() {}

}  // namespace sluice::session
