// One event loop per worker thread: edge-triggered epoll, cross-thread posts, deferred work, ticks.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "core/clock.h"

namespace sluice::net {

// Anything with a file descriptor registered in a loop.
class Pollable {
 public:
  virtual void on_io(std::uint32_t events) = 0;

 protected:
  ~Pollable() = default;
};

// Work queued to run on the loop's own thread after the current event, outside any handler.
class Deferrable {
 public:
  virtual void on_deferred() = 0;
  bool deferred_queued = false;

 protected:
  ~Deferrable() = default;
};

// Objects whose destruction waits for the end of the current loop iteration, so that events
// already harvested for them find a live (closed) object.
class Retirable {
 public:
  virtual ~Retirable() = default;
};

class EventLoop {
 public:
  using Task = std::function<void()>;
  // Registered once per socket: read and write readiness, edge-triggered; never modified.
  static constexpr std::uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  [[nodiscard]] bool add(int fd, Pollable* p, std::uint32_t events = kSocketEvents);
  void remove(int fd);

  // Thread-safe.
  void post(Task fn);
  void stop();

  // Loop thread only.
  void defer(Deferrable& d);
  void retire(Retirable* r) { retired_.push_back(r); }
  // Runs `fn` at the end of the current iteration, after every harvested event, deferred and
  // posted task: the point where a connection may change owner (no event of this batch can
  // reach it afterwards).
  void after_batch(Task fn) { after_batch_.push_back(std::move(fn)); }
  void set_tick(core::Micros interval, Task fn);
  [[nodiscard]] core::Micros now() const { return now_; }
  void refresh_now() { now_ = core::monotonic_now(); }

  // Runs until stop(); returns after finishing the iteration in which stop() was seen.
  void run();
  // One iteration with the given epoll timeout (ms); for tests.
  void run_once(int timeout_ms);

  [[nodiscard]] std::uint64_t iterations() const { return iterations_; }

 private:
  void drain_posts();
  void run_deferred();
  void free_retired();
  void run_after_batch();

  int epfd_ = -1;
  int wakefd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> wake_pending_{false};
  std::mutex post_mu_;
  std::vector<Task> posted_;
  std::vector<Task> running_;
  std::vector<Deferrable*> deferred_;
  std::vector<Deferrable*> deferred_running_;
  std::vector<Retirable*> retired_;
  std::vector<Task> after_batch_;
  std::vector<Task> after_running_;
  core::Micros now_ = 0;
  core::Micros tick_interval_ = 0;
  core::Micros next_tick_ = 0;
  Task tick_;
  std::uint64_t iterations_ = 0;
};

}  // namespace sluice::net
