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
  bool paused = false;  // out of file descriptors: retried on the next tick

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
  // Stops accepting: deregisters listeners (on the worker's thread).
  void stop_listening();

  void start();
  void join();

 private:
  friend class Listener;
  void on_tick();
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::thread thread_;
};

}  // namespace sluice::app
