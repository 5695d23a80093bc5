// Tests for net::DnsCache: dns_max_ttl and dns_nxdomain_ttl expiry, round robin, SHOW rows.
#include "net/dns_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::net {
namespace {

constexpr core::Micros kSec = core::kMicrosPerSecond;

DnsAnswer found(std::initializer_list<const char*> ips) {
  DnsAnswer a;
  a.status = DnsAnswer::Status::Ok;
  for (const char* ip : ips)
    a.addrs.push_back(*numeric_address(ip, 0));
  return a;
}

DnsAnswer not_found() {
  DnsAnswer a;
  a.status = DnsAnswer::Status::NotFound;
  a.error = "Domain name not found";
  return a;
}

std::string first_ip(const DnsAnswer& a) {
  return format_addr_host(a.addrs.at(0).first);
}

DnsCache::Ttls ttls(int found_s, int nx_s) {
  return DnsCache::Ttls{found_s * kSec, nx_s * kSec};
}

TEST(DnsCache, UnknownNameIsAMiss) {
  DnsCache c;
  EXPECT_FALSE(c.find("db.example", 100 * kSec));
}

TEST(DnsCache, AnswerHoldsForDnsMaxTtlThenExpires) {
  DnsCache c;
  c.store("db.example", found({"10.0.0.1"}), 100 * kSec, ttls(15, 5));
  auto hit = c.find("db.example", 114 * kSec);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->status, DnsAnswer::Status::Ok);
  EXPECT_EQ(first_ip(*hit), "10.0.0.1");
  EXPECT_FALSE(c.find("db.example", 115 * kSec));  // expired: look it up again
  EXPECT_EQ(c.size(), 1u);                         // still listed (SHOW DNS_HOSTS)
}

TEST(DnsCache, FailureHoldsForDnsNxdomainTtl) {
  DnsCache c;
  c.store("ghost.example", not_found(), 100 * kSec, ttls(15, 5));
  auto hit = c.find("ghost.example", 104 * kSec);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->status, DnsAnswer::Status::NotFound);
  EXPECT_EQ(hit->error, "Domain name not found");
  EXPECT_FALSE(c.find("ghost.example", 105 * kSec));

  DnsAnswer timeout;
  timeout.status = DnsAnswer::Status::Failed;
  c.store("slow.example", timeout, 100 * kSec, ttls(15, 5));
  EXPECT_TRUE(c.find("slow.example", 104 * kSec));  // any failure, as PgBouncer
}

TEST(DnsCache, ZeroTtlKeepsNothing) {
  DnsCache c;
  c.store("db.example", found({"10.0.0.1"}), 100 * kSec, ttls(0, 0));
  EXPECT_FALSE(c.find("db.example", 100 * kSec));
  c.store("ghost.example", not_found(), 100 * kSec, ttls(0, 0));
  EXPECT_FALSE(c.find("ghost.example", 100 * kSec));
}

TEST(DnsCache, OkWithoutAddressesCountsAsNotFound) {
  DnsCache c;
  DnsAnswer empty;
  empty.status = DnsAnswer::Status::Ok;
  c.store("db.example", empty, 100 * kSec, ttls(15, 5));
  auto hit = c.find("db.example", 101 * kSec);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->status, DnsAnswer::Status::NotFound);
  EXPECT_FALSE(c.find("db.example", 105 * kSec));  // the failure TTL applies
}

TEST(DnsCache, SeveralAddressesAreHandedOutRoundRobin) {
  DnsCache c;
  c.store("db.example", found({"10.0.0.1", "10.0.0.2", "10.0.0.3"}), 100 * kSec, ttls(15, 5));
  std::vector<std::string> firsts;
  for (int i = 0; i < 4; ++i) {
    auto hit = c.find("db.example", 101 * kSec);
    ASSERT_TRUE(hit);
    ASSERT_EQ(hit->addrs.size(), 3u);  // all of them, to fall back on
    firsts.push_back(first_ip(*hit));
  }
  EXPECT_EQ(firsts, (std::vector<std::string>{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1"}));
}

TEST(DnsCache, NewAnswerReplacesTheOld) {
  DnsCache c;
  c.store("db.example", found({"10.0.0.1"}), 100 * kSec, ttls(15, 5));
  c.store("db.example", found({"10.0.0.9"}), 120 * kSec, ttls(15, 5));
  auto hit = c.find("db.example", 121 * kSec);
  ASSERT_TRUE(hit);
  EXPECT_EQ(first_ip(*hit), "10.0.0.9");
  EXPECT_EQ(c.size(), 1u);
}

TEST(DnsCache, RowsShowSecondsUntilTheNextLookupAndTheAddresses) {
  DnsCache c;
  c.store("a.example", found({"10.0.0.1", "10.0.0.2"}), 100 * kSec, ttls(15, 5));
  c.store("b.example", not_found(), 100 * kSec, ttls(15, 5));
  auto rows = c.rows(103 * kSec + kSec / 2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].host, "a.example");
  EXPECT_EQ(rows[0].ttl_seconds, 11);
  EXPECT_EQ(rows[0].addrs, "10.0.0.1,10.0.0.2");
  EXPECT_EQ(rows[1].host, "b.example");
  EXPECT_EQ(rows[1].ttl_seconds, 1);
  EXPECT_EQ(rows[1].addrs, "");
  EXPECT_EQ(c.rows(200 * kSec)[0].ttl_seconds, 0);  // due: 0, never negative
}

TEST(DnsCache, NamesExpiredLongAgoAreForgotten) {
  DnsCache c;
  c.store("old.example", found({"10.0.0.1"}), 100 * kSec, ttls(15, 5));
  c.store("new.example", found({"10.0.0.2"}), 115 * kSec + DnsCache::kForgetAfter + 1, ttls(15, 5));
  auto rows = c.rows(115 * kSec + DnsCache::kForgetAfter + 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].host, "new.example");
}

TEST(NumericAddress, LiteralsNeedNoLookup) {
  auto v4 = numeric_address("127.0.0.1", 5432);
  ASSERT_TRUE(v4);
  EXPECT_EQ(format_peer(v4->first, v4->second), "127.0.0.1:5432");
  auto v6 = numeric_address("::1", 6432);
  ASSERT_TRUE(v6);
  EXPECT_EQ(format_peer(v6->first, v6->second), "[::1]:6432");
  auto bracketed = numeric_address("[::1]", 1);
  ASSERT_TRUE(bracketed);
  EXPECT_EQ(bracketed->first.ss_family, AF_INET6);
  EXPECT_FALSE(numeric_address("localhost", 5432));
  EXPECT_FALSE(numeric_address("db.example", 5432));
  EXPECT_FALSE(numeric_address("", 5432));
  EXPECT_FALSE(numeric_address("10.0.0.1.example", 5432));
}

}  // namespace
}  // namespace sluice::net
