// Resolver: one c-ares channel driven by an EventLoop on its own thread (sockets level-triggered
// in that loop's epoll, c-ares timeouts on a timerfd), the cache under one mutex.
#include "net/resolver.h"

#include <ares.h>
#include <netinet/in.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/log.h"
#include "net/loop.h"

namespace sluice::net {

namespace {

// c-ares wants level-triggered readiness: it reads one answer per call.
constexpr std::uint32_t kRead = EPOLLIN;
constexpr std::uint32_t kWrite = EPOLLOUT;

struct Waiter {
  EventLoop* loop;
  Resolver::Done done;
};

}  // namespace

struct Resolver::Impl {
  // One socket c-ares opened, registered in the resolver loop.
  struct Watch final : Pollable, Retirable {
    Impl* impl;
    int fd;
    Watch(Impl* i, int f) : impl(i), fd(f) {}
    void on_io(std::uint32_t events) override {
      bool r = (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
      bool w = (events & EPOLLOUT) != 0;
      Impl* i = impl;  // this may be retired inside ares_process_fd
      ares_process_fd(i->channel, r ? fd : ARES_SOCKET_BAD, w ? fd : ARES_SOCKET_BAD);
      i->rearm_timer();
    }
  };
  // c-ares' retransmission and query timeouts.
  struct Timer final : Pollable {
    Impl* impl;
    int fd = -1;
    void on_io(std::uint32_t) override {
      std::uint64_t n = 0;
      ssize_t r = ::read(fd, &n, sizeof n);
      (void)r;
      ares_process_fd(impl->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      impl->rearm_timer();
    }
  };
  struct Query {
    Impl* impl;
    std::string host;
  };

  EventLoop loop;
  std::thread thread;
  bool started = false;
  Timer timer;

  // Resolver thread only.
  ares_channel channel = nullptr;
  std::string channel_error;  // why there is no channel
  Options applied;            // what the channel was built from
  bool rebuild_wanted = false;
  std::unordered_map<int, Watch*> watches;

  // Any thread, under mu.
  mutable std::mutex mu;
  Options wanted;
  DnsCache cache;
  std::map<std::string, std::vector<Waiter>> pending;  // names being looked up
  bool stopping = false;

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Impl*>(data);
    auto it = self->watches.find(fd);
    if (it != self->watches.end()) {  // re-registered with the new interest, or dropped
      self->loop.remove(fd);
      if (!readable && !writable) {
        self->loop.retire(it->second);
        self->watches.erase(it);
        return;
      }
    } else {
      if (!readable && !writable) return;
      it = self->watches.emplace(fd, new Watch(self, fd)).first;
    }
    std::uint32_t ev = (readable ? kRead : 0) | (writable ? kWrite : 0);
    if (!self->loop.add(fd, it->second, ev)) {
      SLUICE_WARN("dns: cannot watch a resolver socket: {}", std::strerror(errno));
    }
  }

  void rearm_timer() {
    itimerspec its{};
    timeval tv{};
    if (channel != nullptr && ares_timeout(channel, nullptr, &tv) != nullptr) {
      its.it_value.tv_sec = tv.tv_sec;
      its.it_value.tv_nsec = static_cast<long>(tv.tv_usec) * 1000;
      if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(timer.fd, 0, &its, nullptr);
  }

  void build_channel(const Options& o) {
    if (channel != nullptr) {
      ares_destroy(channel);  // no query in flight (callers make sure), no callback
      channel = nullptr;
    }
    applied = o;
    channel_error.clear();
    ares_options ao{};
    int mask = ARES_OPT_SOCK_STATE_CB;
    ao.sock_state_cb = &Impl::on_sock_state;
    ao.sock_state_cb_data = this;
    std::string conf = o.resolv_conf;
    if (!conf.empty()) {
      mask |= ARES_OPT_RESOLVCONF;
      ao.resolvconf_path = conf.data();
    }
    int rc = ares_init_options(&channel, &ao, mask);
    if (rc == ARES_SUCCESS && !o.nameservers.empty()) {
      rc = ares_set_servers_ports_csv(channel, o.nameservers.c_str());
      if (rc != ARES_SUCCESS) {
        channel_error = "bad dns_nameserver '" + o.nameservers + "': " + ares_strerror(rc);
      }
    } else if (rc != ARES_SUCCESS) {
      channel_error = std::string("cannot set up the resolver: ") + ares_strerror(rc);
    }
    if (!channel_error.empty()) {
      SLUICE_WARN("dns: {}", channel_error);
      if (channel != nullptr) ares_destroy(channel);
      channel = nullptr;
    }
  }

  // Resolver thread: rebuild the channel when the name servers changed and nothing is in flight.
  void apply_wanted() {
    Options o;
    bool idle = false;
    {
      std::lock_guard<std::mutex> g(mu);
      o = wanted;
      idle = pending.empty();
    }
    if (o.nameservers == applied.nameservers && o.resolv_conf == applied.resolv_conf) {
      rebuild_wanted = false;
      return;
    }
    if (!idle) {
      rebuild_wanted = true;  // after the last answer
      return;
    }
    rebuild_wanted = false;
    build_channel(o);
    std::lock_guard<std::mutex> g(mu);
    cache.clear();  // answers from the old servers
  }

  void start_query(const std::string& host) {
    if (channel == nullptr) {
      DnsAnswer a;
      a.status = DnsAnswer::Status::Failed;
      a.error = channel_error.empty() ? std::string("no resolver") : channel_error;
      finish(host, std::move(a));
      return;
    }
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(channel, host.c_str(), nullptr, &hints, &Impl::on_answer,
                     new Query{this, host});
    rearm_timer();
  }

  static void on_answer(void* arg, int status, int, ares_addrinfo* res) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    DnsAnswer a;
    if (status == ARES_SUCCESS && res != nullptr) {
      for (ares_addrinfo_node* n = res->nodes; n != nullptr; n = n->ai_next) {
        if (n->ai_addr == nullptr || n->ai_addrlen > sizeof(sockaddr_storage)) continue;
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
        sockaddr_storage ss{};
        std::memcpy(&ss, n->ai_addr, n->ai_addrlen);
        if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in&>(ss).sin_port = 0;
        if (ss.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6&>(ss).sin6_port = 0;
        auto len = static_cast<socklen_t>(n->ai_addrlen);
        bool dup = false;
        for (const auto& [o, l] : a.addrs) {
          if (l == len && std::memcmp(&o, &ss, l) == 0) dup = true;
        }
        if (!dup) a.addrs.emplace_back(ss, len);
      }
      a.status = a.addrs.empty() ? DnsAnswer::Status::NotFound : DnsAnswer::Status::Ok;
      if (a.addrs.empty()) a.error = "no addresses";
    } else if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
      a.status = DnsAnswer::Status::NotFound;
      a.error = ares_strerror(status);
    } else {
      a.status = DnsAnswer::Status::Failed;
      a.error = ares_strerror(status);
    }
    if (res != nullptr) ares_freeaddrinfo(res);
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;  // stopping
    q->impl->finish(q->host, std::move(a));
  }

