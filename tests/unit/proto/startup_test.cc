// Tests for startup.h: first-packet length caps, special requests, versions and parameters.
#include "proto/startup.h"

#include <gtest/gtest.h>

#include <string>

#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/writer.h"

namespace sluice::proto {
namespace {

// Length word (computed) + the given payload.
std::string packet(const std::string& payload) {
  std::string out(4, '\0');
  write_be32(out.data(), static_cast<std::uint32_t>(payload.size() + 4));
  return out + payload;
}

std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  write_be32(s.data(), v);
  return s;
}

StartupPacket parse(const std::string& pkt) {
  std::uint32_t len = 0;
  EXPECT_EQ(startup_length(pkt.data(), pkt.size(), len), StartupStatus::Ok);
  EXPECT_EQ(len, pkt.size());
  return parse_startup(pkt.data(), len);
}

TEST(StartupLength, NeedsFourBytes) {
  const std::string p = be32(8);
  std::uint32_t len = 0;
  for (std::size_t n = 0; n < 4; ++n) {
    EXPECT_EQ(startup_length(p.data(), n, len), StartupStatus::NeedMore) << n;
  }
  EXPECT_EQ(startup_length(p.data(), 4, len), StartupStatus::Ok);
  EXPECT_EQ(len, 8u);
}

TEST(StartupLength, Caps) {
  std::uint32_t len = 0;
  for (std::uint32_t bad : {0u, 4u, 7u, kMaxStartupLen + 1, 0x7fffffffu, 0xffffffffu}) {
    const std::string p = be32(bad);
    EXPECT_EQ(startup_length(p.data(), p.size(), len), StartupStatus::Bad) << bad;
  }
  for (std::uint32_t good : {8u, 16u, kMaxStartupLen}) {
    const std::string p = be32(good);
    EXPECT_EQ(startup_length(p.data(), p.size(), len), StartupStatus::Ok) << good;
    EXPECT_EQ(len, good);
  }
}

TEST(Startup, SslRequestExactSize) {
  auto ok = parse(packet(be32(kSslRequestCode)));
  EXPECT_EQ(ok.kind, StartupKind::SslRequest);
  auto longer = parse(packet(be32(kSslRequestCode) + "x"));
  EXPECT_EQ(longer.kind, StartupKind::Invalid);
  EXPECT_FALSE(longer.error.empty());
}

TEST(Startup, GssEncRequestExactSize) {
  EXPECT_EQ(parse(packet(be32(kGssEncRequestCode))).kind, StartupKind::GssEncRequest);
  auto longer = parse(packet(be32(kGssEncRequestCode) + be32(0)));
  EXPECT_EQ(longer.kind, StartupKind::Invalid);
  EXPECT_FALSE(longer.error.empty());
}

TEST(Startup, CancelRequestExactSize) {
  auto ok = parse(packet(be32(kCancelRequestCode) + be32(1234) + be32(0xdeadbeef)));
  ASSERT_EQ(ok.kind, StartupKind::Cancel);
  EXPECT_EQ(ok.cancel_pid, 1234u);
  EXPECT_EQ(ok.cancel_secret, 0xdeadbeefu);
  auto short_one = parse(packet(be32(kCancelRequestCode) + be32(1234)));
  EXPECT_EQ(short_one.kind, StartupKind::Invalid);
  auto odd = parse(packet(be32(kCancelRequestCode) + be32(1234) + "abc"));
  EXPECT_EQ(odd.kind, StartupKind::Invalid);
  auto long_one = parse(packet(be32(kCancelRequestCode) + be32(1) + be32(2) + be32(3)));
  EXPECT_EQ(long_one.kind, StartupKind::Invalid);
  EXPECT_FALSE(long_one.error.empty());
}

TEST(Startup, Protocol2Rejected) {
  auto p = parse(packet(be32(0x00020000) + std::string("user\0bob\0\0", 10)));
  EXPECT_EQ(p.kind, StartupKind::Invalid);
  EXPECT_NE(p.error.find("unsupported frontend protocol 2.0"), std::string::npos) << p.error;
  auto four = parse(packet(be32(0x00040000) + std::string("\0", 1)));
  EXPECT_EQ(four.kind, StartupKind::Invalid);
  EXPECT_NE(four.error.find("4.0"), std::string::npos) << four.error;
}

TEST(Startup, Protocol32AcceptedAsVersion) {
  auto p = parse(packet(be32(0x00030002) + std::string("user\0bob\0\0", 10)));
  ASSERT_EQ(p.kind, StartupKind::Startup) << p.error;
  EXPECT_EQ(p.version, 0x00030002u);
}

TEST(Startup, ParamsParsedInOrder) {
  auto p = parse(packet(be32(kProtocolV3) +
                        std::string("user\0bob\0database\0db\0options\0-c a=b\0_pq_.x\0\0\0", 45)));
  ASSERT_EQ(p.kind, StartupKind::Startup) << p.error;
  EXPECT_EQ(p.version, kProtocolV3);
  ASSERT_EQ(p.params.size(), 4u);
  EXPECT_EQ(p.params[0], (std::pair<std::string, std::string>{"user", "bob"}));
  EXPECT_EQ(p.params[1], (std::pair<std::string, std::string>{"database", "db"}));
  EXPECT_EQ(p.params[2], (std::pair<std::string, std::string>{"options", "-c a=b"}));
  EXPECT_EQ(p.params[3], (std::pair<std::string, std::string>{"_pq_.x", ""}));
}

TEST(Startup, NoParamsIsStillAPacket) {
  auto p = parse(packet(be32(kProtocolV3) + std::string("\0", 1)));
  EXPECT_EQ(p.kind, StartupKind::Startup);
  EXPECT_TRUE(p.params.empty());
}

TEST(Startup, MalformedParamsRejected) {
  struct Case {
    std::string payload;
    const char* why;
  };
  const Case cases[] = {
      {std::string("user\0bob\0", 9), "not terminated"},  // missing final NUL
      {std::string("user\0bob", 8), "without value"},     // value without NUL
      {std::string("user\0", 5), "without value"},        // value missing
      {std::string("user", 4), "not terminated"},         // key without NUL
      {std::string(""), "not terminated"},                // nothing at all
      {std::string("user\0bob\0\0xyz", 13), "garbage"},   // trailing garbage
      {std::string("user\0bob\0\0\0", 11), "garbage"},    // a second terminator
  };
  for (const auto& c : cases) {
    auto p = parse(packet(be32(kProtocolV3) + c.payload));
    EXPECT_EQ(p.kind, StartupKind::Invalid) << c.why;
    EXPECT_NE(p.error.find(c.why), std::string::npos) << p.error;
    EXPECT_TRUE(p.params.empty() || p.kind == StartupKind::Invalid);
  }
}

TEST(Startup, WriterRoundTrip) {
  std::string out;
  const std::vector<std::pair<std::string, std::string>> params = {
      {"user", "alice"}, {"database", "app"}, {"application_name", "sluice test"}};
  write_startup(out, params);
  auto p = parse(out);
  ASSERT_EQ(p.kind, StartupKind::Startup) << p.error;
  EXPECT_EQ(p.version, kProtocolV3);
  EXPECT_EQ(p.params, params);
}

TEST(Startup, CancelWriterRoundTrip) {
  std::string out;
  write_cancel_request(out, 42, 0x01020304);
  ASSERT_EQ(out.size(), 16u);
  auto p = parse(out);
  ASSERT_EQ(p.kind, StartupKind::Cancel);
  EXPECT_EQ(p.cancel_pid, 42u);
  EXPECT_EQ(p.cancel_secret, 0x01020304u);
}

}  // namespace
}  // namespace sluice::proto
