// A worker thread: its event loop, listeners and clients.
#pragma once

#include <thread>
#include <vector>

#include "net/loop.h"
#include "session/session_worker.h"

namespace sluice::app {

class Worker;

// A listening socket in one worker's loop (level-triggered; shared ones use EPOLLEXCLUSIVE).
class Listener final : public net::Pollable {
 public:
  Listener(Worker& w, int fd, bool unix_socket, bool shared_fd)
      : w_(w), fd_(fd), unix_(unix_socket), shared_(shared_fd) {}
  void on_io(std::uint32_t events) override;
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] bool unix_socket() const { return unix_; }
  // What it is registered with: EPOLLIN, and EPOLLEXCLUSIVE when every worker polls it.
  [[nodiscard]] std::uint32_t events() const { return EPOLLIN | (shared_ ? EPOLLEXCLUSIVE : 0u); }
  bool paused = false;   // out of file descriptors: retried on the next tick
  bool stopped = false;  // shutting down: never registered again
  void close_fd();       // a TCP socket owned by this worker (one per worker, SO_REUSEPORT)

 private:
  Worker& w_;
  int fd_;
  bool unix_;
  bool shared_;  // the unix socket, registered in every worker's epoll
};

class Worker final : public session::SessionWorker {
 public:
  Worker(int id, std::uint32_t block_size, session::Shared& shared)
      : session::SessionWorker(id, block_size, shared) {}
  ~Worker() override;

  // Registers listening sockets (before start()).
  void add_listener(int fd, bool unix_socket, bool shared_fd);
  // Stops accepting: deregisters listeners (on the worker's thread). `tcp_only`: the unix
  // socket stays (the console is still reachable while shutting down) and this worker's TCP
  // sockets are closed, so that new connections are refused rather than left in the backlog.
  void stop_listening(bool tcp_only = false);

  void start();
  void join();

 private:
  friend class Listener;
  void on_tick();
  // Out of descriptors: accepts one connection on the reserve descriptor and refuses it with
  // an error (53300) instead of leaving it in the backlog.
  enum class Refusal : std::uint8_t { Refused, NonePending, NoReserve };
  Refusal refuse_one(int listen_fd);
  void warn_out_of_fds(int err);
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::thread thread_;
  int reserve_fd_ = -1;        // /dev/null, given up for a moment to accept a connection to refuse
  std::uint64_t refused_ = 0;  // connections refused since the last warning
  int last_errno_ = 0;         // what accept() said then
  core::Micros last_fd_warning_ = 0;  // the warning is logged at most once a second
};

}  // namespace sluice::app
