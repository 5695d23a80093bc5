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
  Listener(Worker& w, int fd, bool unix_socket) : w_(w), fd_(fd), unix_(unix_socket) {}
  void on_io(std::uint32_t events) override;
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] bool unix_socket() const { return unix_; }
  bool paused = false;   // out of file descriptors: retried on the next tick
  bool stopped = false;  // shutting down: never registered again
  void close_fd();       // a TCP socket owned by this worker (one per worker, SO_REUSEPORT)

 private:
  Worker& w_;
  int fd_;
  bool unix_;
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
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::thread thread_;
};

}  // namespace sluice::app
