// Tests for net::Resolver against a small DNS responder on loopback (this file's): answers come
// back on the asking loop, are cached, one query serves concurrent lookups, NXDOMAIN, reconfigure.
#include "net/resolver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/loop.h"

namespace sluice::net {
namespace {

// Answers A queries for `name` with 10.1.2.3, AAAA with no data, anything else NXDOMAIN.
// While held, answers wait until release().
class Responder {
 public:
  explicit Responder(std::string name) : name_(std::move(name)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t l = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &l);
    port_ = ntohs(a.sin_port);
    th_ = std::thread([this] { serve(); });
  }
  ~Responder() {
    stop_ = true;
    release();
    th_.join();
    ::close(fd_);
  }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] int a_queries() const { return a_queries_.load(); }
  void hold() {
    std::lock_guard<std::mutex> g(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> g(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      unsigned char q[512];
      sockaddr_storage peer{};
      socklen_t pl = sizeof peer;
      ssize_t n = ::recvfrom(fd_, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&peer), &pl);
      if (n < 12) continue;
      std::string qname;
      std::size_t pos = 12;
      while (pos < static_cast<std::size_t>(n) && q[pos] != 0) {
        std::size_t len = q[pos];
        if (!qname.empty()) qname += '.';
        qname.append(reinterpret_cast<char*>(q) + pos + 1, len);
        pos += len + 1;
      }
      pos += 1;
      if (pos + 4 > static_cast<std::size_t>(n)) continue;
      int qtype = (q[pos] << 8) | q[pos + 1];
      std::size_t qend = pos + 4;
      bool known = qname == name_;
      if (known && qtype == 1) ++a_queries_;
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait(g, [&] { return !held_ || stop_; });
      }
      std::vector<unsigned char> r(q, q + qend);
      r[2] = 0x84 | (q[2] & 0x01);          // QR, AA, RD as asked
      r[3] = 0x80 | (known ? 0x00 : 0x03);  // RA, NOERROR or NXDOMAIN
      r[6] = 0;
      r[7] = (known && qtype == 1) ? 1 : 0;  // answers
      r[8] = r[9] = r[10] = r[11] = 0;
      if (known && qtype == 1) {
        const unsigned char rr[] = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 1, 0x2C, 0, 4, 10, 1, 2, 3};
        r.insert(r.end(), rr, rr + sizeof rr);
      }
      (void)::sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&peer), pl);
    }
  }

  std::string name_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> a_queries_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  std::thread th_;
};

Resolver::Options options(const Responder& r) {
  Resolver::Options o;
  o.nameservers = r.address();
  o.ttls = {60 * core::kMicrosPerSecond, 60 * core::kMicrosPerSecond};
  return o;
}

// Runs `loop` until `n` answers arrived (bounded).
void run_until(EventLoop& loop, const std::vector<DnsAnswer>& got, std::size_t n) {
  for (int i = 0; i < 500 && got.size() < n; ++i)
    loop.run_once(10);
  ASSERT_EQ(got.size(), n) << "no answer on the asking loop";
}

TEST(Resolver, AnswerArrivesOnTheAskingLoopAndIsCached) {
  Responder dns("db.sluice.test");
  Resolver res;
  res.start(options(dns));
  EventLoop loop;
  std::vector<DnsAnswer> got;
  std::thread::id ran_on;
  auto first = res.lookup("db.sluice.test", loop, [&](DnsAnswer a) {
    ran_on = std::this_thread::get_id();
    got.push_back(std::move(a));
  });
  EXPECT_FALSE(first);  // not cached yet: answered later
  run_until(loop, got, 1);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  ASSERT_EQ(got[0].status, DnsAnswer::Status::Ok) << got[0].error;
  ASSERT_EQ(got[0].addrs.size(), 1u);
  EXPECT_EQ(format_addr_host(got[0].addrs[0].first), "10.1.2.3");

  auto second = res.lookup("db.sluice.test", loop, [&](DnsAnswer a) { got.push_back(a); });
  ASSERT_TRUE(second);  // from the cache, at once
  EXPECT_EQ(format_addr_host(second->addrs[0].first), "10.1.2.3");
  EXPECT_EQ(dns.a_queries(), 1);
  auto rows = res.hosts();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].host, "db.sluice.test");
  EXPECT_EQ(rows[0].addrs, "10.1.2.3");
  EXPECT_GE(rows[0].ttl_seconds, 58);
}