  // Resolver thread: caches the answer and hands it to everyone waiting for the name.
  void finish(const std::string& host, DnsAnswer a) {
    if (a.status != DnsAnswer::Status::Ok) {
      SLUICE_DEBUG("dns: lookup failed: {}: {}", host, a.error);
    }
    std::vector<Waiter> ws;
    bool idle = false;
    {
      std::lock_guard<std::mutex> g(mu);
      cache.store(host, a, core::monotonic_now(), wanted.ttls);
      auto it = pending.find(host);
      if (it != pending.end()) {
        ws = std::move(it->second);
        pending.erase(it);
      }
      idle = pending.empty();
      if (stopping) ws.clear();
    }
    for (auto& w : ws) {
      w.loop->post([done = std::move(w.done), a]() mutable { done(std::move(a)); });
    }
    if (idle && rebuild_wanted) apply_wanted();
  }
};

Resolver::Resolver() : impl_(std::make_unique<Impl>()) {}

Resolver::~Resolver() {
  stop();
}

void Resolver::start(const Options& o) {
  Impl& i = *impl_;
  if (i.started) return;
  static std::once_flag lib_once;
  std::call_once(lib_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  {
    std::lock_guard<std::mutex> g(i.mu);
    i.wanted = o;
  }
  i.timer.impl = &i;
  i.timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (i.timer.fd < 0 || !i.loop.add(i.timer.fd, &i.timer, EPOLLIN)) {
    SLUICE_ERROR("dns: cannot create the resolver timer: {}", std::strerror(errno));
  }
  i.build_channel(o);  // before the thread exists: no race on the channel
  i.started = true;
  i.thread = std::thread([&i] { i.loop.run(); });
}

void Resolver::configure(const Options& o) {
  Impl& i = *impl_;
  {
    std::lock_guard<std::mutex> g(i.mu);
    i.wanted = o;
  }
  if (i.started) i.loop.post([&i] { i.apply_wanted(); });
}

void Resolver::stop() {
  Impl& i = *impl_;
  if (!i.started) return;
  i.started = false;
  {
    std::lock_guard<std::mutex> g(i.mu);
    i.stopping = true;
  }
  i.loop.post([&i] {
    if (i.channel != nullptr) ares_destroy(i.channel);  // callbacks see ARES_EDESTRUCTION
    i.channel = nullptr;
  });
  i.loop.stop();
  if (i.thread.joinable()) i.thread.join();
  if (i.timer.fd >= 0) {
    i.loop.remove(i.timer.fd);
    ::close(i.timer.fd);
    i.timer.fd = -1;
  }
}

std::optional<DnsAnswer> Resolver::lookup(const std::string& host, EventLoop& loop, Done done) {
  Impl& i = *impl_;
  std::lock_guard<std::mutex> g(i.mu);
  if (auto a = i.cache.find(host, core::monotonic_now())) return a;
  if (i.stopping || !i.started) {
    DnsAnswer a;
    a.error = "resolver stopped";
    return a;
  }
  auto& ws = i.pending[host];
  bool first = ws.empty();
  ws.push_back(Waiter{&loop, std::move(done)});
  if (first) i.loop.post([&i, host] { i.start_query(host); });
  return std::nullopt;
}

std::vector<DnsCache::Row> Resolver::hosts() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->cache.rows(core::monotonic_now());
}

Resolver::Counts Resolver::counts() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return Counts{impl_->cache.size(), impl_->pending.size()};
}

}  // namespace sluice::net
