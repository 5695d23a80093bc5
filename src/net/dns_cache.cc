// DnsCache: expiry, round robin over the addresses of a name, the SHOW DNS_HOSTS rows.
#include "net/dns_cache.h"

#include <algorithm>

#include "net/socket.h"

namespace sluice::net {

std::optional<DnsAnswer> DnsCache::find(const std::string& host, core::Micros now) {
  auto it = entries_.find(host);
  if (it == entries_.end() || now >= it->second.expires) return std::nullopt;
  Entry& e = it->second;
  DnsAnswer out = e.answer;
  if (out.addrs.size() > 1) {
    std::size_t start = e.next % out.addrs.size();
    std::rotate(out.addrs.begin(), out.addrs.begin() + static_cast<std::ptrdiff_t>(start),
                out.addrs.end());
    e.next = start + 1;
  }
  return out;
}

void DnsCache::store(const std::string& host, DnsAnswer answer, core::Micros now,
                     const Ttls& ttls) {
  std::erase_if(entries_, [&](const auto& kv) { return now - kv.second.expires > kForgetAfter; });
  if (answer.status == DnsAnswer::Status::Ok && answer.addrs.empty()) {
    answer.status = DnsAnswer::Status::NotFound;
    answer.error = "no addresses";
  }
  core::Micros ttl = answer.status == DnsAnswer::Status::Ok ? ttls.found : ttls.not_found;
  Entry& e = entries_[host];
  e.answer = std::move(answer);
  e.expires = now + std::max<core::Micros>(ttl, 0);
  e.next = 0;
}

std::vector<DnsCache::Row> DnsCache::rows(core::Micros now) const {
  std::vector<Row> out;
  out.reserve(entries_.size());
  for (const auto& [host, e] : entries_) {
    Row r;
    r.host = host;
    r.ttl_seconds = e.expires > now ? (e.expires - now) / core::kMicrosPerSecond : 0;
    for (const auto& a : e.answer.addrs) {
      if (!r.addrs.empty()) r.addrs += ',';
      r.addrs += format_addr_host(a.first);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace sluice::net
