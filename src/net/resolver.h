// Asynchronous host name lookups for server connections: c-ares on a thread of its own, answers
// cached (DnsCache) and handed back to the asking worker's loop. No worker ever waits for DNS.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/dns_cache.h"

namespace sluice::net {

class EventLoop;

class Resolver {
 public:
  struct Options {
    DnsCache::Ttls ttls;      // dns_max_ttl, dns_nxdomain_ttl
    std::string nameservers;  // "ip[:port],..." (dns_nameserver); empty: from resolv.conf
    std::string resolv_conf;  // a resolv.conf to read instead of the system's (resolv_conf)
  };
  using Done = std::function<void(DnsAnswer)>;

  Resolver();
  ~Resolver();  // stops the thread
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Starts the resolver thread with `o` (a channel that cannot be set up is logged, and every
  // lookup then fails until a configure() that works).
  void start(const Options& o);
  // Thread-safe. New TTLs apply to the next answers; new name servers or a new resolv.conf to
  // the next queries (the channel is rebuilt once no query is in flight, the cache emptied).
  void configure(const Options& o);
  // Stops the thread; lookups still waiting are never answered. Idempotent.
  void stop();

  // Thread-safe. A fresh cached answer is returned at once. Otherwise returns nothing and
  // `done` runs later on `loop`'s thread with the answer (the loop must outlive the resolver).
  // Concurrent lookups of one name share one query.
  [[nodiscard]] std::optional<DnsAnswer> lookup(const std::string& host, EventLoop& loop,
                                                Done done);

  // SHOW DNS_HOSTS rows, and SHOW LISTS' dns_names / dns_queries (queries in flight).
  [[nodiscard]] std::vector<DnsCache::Row> hosts() const;
  struct Counts {
    std::size_t names = 0;
    std::size_t queries = 0;
  };
  [[nodiscard]] Counts counts() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::net
