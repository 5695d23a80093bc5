// Worker thread: runs the loop with a 100 ms tick; accepts on its listeners.
#include "app/worker.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "net/socket.h"
#include "proto/codes.h"
#include "proto/writer.h"

namespace sluice::app {

void Listener::on_io(std::uint32_t) {
  if (paused) return;
  if (!w_.shared().accepting.load(std::memory_order_relaxed)) return;
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EMFILE || errno == ENFILE) {
        // Refused with an error rather than left waiting in the backlog.
        switch (w_.refuse_one(fd_)) {
          case Worker::Refusal::Refused:
            continue;
          case Worker::Refusal::NonePending:
            return;
          case Worker::Refusal::NoReserve:
            break;
        }
      }
      int err = errno;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        w_.warn_out_of_fds(err);
        paused = true;  // retried on the next tick
        w_.loop().remove(fd_);
        return;
      }
      core::log(core::LogLevel::Warning, "accept() failed: {}", std::strerror(err));
      return;
    }
    w_.adopt_client(fd, unix_);
  }
}

namespace {

int open_reserve() {
  return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

}  // namespace

Worker::Refusal Worker::refuse_one(int listen_fd) {
  int err = errno;
  if (reserve_fd_ < 0) reserve_fd_ = open_reserve();
  if (reserve_fd_ < 0) {
    errno = err;
    return Refusal::NoReserve;
  }
  ::close(reserve_fd_);
  reserve_fd_ = -1;
  int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    err = errno;
    reserve_fd_ = open_reserve();
    errno = err;
    if (err == EAGAIN || err == EWOULDBLOCK) return Refusal::NonePending;
    if (err == EINTR || err == ECONNABORTED) return Refusal::Refused;  // gone: try the next
    return Refusal::NoReserve;  // another thread took the number meanwhile
  }
  // Before any packet is read, as Postgres answers when it cannot start a backend: the
  // client's startup (or SSLRequest) gets an ErrorResponse, then the end of the connection.
  static const std::string kRefusal = [] {
    std::string m;
    proto::write_error(m, {proto::Severity::Fatal, proto::sqlstate::kTooManyConnections,
                           "no more connections allowed (out of file descriptors)"});
    return m;
  }();
  (void)net::send_some(fd, kRefusal.data(), kRefusal.size());
  ::shutdown(fd, SHUT_WR);
  char sink[512];  // what the client already sent: unread bytes would turn the close into RST
  for (int i = 0; i < 16 && net::recv_some(fd, sink, sizeof sink).kind == net::IoResult::Kind::Data;
       ++i) {
  }
  ::close(fd);
  reserve_fd_ = open_reserve();
  ++refused_;
  warn_out_of_fds(EMFILE);
  return Refusal::Refused;
}

void Worker::warn_out_of_fds(int err) {
  last_errno_ = err;
  core::Micros now = core::monotonic_now();
  if (now - last_fd_warning_ < core::kMicrosPerSecond) return;  // at most once a second
  last_fd_warning_ = now;
  if (refused_ > 0) {
    core::log(core::LogLevel::Warning,
              "accept(): {}; refused {} connection(s) (no more connections allowed, 53300)",
              std::strerror(err), refused_);
    refused_ = 0;
  } else {
    core::log(core::LogLevel::Warning, "accept() failed: {}; pausing for a tick",
              std::strerror(err));
  }
}

Worker::~Worker() {
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

void Worker::add_listener(int fd, bool unix_socket, bool shared_fd) {
  auto l = std::make_unique<Listener>(*this, fd, unix_socket, shared_fd);
  if (reserve_fd_ < 0) reserve_fd_ = open_reserve();
  if (!loop().add(fd, l.get(), l->events())) {
    core::log(core::LogLevel::Warning, "cannot register listener: {}", std::strerror(errno));
  }
  listeners_.push_back(std::move(l));
}

void Listener::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Worker::stop_listening(bool tcp_only) {
  for (auto& l : listeners_) {
    if (l->stopped || (tcp_only && l->unix_socket())) continue;
    if (!l->paused) loop().remove(l->fd());
    l->paused = true;
    l->stopped = true;
    if (tcp_only) l->close_fd();
  }
}

void Worker::on_tick() {
  if (reserve_fd_ < 0) reserve_fd_ = open_reserve();
  for (auto& l : listeners_) {
    if (l->paused && !l->stopped && shared().accepting.load()) {
      l->paused = false;
      if (!loop().add(l->fd(), l.get(), l->events())) l->paused = true;
    }
  }
  if (refused_ > 0 && loop().now() - last_fd_warning_ >= core::kMicrosPerSecond) {
    warn_out_of_fds(last_errno_);  // the refusals of the last second
  }
  tick();
}

void Worker::start() {
  loop().set_tick(100 * core::kMicrosPerMilli, [this] { on_tick(); });
  thread_ = std::thread([this] { loop().run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace sluice::app
