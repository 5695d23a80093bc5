// Socket helpers.
#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::net {

IoResult recv_some(int fd, char* p, std::size_t n) {
  for (;;) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r > 0) return {IoResult::Kind::Data, static_cast<std::size_t>(r), 0};
    if (r == 0) return {IoResult::Kind::Eof, 0, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoResult::Kind::WouldBlock, 0, 0};
    return {IoResult::Kind::Error, 0, errno};
  }
}

IoResult send_some(int fd, const char* p, std::size_t n) {
  for (;;) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r >= 0) return {IoResult::Kind::Data, static_cast<std::size_t>(r), 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoResult::Kind::WouldBlock, 0, 0};
    return {IoResult::Kind::Error, 0, errno};
  }
}

IoResult send_vec(int fd, const iovec* iov, int cnt) {
  msghdr mh{};
  mh.msg_iov = const_cast<iovec*>(iov);
  mh.msg_iovlen = static_cast<std::size_t>(cnt);
  for (;;) {
    ssize_t r = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (r >= 0) return {IoResult::Kind::Data, static_cast<std::size_t>(r), 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoResult::Kind::WouldBlock, 0, 0};
    return {IoResult::Kind::Error, 0, errno};
  }
}

void set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void set_tcp_options(int fd, bool keepalive, int keepidle, int keepintvl, int keepcnt,
                     int user_timeout_ms, int socket_buffer) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (keepalive) {
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (keepidle > 0) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keepidle, sizeof keepidle);
    if (keepintvl > 0) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keepintvl, sizeof keepintvl);
    if (keepcnt > 0) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keepcnt, sizeof keepcnt);
  }
  if (user_timeout_ms > 0) {
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
  }
  if (socket_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &socket_buffer, sizeof socket_buffer);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &socket_buffer, sizeof socket_buffer);
  }
}

std::string format_addr_host(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_UNIX) {
    return "unix";
  }
  return buf;
}

int addr_port(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  return 0;
}

std::string format_peer(const sockaddr_storage& ss, socklen_t) {
  if (ss.ss_family == AF_UNIX) return "unix";
  std::string host = format_addr_host(ss);
  if (ss.ss_family == AF_INET6) return "[" + host + "]:" + std::to_string(addr_port(ss));
  return host + ":" + std::to_string(addr_port(ss));
}

void set_port(sockaddr_storage& ss, int port) {
  if (ss.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in&>(ss).sin_port = htons(static_cast<std::uint16_t>(port));
  } else if (ss.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6&>(ss).sin6_port = htons(static_cast<std::uint16_t>(port));
  }
}

std::optional<Address> numeric_address(std::string_view host, int port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string h(host);
  sockaddr_storage ss{};
  auto& s4 = reinterpret_cast<sockaddr_in&>(ss);
  if (inet_pton(AF_INET, h.c_str(), &s4.sin_addr) == 1) {
    s4.sin_family = AF_INET;
    set_port(ss, port);
    return Address{ss, static_cast<socklen_t>(sizeof(sockaddr_in))};
  }
  auto& s6 = reinterpret_cast<sockaddr_in6&>(ss);
  if (inet_pton(AF_INET6, h.c_str(), &s6.sin6_addr) == 1) {
    s6.sin6_family = AF_INET6;
    set_port(ss, port);
    return Address{ss, static_cast<socklen_t>(sizeof(sockaddr_in6))};
  }
  return std::nullopt;
}

core::Result<std::vector<std::pair<sockaddr_storage, socklen_t>>> resolve(const std::string& host,
                                                                          int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  std::string svc = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), svc.c_str(), &hints, &res);
  if (rc != 0) {
    hints.ai_flags = 0;  // numeric ::1 without a configured v6 address, etc.
    rc = getaddrinfo(host.c_str(), svc.c_str(), &hints, &res);
  }
  if (rc != 0) return core::Error{std::string("cannot resolve ") + host + ": " + gai_strerror(rc)};
  std::vector<std::pair<sockaddr_storage, socklen_t>> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    bool dup = false;
    for (auto& [o, l] : out) {
      if (l == ai->ai_addrlen && std::memcmp(&o, &ss, l) == 0) dup = true;
    }
    if (!dup) out.emplace_back(ss, static_cast<socklen_t>(ai->ai_addrlen));
  }
  freeaddrinfo(res);
  if (out.empty()) return core::Error{"no addresses for " + host};
  return out;
}

