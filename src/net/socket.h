// Socket helpers: non-blocking I/O results as values, addresses, listeners, outgoing connects.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace sluice::net {

struct IoResult {
  enum class Kind : std::uint8_t { Data, WouldBlock, Eof, Error };
  Kind kind;
  std::size_t n = 0;
  int err = 0;
};

[[nodiscard]] IoResult recv_some(int fd, char* p, std::size_t n);
[[nodiscard]] IoResult send_some(int fd, const char* p, std::size_t n);
[[nodiscard]] IoResult send_vec(int fd, const iovec* iov, int cnt);

void set_nonblocking(int fd);
void set_tcp_options(int fd, bool keepalive, int keepidle, int keepintvl, int keepcnt,
                     int user_timeout_ms, int socket_buffer);

// "127.0.0.1:5432", "[::1]:5432" or "unix" for an address.
[[nodiscard]] std::string format_peer(const sockaddr_storage& ss, socklen_t len);
[[nodiscard]] std::string format_addr_host(const sockaddr_storage& ss);
[[nodiscard]] int addr_port(const sockaddr_storage& ss);

struct ListenSpec {
  std::string addr;  // "*", "0.0.0.0", "::", "127.0.0.1", a host name
  int port = 0;
  int backlog = 128;
  bool reuseport = false;
};

// Binds every address of `addr` (comma separated, "*" = all); returns the fds.
[[nodiscard]] core::Result<std::vector<int>> listen_tcp(const ListenSpec& spec);
[[nodiscard]] core::Result<int> listen_unix(const std::string& path, int backlog, int mode);

// Starts a non-blocking connect; the fd is returned even while EINPROGRESS.
[[nodiscard]] core::Result<int> connect_tcp_start(const sockaddr_storage& ss, socklen_t len);
[[nodiscard]] core::Result<int> connect_unix_start(const std::string& path);
// After writability: 0 if connected, else the errno.
[[nodiscard]] int connect_result(int fd);

using Address = std::pair<sockaddr_storage, socklen_t>;

// `host` as an IPv4 or IPv6 literal ("[::1]" too) with `port`; nothing for a name (which
// needs a lookup: net/resolver.h).
[[nodiscard]] std::optional<Address> numeric_address(std::string_view host, int port);
// Sets the port of an IPv4 or IPv6 address.
void set_port(sockaddr_storage& ss, int port);

// Resolves host:port (numeric or DNS, blocking: never on a worker thread); first result only
// for each family.
[[nodiscard]] core::Result<std::vector<std::pair<sockaddr_storage, socklen_t>>> resolve(
    const std::string& host, int port);

// Unix socket peer uid, or -1.
[[nodiscard]] int peer_uid(int fd);

}  // namespace sluice::net