TEST(Resolver, ConcurrentLookupsOfOneNameShareOneQuery) {
  Responder dns("db.sluice.test");
  dns.hold();
  Resolver res;
  res.start(options(dns));
  EventLoop a;
  EventLoop b;
  std::vector<DnsAnswer> got_a;
  std::vector<DnsAnswer> got_b;
  EXPECT_FALSE(res.lookup("db.sluice.test", a, [&](DnsAnswer x) { got_a.push_back(x); }));
  EXPECT_FALSE(res.lookup("db.sluice.test", b, [&](DnsAnswer x) { got_b.push_back(x); }));
  EXPECT_EQ(res.counts().queries, 1u);
  dns.release();
  run_until(a, got_a, 1);
  run_until(b, got_b, 1);
  EXPECT_EQ(got_a[0].status, DnsAnswer::Status::Ok);
  EXPECT_EQ(got_b[0].status, DnsAnswer::Status::Ok);
  EXPECT_EQ(dns.a_queries(), 1);
  EXPECT_EQ(res.counts().queries, 0u);
  EXPECT_EQ(res.counts().names, 1u);
}

TEST(Resolver, UnknownNameIsNotFoundAndThatIsCachedToo) {
  Responder dns("db.sluice.test");
  Resolver res;
  res.start(options(dns));
  EventLoop loop;
  std::vector<DnsAnswer> got;
  EXPECT_FALSE(res.lookup("nx.sluice.test", loop, [&](DnsAnswer x) { got.push_back(x); }));
  run_until(loop, got, 1);
  EXPECT_EQ(got[0].status, DnsAnswer::Status::NotFound);
  EXPECT_FALSE(got[0].error.empty());
  auto again = res.lookup("nx.sluice.test", loop, [&](DnsAnswer x) { got.push_back(x); });
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, DnsAnswer::Status::NotFound);
}

TEST(Resolver, NewNameServersEmptyTheCacheAndAnswerTheNextLookup) {
  Responder one("db.sluice.test");
  Responder two("db.sluice.test");
  Resolver res;
  res.start(options(one));
  EventLoop loop;
  std::vector<DnsAnswer> got;
  EXPECT_FALSE(res.lookup("db.sluice.test", loop, [&](DnsAnswer x) { got.push_back(x); }));
  run_until(loop, got, 1);
  res.configure(options(two));
  for (int i = 0; i < 500 && res.counts().names != 0; ++i)
    loop.run_once(10);
  EXPECT_EQ(res.counts().names, 0u);
  EXPECT_FALSE(res.lookup("db.sluice.test", loop, [&](DnsAnswer x) { got.push_back(x); }));
  run_until(loop, got, 2);
  EXPECT_EQ(got[1].status, DnsAnswer::Status::Ok);
  EXPECT_EQ(one.a_queries(), 1);
  EXPECT_EQ(two.a_queries(), 1);
}

TEST(Resolver, BadNameServerListFailsLookupsSayingWhy) {
  Resolver res;
  Resolver::Options o;
  o.nameservers = "not an address";
  res.start(o);
  EventLoop loop;
  std::vector<DnsAnswer> got;
  EXPECT_FALSE(res.lookup("db.sluice.test", loop, [&](DnsAnswer x) { got.push_back(x); }));
  run_until(loop, got, 1);
  EXPECT_EQ(got[0].status, DnsAnswer::Status::Failed);
  EXPECT_NE(got[0].error.find("dns_nameserver"), std::string::npos) << got[0].error;
}

TEST(Resolver, StoppedResolverFailsAtOnce) {
  Responder dns("db.sluice.test");
  Resolver res;
  res.start(options(dns));
  res.stop();
  EventLoop loop;
  auto a = res.lookup("db.sluice.test", loop, [](DnsAnswer) {});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, DnsAnswer::Status::Failed);
}

}  // namespace
}  // namespace sluice::net
