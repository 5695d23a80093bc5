// EventLoop: epoll_wait, dispatch, posted tasks via eventfd, deferred work, periodic tick.
#include "net/loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "core/log.h"

namespace sluice::net {
namespace {
// The wake-up eventfd is registered with this tag instead of a Pollable.
char kWakeTag;
}  // namespace

EventLoop::EventLoop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || wakefd_ < 0) {
    SLUICE_ERROR("cannot create event loop: {}", std::strerror(errno));
    std::abort();
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &kWakeTag;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0) std::abort();
  now_ = core::monotonic_now();
}

EventLoop::~EventLoop() {
  run_after_batch();
  free_retired();
  if (wakefd_ >= 0) ::close(wakefd_);
  if (epfd_ >= 0) ::close(epfd_);
}

bool EventLoop::add(int fd, Pollable* p, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = p;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void EventLoop::remove(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::post(Task fn) {
  {
    std::lock_guard<std::mutex> g(post_mu_);
    posted_.push_back(std::move(fn));
  }
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    std::uint64_t one = 1;
    ssize_t w = ::write(wakefd_, &one, sizeof one);
    (void)w;
  }
}

void EventLoop::stop() {
  stop_.store(true);
  post([] {});
}

void EventLoop::defer(Deferrable& d) {
  if (d.deferred_queued) return;
  d.deferred_queued = true;
  deferred_.push_back(&d);
}

void EventLoop::set_tick(core::Micros interval, Task fn) {
  tick_interval_ = interval;
  tick_ = std::move(fn);
  next_tick_ = core::monotonic_now() + interval;
}

void EventLoop::drain_posts() {
  {
    std::lock_guard<std::mutex> g(post_mu_);
    running_.swap(posted_);
  }
  for (auto& t : running_)
    t();
  running_.clear();
}

void EventLoop::run_deferred() {
  // Deferred work may defer more; runs until empty so that nothing queued outlives the
  // iteration (retired objects are freed after it).
  while (!deferred_.empty()) {
    deferred_running_.swap(deferred_);
    for (Deferrable* d : deferred_running_) {
      d->deferred_queued = false;
      d->on_deferred();
    }
    deferred_running_.clear();
  }
}

void EventLoop::run_after_batch() {
  while (!after_batch_.empty()) {
    after_running_.swap(after_batch_);
    for (auto& t : after_running_)
      t();
    after_running_.clear();
    run_deferred();
  }
}

void EventLoop::free_retired() {
  for (Retirable* r : retired_)
    delete r;
  retired_.clear();
}

void EventLoop::run_once(int timeout_ms) {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  if (!deferred_.empty() || !after_batch_.empty()) timeout_ms = 0;
  int n = epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
  now_ = core::monotonic_now();
  ++iterations_;
  if (n < 0 && errno != EINTR) {
    SLUICE_ERROR("epoll_wait failed: {}", std::strerror(errno));
    return;
  }
  bool woke = false;
  for (int i = 0; i < n; ++i) {
    void* ptr = events[i].data.ptr;
    if (ptr == &kWakeTag) {
      woke = true;
      continue;
    }
    static_cast<Pollable*>(ptr)->on_io(events[i].events);
  }
  run_deferred();
  if (woke) {
    std::uint64_t v;
    ssize_t r = ::read(wakefd_, &v, sizeof v);
    (void)r;
    wake_pending_.store(false, std::memory_order_release);
    drain_posts();
    run_deferred();
  }
  if (tick_ && now_ >= next_tick_) {
    next_tick_ = now_ + tick_interval_;
    tick_();
    run_deferred();
  }
  if (!after_batch_.empty()) run_after_batch();
  free_retired();
}

void EventLoop::run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    int timeout = -1;
    if (tick_) {
      core::Micros wait = next_tick_ - core::monotonic_now();
      timeout = wait <= 0 ? 0 : static_cast<int>((wait + 999) / 1000);
    }
    run_once(timeout);
  }
  drain_posts();
}

}  // namespace sluice::net
