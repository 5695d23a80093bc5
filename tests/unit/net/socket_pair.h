// Test helper: a non-blocking AF_UNIX stream socket pair, closed on destruction.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <string_view>

namespace sluice::net::testing {

class SocketPair {
 public:
  SocketPair() {
    int fds[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      ADD_FAILURE() << "socketpair: " << errno;
    }
    a_ = fds[0];
    b_ = fds[1];
  }
  ~SocketPair() {
    close_a();
    close_b();
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;

  // `a` is the side under test, `b` its peer.
  [[nodiscard]] int a() const { return a_; }
  [[nodiscard]] int b() const { return b_; }
  void close_a() {
    if (a_ >= 0) ::close(a_);
    a_ = -1;
  }
  void close_b() {
    if (b_ >= 0) ::close(b_);
    b_ = -1;
  }

  // Everything `fd` can read right now (stops at EAGAIN or EOF).
  static std::string drain(int fd, std::size_t max = static_cast<std::size_t>(-1)) {
    std::string out;
    char buf[65536];
    while (out.size() < max) {
      std::size_t want = std::min(sizeof buf, max - out.size());
      ssize_t n = ::recv(fd, buf, want, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

  // Writes `bytes` completely from `fd` (the peer must have room).
  static void write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << "send: " << errno;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Writes filler from `fd` until the socket refuses more; returns the byte count.
  static std::size_t fill(int fd) {
    std::string chunk(4096, 'z');
    std::size_t total = 0;
    for (;;) {
      ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      total += static_cast<std::size_t>(n);
    }
    return total;
  }

  static void set_sndbuf(int fd, int bytes) {
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
  }

 private:
  int a_ = -1;
  int b_ = -1;
};

}  // namespace sluice::net::testing
