// What name lookups answered and until when the answer holds (PgBouncer's dns_max_ttl and
// dns_nxdomain_ttl); pure: no sockets, no threads, time passed in.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "net/socket.h"

namespace sluice::net {

// The outcome of one name lookup. Addresses carry port 0; the caller sets its own.
struct DnsAnswer {
  enum class Status : std::uint8_t { Ok, NotFound, Failed };
  Status status = Status::Failed;
  std::vector<Address> addrs;  // Ok only, never empty then
  std::string error;           // NotFound / Failed: why, for the log
};

class DnsCache {
 public:
  struct Ttls {
    core::Micros found = 15 * core::kMicrosPerSecond;      // dns_max_ttl
    core::Micros not_found = 15 * core::kMicrosPerSecond;  // dns_nxdomain_ttl
  };

  // A fresh answer for `host` at `now`, or nothing (unknown or expired: look it up). Successive
  // hits on an answer with several addresses start at the next one (round robin).
  [[nodiscard]] std::optional<DnsAnswer> find(const std::string& host, core::Micros now);

  // Records a lookup's answer. The answer's own TTL is not used: an address list holds
  // ttls.found, any failure ttls.not_found (as PgBouncer does); 0 keeps nothing.
  void store(const std::string& host, DnsAnswer answer, core::Micros now, const Ttls& ttls);

  // SHOW DNS_HOSTS: every name with seconds until its next lookup (0 when due) and its addresses.
  struct Row {
    std::string host;
    std::int64_t ttl_seconds = 0;
    std::string addrs;  // "10.0.0.1,10.0.0.2" (empty when the name did not resolve)
  };
  [[nodiscard]] std::vector<Row> rows(core::Micros now) const;

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  void clear() { entries_.clear(); }

  // Names expired this long ago are forgotten at the next store (the list stays bounded by the
  // names sluice still connects to).
  static constexpr core::Micros kForgetAfter = 3600 * core::kMicrosPerSecond;

 private:
  struct Entry {
    DnsAnswer answer;
    core::Micros expires = 0;
    std::size_t next = 0;  // round-robin start
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace sluice::net
