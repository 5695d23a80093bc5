// CancelLimiter: token buckets per source address.
#include "session/cancel_limit.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace sluice::session {

namespace {
// A family tag and the address bytes (built in place: GCC 12 at -O3 warns about
// operator+ of two strings here, -Wrestrict, a known false positive).
std::string tagged(char tag, const void* bytes, std::size_t n) {
  std::string k(1 + n, tag);
  std::memcpy(k.data() + 1, bytes, n);
  return k;
}
}  // namespace

std::string CancelLimiter::source_key(const sockaddr_storage& peer, socklen_t len) {
  if (peer.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(peer);
    return tagged('4', &a.sin_addr, 4);
  }
  if (peer.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(peer);
    const auto* b = reinterpret_cast<const unsigned char*>(&a.sin6_addr);
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, 12) == 0) {  // IPv4-mapped: the IPv4 address
      return tagged('4', b + 12, 4);
    }
    // One site gets a /64 and can use all of it: one source.
    return tagged('6', b, 8);
  }
  return "u";  // unix socket (or unknown): one source
}

void CancelLimiter::prune(core::Micros now) {
  // A bucket untouched for a second has refilled completely: it carries no information.
  std::erase_if(buckets_,
                [&](const auto& kv) { return now - kv.second.last >= core::kMicrosPerSecond; });
}

CancelLimiter::Verdict CancelLimiter::admit(const sockaddr_storage& peer, socklen_t len,
                                            int per_second, core::Micros now) {
  Verdict v;
  if (per_second <= 0) return v;
  std::string key = source_key(peer, len);
  std::lock_guard<std::mutex> g(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxSources) prune(now);
    if (buckets_.size() >= kMaxSources) key.assign(1, '*');  // still full: one shared bucket
    it = buckets_.find(key);
    if (it == buckets_.end()) {
      it = buckets_.emplace(key, Bucket{static_cast<double>(per_second), now}).first;
    }
  }
  Bucket& b = it->second;
  double cap = per_second;
  double elapsed = static_cast<double>(std::max<core::Micros>(0, now - b.last));
  b.tokens = std::min(cap, b.tokens + elapsed * cap / static_cast<double>(core::kMicrosPerSecond));
  b.last = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
  } else {
    v.allowed = false;
    ++refused_since_report_;
  }
  if (refused_since_report_ > 0 && now - last_report_ >= core::kMicrosPerSecond) {
    v.report = refused_since_report_;
    refused_since_report_ = 0;
    last_report_ = now;
  }
  return v;
}

std::size_t CancelLimiter::sources() const {
  std::lock_guard<std::mutex> g(mu_);
  return buckets_.size();
}

}  // namespace sluice::session
