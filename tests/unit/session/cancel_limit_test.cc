// CancelLimiter: a token bucket per source address, refilled over time, capped in size.
#include "session/cancel_limit.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

namespace sluice::session {
namespace {

constexpr core::Micros kSec = core::kMicrosPerSecond;

sockaddr_storage v4(const char* ip, int port = 1234) {
  sockaddr_storage ss{};
  auto& a = reinterpret_cast<sockaddr_in&>(ss);
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip, &a.sin_addr);
  return ss;
}

sockaddr_storage v6(const char* ip) {
  sockaddr_storage ss{};
  auto& a = reinterpret_cast<sockaddr_in6&>(ss);
  a.sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return ss;
}

int admitted(CancelLimiter& l, const sockaddr_storage& ss, int n, int rate, core::Micros now) {
  int ok = 0;
  for (int i = 0; i < n; ++i)
    ok += l.admit(ss, sizeof ss, rate, now).allowed ? 1 : 0;
  return ok;
}

TEST(CancelLimiter, BurstOfOneSecondThenTheRate) {
  CancelLimiter l;
  core::Micros t = 1000 * kSec;
  EXPECT_EQ(admitted(l, v4("10.0.0.1"), 50, 10, t), 10);
  EXPECT_EQ(admitted(l, v4("10.0.0.1"), 50, 10, t + kSec / 2), 5);    // half a second: 5 more
  EXPECT_EQ(admitted(l, v4("10.0.0.1"), 50, 10, t + 10 * kSec), 10);  // refilled, capped
}

TEST(CancelLimiter, EachSourceHasItsOwnBucketAndPortsDoNotMatter) {
  CancelLimiter l;
  core::Micros t = 1000 * kSec;
  EXPECT_EQ(admitted(l, v4("10.0.0.1", 1), 20, 5, t), 5);
  EXPECT_EQ(admitted(l, v4("10.0.0.1", 2), 20, 5, t), 0);  // same address, another port
  EXPECT_EQ(admitted(l, v4("10.0.0.2"), 20, 5, t), 5);
  // IPv6: one /64 is one source; an IPv4-mapped address is its IPv4 address.
  EXPECT_EQ(admitted(l, v6("2001:db8:1:2::1"), 3, 5, t), 3);
  EXPECT_EQ(admitted(l, v6("2001:db8:1:2:ffff::9"), 20, 5, t), 2);
  EXPECT_EQ(admitted(l, v6("2001:db8:1:3::1"), 20, 5, t), 5);
  EXPECT_EQ(admitted(l, v6("::ffff:10.0.0.2"), 20, 5, t), 0);
}

TEST(CancelLimiter, ZeroMeansNoLimit) {
  CancelLimiter l;
  EXPECT_EQ(admitted(l, v4("10.0.0.1"), 1000, 0, kSec), 1000);
  EXPECT_EQ(l.sources(), 0u);
}

TEST(CancelLimiter, RefusalsAreReportedAtMostOnceASecond) {
  CancelLimiter l;
  core::Micros t = 1000 * kSec;
  std::uint64_t reported = 0;
  int reports = 0;
  for (int i = 0; i < 100; ++i) {
    auto v = l.admit(v4("10.0.0.1"), sizeof(sockaddr_storage), 1, t + i * 1000);  // 100 in 0.1 s
    if (v.report > 0) {
      ++reports;
      reported += v.report;
    }
  }
  EXPECT_EQ(reports, 1);
  auto v = l.admit(v4("10.0.0.1"), sizeof(sockaddr_storage), 1, t + 2 * kSec);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(reported + v.report, 99u);  // every refusal is counted once
}

TEST(CancelLimiter, TableIsCappedAndPrunedNewSourcesShareOneBucket) {
  CancelLimiter l;
  core::Micros t = 1000 * kSec;
  char ip[32];
  for (std::size_t i = 0; i < CancelLimiter::kMaxSources; ++i) {
    std::snprintf(ip, sizeof ip, "10.%zu.%zu.1", (i >> 8) & 0xff, i & 0xff);
    ASSERT_TRUE(l.admit(v4(ip), sizeof(sockaddr_storage), 2, t).allowed);
  }
  EXPECT_EQ(l.sources(), CancelLimiter::kMaxSources);
  // Full of live buckets: newcomers share one.
  EXPECT_EQ(admitted(l, v4("192.168.0.1"), 5, 2, t), 2);
  EXPECT_EQ(admitted(l, v4("192.168.0.2"), 5, 2, t), 0);
  // A second later every bucket is full again: pruned, newcomers get their own.
  EXPECT_EQ(admitted(l, v4("192.168.0.3"), 5, 2, t + 2 * kSec), 2);
  EXPECT_LT(l.sources(), 10u);
}

}  // namespace
}  // namespace sluice::session