core::Result<std::vector<int>> listen_tcp(const ListenSpec& spec) {
  std::vector<std::string> hosts;
  std::string_view rest = spec.addr;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view h = rest.substr(0, comma);
    while (!h.empty() && h.front() == ' ')
      h.remove_prefix(1);
    while (!h.empty() && h.back() == ' ')
      h.remove_suffix(1);
    if (!h.empty()) hosts.emplace_back(h);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  std::vector<int> fds;
  auto fail = [&](std::string msg) -> core::Result<std::vector<int>> {
    for (int fd : fds)
      ::close(fd);
    return core::Error{std::move(msg)};
  };
  for (const auto& h : hosts) {
    std::vector<std::pair<sockaddr_storage, socklen_t>> addrs;
    if (h == "*") {
      sockaddr_storage v4{};
      auto& s4 = reinterpret_cast<sockaddr_in&>(v4);
      s4.sin_family = AF_INET;
      s4.sin_port = htons(static_cast<uint16_t>(spec.port));
      s4.sin_addr.s_addr = htonl(INADDR_ANY);
      addrs.emplace_back(v4, sizeof(sockaddr_in));
      sockaddr_storage v6{};
      auto& s6 = reinterpret_cast<sockaddr_in6&>(v6);
      s6.sin6_family = AF_INET6;
      s6.sin6_port = htons(static_cast<uint16_t>(spec.port));
      s6.sin6_addr = in6addr_any;
      addrs.emplace_back(v6, sizeof(sockaddr_in6));
    } else {
      auto r = resolve(h, spec.port);
      if (!r) return fail(r.error());
      addrs = std::move(r.value());
    }
    for (auto& [ss, len] : addrs) {
      int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        if (h == "*" && ss.ss_family == AF_INET6) continue;  // no IPv6 on this host
        return fail(std::string("socket: ") + std::strerror(errno));
      }
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (spec.reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        int e = errno;
        ::close(fd);
        if (h == "*" && ss.ss_family == AF_INET6 && e == EADDRNOTAVAIL) continue;
        return fail("bind " + format_peer(ss, len) + ": " + std::strerror(e));
      }
      if (::listen(fd, spec.backlog) != 0) {
        int e = errno;
        ::close(fd);
        return fail(std::string("listen: ") + std::strerror(e));
      }
      fds.push_back(fd);
    }
  }
  return fds;
}

core::Result<int> listen_unix(const std::string& path, int backlog, int mode) {
  sockaddr_un sun{};
  if (path.size() >= sizeof(sun.sun_path)) return core::Error{"unix socket path too long: " + path};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::Error{std::string("socket: ") + std::strerror(errno)};
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    int e = errno;
    ::close(fd);
    return core::Error{"bind " + path + ": " + std::strerror(e)};
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
  if (::listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    return core::Error{std::string("listen: ") + std::strerror(e)};
  }
  return fd;
}

core::Result<int> connect_tcp_start(const sockaddr_storage& ss, socklen_t len) {
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::Error{std::string("socket: ") + std::strerror(errno)};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    return core::Error{std::strerror(e)};
  }
  return fd;
}

core::Result<int> connect_unix_start(const std::string& path) {
  sockaddr_un sun{};
  if (path.size() >= sizeof(sun.sun_path)) return core::Error{"unix socket path too long"};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::Error{std::string("socket: ") + std::strerror(errno)};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 && errno != EINPROGRESS &&
      errno != EAGAIN) {
    int e = errno;
    ::close(fd);
    return core::Error{std::strerror(e)};
  }
  return fd;
}

int connect_result(int fd) {
  int err = 0;
  socklen_t l = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0) return errno;
  return err;
}

int peer_uid(int fd) {
  ucred cr{};
  socklen_t l = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) != 0) return -1;
  return static_cast<int>(cr.uid);
}

}  // namespace sluice::net
