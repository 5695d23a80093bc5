// SessionWorker: accepted sockets become clients; ticks drive timeouts and maintenance.
#include "session/session_worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/socket.h"
#include "proto/codes.h"
#include "session/cancel.h"
#include "session/client.h"

namespace sluice::session {

void Shared::publish_config(config::ConfigPtr cfg) {
  std::lock_guard<std::mutex> g(cfg_mu_);
  cfg_ = std::move(cfg);
  cfg_version.fetch_add(1, std::memory_order_release);
}

config::ConfigPtr Shared::current_config(std::uint64_t& version) {
  std::lock_guard<std::mutex> g(cfg_mu_);
  version = cfg_version.load(std::memory_order_acquire);
  return cfg_;
}

void SessionWorker::sync_config() {
  if (shared_.cfg_version.load(std::memory_order_acquire) == cfg_version) return;
  std::uint64_t v = 0;
  auto c = shared_.current_config(v);
  set_cfg(std::move(c));
  cfg_version = v;
}

SessionWorker::SessionWorker(int id, std::uint32_t block_size, Shared& shared)
    : pool::WorkerBase(id, block_size, shared.registries), shared_(shared) {}

SessionWorker::~SessionWorker() = default;

void SessionWorker::adopt_client(int fd, bool unix_socket) {
  sync_config();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  shared_.clients.fetch_add(1, std::memory_order_relaxed);
  auto* c = new Client(*this, fd, unix_socket);
  c->peer = unix_socket ? "unix" : net::format_peer(ss, len);
  c->peer_port = unix_socket ? 0 : net::addr_port(ss);
  if (!unix_socket) {
    const auto& st = cfg().settings;
    net::set_tcp_options(fd, st.tcp_keepalive, st.tcp_keepidle, st.tcp_keepintvl, st.tcp_keepcnt,
                         st.tcp_user_timeout, st.tcp_socket_buffer);
  }
  if (!loop().add(fd, c)) {
    c->close("cannot register socket");
    return;
  }
  // The edge for bytes already queued is reported by epoll at registration.
}

void SessionWorker::register_cancel_key(std::uint64_t key, Client& c) {
  cancel_keys_[key] = &c;
}

void SessionWorker::unregister_cancel_key(std::uint64_t key) {
  cancel_keys_.erase(key);
}

Client* SessionWorker::find_cancel_key(std::uint64_t key) const {
  auto it = cancel_keys_.find(key);
  return it == cancel_keys_.end() ? nullptr : it->second;
}

void SessionWorker::tick() {
  sync_config();
  core::Micros now = loop().now();
  last_tick.store(now, std::memory_order_relaxed);
  ++ticks_;
  clients.for_each([now](Client& c) { c.check_timeouts(now); });
  for (CancelConn* cc : std::vector<CancelConn*>(cancels))
    cc->check_deadline(now);
  if (ticks_ % 3 == 0) {
    servers.for_each([now](pool::ServerConn& s) { s.check_deadlines(now); });
    pools->maintain_worker(*this);
    if (id() == 0) pools->maintain_global(*this);
  }
  if (shared_.draining.load(std::memory_order_relaxed)) drain_idle_clients();
  if (shared_.shutdown.load(std::memory_order_relaxed) == ShutdownMode::WaitForServers) {
    // No new transactions: a client that asks for a server is told and closed.
    clients.for_each([](Client& c) {
      if (c.state == ClientState::Waiting || c.state == ClientState::LoginWait) {
        c.close("server shutting down", proto::sqlstate::kAdminShutdown, "server shutting down");
      }
    });
  }
  if (shared_.admin != nullptr) shared_.admin->tick(*this);
}

void SessionWorker::drain_idle_clients() {
  clients.for_each([](Client& c) { c.drain_if_idle(); });
}

void SessionWorker::close_all(std::string_view reason) {
  clients.for_each([reason](Client& c) {
    c.close(reason, "57P01", "terminating connection due to administrator command");
  });
  servers.for_each([reason](pool::ServerConn& s) {
    if (s.state != pool::ServerState::Closed) s.close(reason);
  });
}

}  // namespace sluice::session
