// How many CancelRequests one source address may send: a token bucket per address.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"

namespace sluice::session {

// Every CancelRequest costs a connection, a post to the key's worker and a lookup; a routed one
// also a connection to the server. Without a limit one client sent 14,000 a second. Each
// source address (an IPv6 address by its /64, unix sockets as one source) gets a bucket of
// `per_second` tokens that refills at that rate; a request that finds it empty is dropped
// (the connection closed, nothing routed), as if the key were wrong. Thread-safe (one mutex,
// taken once per CancelRequest); the table is capped, past the cap new sources share one
// bucket.
class CancelLimiter {
 public:
  struct Verdict {
    bool allowed = true;
    // When set: log the refusals now (at most once a second), this many since the last time.
    std::uint64_t report = 0;
  };

  // `per_second` 0: no limit.
  Verdict admit(const sockaddr_storage& peer, socklen_t len, int per_second, core::Micros now);

  [[nodiscard]] std::size_t sources() const;
  static constexpr std::size_t kMaxSources = 4096;

 private:
  struct Bucket {
    double tokens = 0;
    core::Micros last = 0;
  };
  static std::string source_key(const sockaddr_storage& peer, socklen_t len);
  void prune(core::Micros now);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::uint64_t refused_since_report_ = 0;
  core::Micros last_report_ = 0;
};

}  // namespace sluice::session
