// Worker thread: runs the loop with a 100 ms tick; accepts on its listeners.
#include "app/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace sluice::app {

void Listener::on_io(std::uint32_t) {
  if (paused) return;
  if (!w_.shared().accepting.load(std::memory_order_relaxed)) return;
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        core::log(core::LogLevel::Warning, "accept() failed: {}; pausing for a tick",
                  std::strerror(errno));
        paused = true;
        w_.loop().remove(fd_);
        return;
      }
      core::log(core::LogLevel::Warning, "accept() failed: {}", std::strerror(errno));
      return;
    }
    w_.adopt_client(fd, unix_);
  }
}

Worker::~Worker() = default;

void Worker::add_listener(int fd, bool unix_socket, bool shared_fd) {
  auto l = std::make_unique<Listener>(*this, fd, unix_socket);
  std::uint32_t ev = EPOLLIN | (shared_fd ? EPOLLEXCLUSIVE : 0u);
  if (!loop().add(fd, l.get(), ev)) {
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
  for (auto& l : listeners_) {
    if (l->paused && !l->stopped && shared().accepting.load()) {
      l->paused = false;
      if (!loop().add(l->fd(), l.get(), EPOLLIN)) l->paused = true;
    }
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
