// Health: liveness from worker ticks, readiness from pool state and connect probes.
#include "admin/health.h"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include "net/socket.h"

namespace sluice::admin {
namespace {

constexpr core::Micros kStaleTick = 2 * core::kMicrosPerSecond;
constexpr core::Micros kProbeCache = 2 * core::kMicrosPerSecond;
constexpr int kProbeTimeoutMs = 500;

// Waits for a non-blocking connect to finish; true if it succeeded.
bool finish_connect(int fd) {
  pollfd p{fd, POLLOUT, 0};
  int r = ::poll(&p, 1, kProbeTimeoutMs);
  return r == 1 && net::connect_result(fd) == 0;
}

}  // namespace

Health::Answer Health::live() {
  Answer a{true, {}};
  core::Micros now = core::monotonic_now();
  for (auto* w : shared_.workers) {
    core::Micros age = now - w->last_tick.load(std::memory_order_relaxed);
    bool ok = age < kStaleTick;
    a.ok = a.ok && ok;
    a.text += fmt::format("worker {}: {} (last tick {} ms ago)\n", w->id(), ok ? "ok" : "stuck",
                          age / core::kMicrosPerMilli);
  }
  return a;
}

bool Health::reachable(const std::vector<std::string>& hosts, int port,
                       const std::string& unix_dir) {
  std::string key = unix_dir + "|" + std::to_string(port);
  for (const auto& h : hosts)
    key += "|" + h;
  core::Micros now = core::monotonic_now();
  auto it = probes_.find(key);
  if (it != probes_.end() && now - it->second.at < kProbeCache) return it->second.ok;
  bool ok = false;
  auto try_fd = [&](core::Result<int> r) {
    if (!r) return;
    ok = finish_connect(r.value());
    ::close(r.value());
  };
  if (hosts.empty()) {
    try_fd(net::connect_unix_start(unix_dir + "/.s.PGSQL." + std::to_string(port)));
  }
  for (const auto& h : hosts) {
    if (ok) break;
    if (!h.empty() && h.front() == '/') {
      try_fd(net::connect_unix_start(h + "/.s.PGSQL." + std::to_string(port)));
      continue;
    }
    auto addrs = net::resolve(h, port);
    if (!addrs) continue;
    for (const auto& [ss, len] : addrs.value()) {
      try_fd(net::connect_tcp_start(ss, len));
      if (ok) break;
    }
  }
  probes_[key] = Probe{ok, now};
  return ok;
}

Health::Answer Health::ready() {
  Answer a{true, {}};
  auto fail = [&](const std::string& line) {
    a.ok = false;
    a.text += line + "\n";
  };
  if (!shared_.accepting.load() || shared_.shutdown.load() != session::ShutdownMode::None) {
    fail("listening: no (shutting down)");
  } else {
    a.text += "listening: yes\n";
  }
  if (shared_.pools->paused({}) || shared_.pools->suspended()) fail("paused: yes");
  auto cfg = config_();
  auto health = shared_.pools->database_health();
  auto find = [&](const std::string& n) -> const pool::PoolManager::DatabaseHealth* {
    for (const auto& h : health) {
      if (h.name == n) return &h;
    }
    return nullptr;
  };
  const auto& st = cfg->settings;
  std::string unix_dir = st.unix_socket_dir.empty() ? "/tmp" : st.unix_socket_dir;
  for (const auto& d : cfg->databases) {
    if (d.name == "*") continue;
    const auto* h = find(d.name);
    if (h != nullptr && h->disabled) {
      a.text += d.name + ": disabled\n";
      continue;
    }
    if (h != nullptr && h->servers_up > 0) {
      a.text += fmt::format("{}: ok ({} server connections)\n", d.name, h->servers_up);
      continue;
    }
    if (h != nullptr && h->failing) {
      fail(d.name + ": failing (the last attempt to connect or log in failed)");
      continue;
    }
    std::vector<std::string> hosts = d.hosts;
    int port = d.port;
    if (auto sw = shared_.pools->switched_target(d.name)) {
      hosts = sw->hosts;
      port = sw->port;
    }
    if (reachable(hosts, port, unix_dir)) {
      a.text += d.name + ": ok (reachable)\n";
    } else {
      fail(d.name + ": unreachable");
    }
  }
  return a;
}

}  // namespace sluice::admin
