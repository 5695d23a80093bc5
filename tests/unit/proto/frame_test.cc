// Tests for frame.h: header decode at every split point and length caps before any body.
#include "proto/frame.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::proto {
namespace {

std::string frame(char type, const std::string& body) {
  std::string out(1, type);
  char len[4];
  write_be32(len, static_cast<std::uint32_t>(body.size() + 4));
  out.append(len, 4);
  out += body;
  return out;
}

enum class Step { NeedMore, Complete, Bad };

// What a reader loop does with the first n bytes: header, then wait for the whole frame.
Step step(const std::string& buf, std::size_t n, std::uint32_t max_len, Header& h) {
  switch (decode_header(buf.data(), n, max_len, h)) {
    case HeaderStatus::NeedMore:
      return Step::NeedMore;
    case HeaderStatus::Ok:
      return n >= h.wire_size() ? Step::Complete : Step::NeedMore;
    default:
      return Step::Bad;
  }
}

TEST(Frame, BigEndianHelpers) {
  char b[4];
  write_be32(b, 0x01020304);
  EXPECT_EQ(std::string(b, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(read_be32(b), 0x01020304u);
  write_be32(b, 0xfffffffe);
  EXPECT_EQ(read_be32(b), 0xfffffffeu);
  write_be16(b, 0xbeef);
  EXPECT_EQ(read_be16(b), 0xbeef);
  EXPECT_EQ(static_cast<unsigned char>(b[0]), 0xbe);
}

TEST(Frame, EverySplitPointNeedsMoreUntilComplete) {
  const std::string f = frame('Q', std::string("select 1", 9));
  for (std::size_t n = 0; n <= f.size(); ++n) {
    Header h;
    const Step s = step(f, n, 1 << 20, h);
    if (n < f.size()) {
      EXPECT_EQ(s, Step::NeedMore) << n;
    } else {
      EXPECT_EQ(s, Step::Complete);
    }
    if (n < kHeaderLen) {
      EXPECT_EQ(decode_header(f.data(), n, 1 << 20, h), HeaderStatus::NeedMore) << n;
    } else {
      EXPECT_EQ(h.type, 'Q');
      EXPECT_EQ(h.len, 13u);
      EXPECT_EQ(h.body_size(), 9u);
      EXPECT_EQ(h.wire_size(), f.size());
    }
  }
}

TEST(Frame, EmptyBodyIsCompleteWithHeaderOnly) {
  const std::string f = frame('S', "");
  Header h;
  EXPECT_EQ(step(f, 4, 100, h), Step::NeedMore);
  EXPECT_EQ(step(f, 5, 100, h), Step::Complete);
  EXPECT_EQ(h.body_size(), 0u);
}

TEST(Frame, TwoFramesBackToBack) {
  const std::string buf = frame('Q', "a") + frame('X', "");
  Header h;
  ASSERT_EQ(decode_header(buf.data(), buf.size(), 100, h), HeaderStatus::Ok);
  EXPECT_EQ(h.type, 'Q');
  const std::size_t first = h.wire_size();
  ASSERT_EQ(decode_header(buf.data() + first, buf.size() - first, 100, h), HeaderStatus::Ok);
  EXPECT_EQ(h.type, 'X');
  EXPECT_EQ(first + h.wire_size(), buf.size());
}

TEST(Frame, LengthBelowFourRejectedFromTheHeaderAlone) {
  for (std::uint32_t len : {0u, 1u, 2u, 3u}) {
    std::string hdr(1, 'Q');
    char b[4];
    write_be32(b, len);
    hdr.append(b, 4);  // exactly 5 bytes: nothing after the header
    Header h;
    EXPECT_EQ(decode_header(hdr.data(), hdr.size(), 1 << 20, h), HeaderStatus::LengthTooSmall)
        << len;
  }
}

TEST(Frame, LengthAboveCapRejectedFromTheHeaderAlone) {
  const std::uint32_t cap = 1000;
  for (std::uint32_t len : {cap + 1, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
    std::string hdr(1, 'D');
    char b[4];
    write_be32(b, len);
    hdr.append(b, 4);
    Header h;
    EXPECT_EQ(decode_header(hdr.data(), hdr.size(), cap, h), HeaderStatus::LengthTooLarge) << len;
  }
  std::string at_cap(1, 'D');
  char b[4];
  write_be32(b, cap);
  at_cap.append(b, 4);
  Header h;
  EXPECT_EQ(decode_header(at_cap.data(), at_cap.size(), cap, h), HeaderStatus::Ok);
  EXPECT_EQ(h.body_size(), cap - 4);
}

// A length word is a signed 32-bit integer: nothing above 0x7FFFFFFF is accepted whatever the
// caller's cap (max_packet_size 4294967295 once let 0xFFFFFFFF through, and its wire size
// wrapped to 0 in 32 bits), so an accepted header's sizes are exact in 32 bits.
TEST(Frame, LengthAboveInt32MaxIsRefusedWhateverTheCap) {
  char b[5] = {'d'};
  Header h;
  for (std::uint32_t len : {0xffffffffu, 0x80000000u}) {
    write_be32(b + 1, len);
    EXPECT_EQ(decode_header(b, 5, 0xffffffffu, h), HeaderStatus::LengthTooLarge) << len;
  }
  write_be32(b + 1, kMaxFrameLen);
  ASSERT_EQ(decode_header(b, 5, 0xffffffffu, h), HeaderStatus::Ok);
  EXPECT_EQ(h.wire(), 0x80000000u);
  EXPECT_EQ(h.wire_size(), std::size_t{0x80000000u});
  EXPECT_EQ(h.body(), kMaxFrameLen - 4);
}

// PostgreSQL's own limits per client message type (PQ_LARGE/SMALL_MESSAGE_LIMIT).
TEST(Frame, FrontendLimitsArePostgres) {
  char b[5];
  Header h;
  auto status = [&](char type, std::uint32_t len, std::uint32_t max_packet) {
    b[0] = type;
    write_be32(b + 1, len);
    return decode_frontend_header(b, 5, max_packet, h);
  };
  for (char t : {'Q', 'P', 'B', 'F', 'd'}) {
    EXPECT_EQ(status(t, (1u << 30) - 2, 0x7fffffffu), HeaderStatus::Ok) << t;
    EXPECT_EQ(status(t, (1u << 30) - 1, 0x7fffffffu), HeaderStatus::LengthTooLarge) << t;
    EXPECT_EQ(status(t, 1000, 999), HeaderStatus::LengthTooLarge) << "max_packet_size " << t;
  }
  for (char t : {'D', 'E', 'C', 'S', 'H', 'c', 'f', 'X'}) {
    EXPECT_EQ(status(t, 10000, 0x7fffffffu), HeaderStatus::Ok) << t;
    EXPECT_EQ(status(t, 10001, 0x7fffffffu), HeaderStatus::LengthTooLarge) << t;
  }
  EXPECT_EQ(status('S', 3, 0x7fffffffu), HeaderStatus::LengthTooSmall);
  EXPECT_EQ(status('\x01', 20000, 0x7fffffffu), HeaderStatus::Ok) << "unknown: the server's call";
}

TEST(Frame, HighBitTypeByte) {
  std::string f = frame('\xff', "x");
  Header h;
  ASSERT_EQ(decode_header(f.data(), f.size(), 100, h), HeaderStatus::Ok);
  EXPECT_EQ(h.type, '\xff');
}

TEST(Frame, BackendHeadersAfterLogin) {
  // Fixed lengths.
  EXPECT_TRUE(backend_header_ok('1', 4));
  EXPECT_FALSE(backend_header_ok('1', 5));
  EXPECT_TRUE(backend_header_ok('Z', 5));
  EXPECT_FALSE(backend_header_ok('Z', 4));
  EXPECT_FALSE(backend_header_ok('Z', 6));
  // Bulk messages up to 1 GiB, structured ones up to 1 MiB.
  EXPECT_TRUE(backend_header_ok('D', kMaxBackendBulk));
  EXPECT_FALSE(backend_header_ok('D', kMaxBackendBulk + 1));
  EXPECT_FALSE(backend_header_ok('D', 0x7fffffffu));
  EXPECT_TRUE(backend_header_ok('E', 1u << 24));
  EXPECT_TRUE(backend_header_ok('T', kMaxBackendStructured));
  EXPECT_FALSE(backend_header_ok('T', kMaxBackendStructured + 1));
  // Login-only and unknown types.
  for (char t : {'R', 'K', 'v', 'X', 'Y', '\0', 'Q'}) {
    EXPECT_FALSE(backend_header_ok(t, 4)) << t;
    EXPECT_FALSE(backend_header_ok(t, 8)) << t;
  }
  EXPECT_TRUE(is_tx_status('I') && is_tx_status('T') && is_tx_status('E'));
  EXPECT_FALSE(is_tx_status('X'));
}

}  // namespace
}  // namespace sluice::proto
