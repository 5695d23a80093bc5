// Frame boundaries of typed v3 messages: header decode with length caps, before any allocation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "proto/codes.h"

namespace sluice::proto {

inline std::uint32_t read_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
         std::uint32_t{u[3]};
}
inline std::uint16_t read_be16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>((u[0] << 8) | u[1]);
}
inline void write_be32(char* p, std::uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}
inline void write_be16(char* p, std::uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
}

inline constexpr std::size_t kHeaderLen = 5;  // type byte + int32 length

enum class HeaderStatus : std::uint8_t { Ok, NeedMore, LengthTooSmall, LengthTooLarge };

// No length word above this is ever accepted, whatever the caller's cap: the protocol's lengths
// are signed 32-bit integers, and a decoded header's sizes then fit in 32 bits without wrapping.
inline constexpr std::uint32_t kMaxFrameLen = 0x7FFFFFFFu;

struct Header {
  char type = 0;
  std::uint32_t len = 0;  // as on the wire: includes the 4 length bytes, not the type byte
  [[nodiscard]] std::size_t wire_size() const { return std::size_t{len} + 1; }
  [[nodiscard]] std::size_t body_size() const { return std::size_t{len} - 4; }
  // The same in 32 bits: exact for a header decode_header() accepted (len <= kMaxFrameLen).
  [[nodiscard]] std::uint32_t wire() const { return len + 1; }
  [[nodiscard]] std::uint32_t body() const { return len - 4; }
};

// Decodes the header at the start of [p, p+n). The body may still be incomplete. Ok only for a
// length word of 4 to min(max_len, kMaxFrameLen).
[[nodiscard]] inline HeaderStatus decode_header(const char* p, std::size_t n, std::uint32_t max_len,
                                                Header& out) {
  if (n < kHeaderLen) return HeaderStatus::NeedMore;
  out.type = p[0];
  out.len = read_be32(p + 1);
  if (out.len < 4) return HeaderStatus::LengthTooSmall;
  if (out.len > max_len || out.len > kMaxFrameLen) return HeaderStatus::LengthTooLarge;
  return HeaderStatus::Ok;
}

// What PostgreSQL itself accepts from a client, by message type (its PQ_LARGE_MESSAGE_LIMIT and
// PQ_SMALL_MESSAGE_LIMIT, as length words): Query, FunctionCall, Parse, Bind and CopyData up to
// 1 GiB - 2, every other message of the protocol at most 10000 bytes. A longer message makes
// PostgreSQL close the connection without a word, so sluice refuses it itself, before anything
// is read. A type PostgreSQL does not know gets the large limit (the server refuses the type).
inline constexpr std::uint32_t kMaxFrontendLarge = (1u << 30) - 2;
inline constexpr std::uint32_t kMaxFrontendSmall = 10000;

namespace detail {
constexpr std::array<std::uint32_t, 256> frontend_lengths() {
  std::array<std::uint32_t, 256> t{};
  for (auto& v : t)
    v = kMaxFrontendLarge;
  for (char c : {fe::kDescribe, fe::kExecute, fe::kClose, fe::kSync, fe::kFlush, fe::kCopyDone,
                 fe::kCopyFail, fe::kTerminate}) {
    t[static_cast<unsigned char>(c)] = kMaxFrontendSmall;
  }
  return t;
}
inline constexpr std::array<std::uint32_t, 256> kFrontendLengths = frontend_lengths();
}  // namespace detail

// The largest length word a client may give a message of this type.
[[nodiscard]] inline std::uint32_t frontend_max_len(char type) {
  return detail::kFrontendLengths[static_cast<unsigned char>(type)];
}

// A client message's header after login: `max_packet` (max_packet_size) and PostgreSQL's limit
// for the type, whichever is lower.
[[nodiscard]] inline HeaderStatus decode_frontend_header(const char* p, std::size_t n,
                                                         std::uint32_t max_packet, Header& out) {
  HeaderStatus st = decode_header(p, n, max_packet, out);
  if (st == HeaderStatus::Ok && out.len > frontend_max_len(out.type)) {
    return HeaderStatus::LengthTooLarge;
  }
  return st;
}

// Lengths a server may give a message after login (a protocol violation otherwise, the server's
// fault). Rows, copy data, function results and error/notice texts may be large, up to what
// Postgres can allocate (1 GiB); described structures at most 1 MiB; the rest has a fixed length.
inline constexpr std::uint32_t kMaxBackendBulk = 1u << 30;
inline constexpr std::uint32_t kMaxBackendStructured = 1u << 20;

namespace detail {
struct LenRange {
  std::uint32_t min = 0, max = 0;  // max 0: not a message a server sends after login
};
constexpr std::array<LenRange, 256> backend_lengths() {
  std::array<LenRange, 256> t{};
  auto set = [&t](char c, std::uint32_t lo, std::uint32_t hi) {
    t[static_cast<unsigned char>(c)] = {lo, hi};
  };
  for (char c : {be::kParseComplete, be::kBindComplete, be::kCloseComplete, be::kCopyDone,
                 be::kEmptyQueryResponse, be::kNoData, be::kPortalSuspended}) {
    set(c, 4, 4);
  }
  set(be::kReadyForQuery, 5, 5);
  for (char c : {be::kDataRow, be::kCopyData, be::kFunctionCallResponse, be::kErrorResponse,
                 be::kNoticeResponse}) {
    set(c, 4, kMaxBackendBulk);
  }
  for (char c : {be::kCommandComplete, be::kCopyInResponse, be::kCopyOutResponse,
                 be::kCopyBothResponse, be::kNotificationResponse, be::kParameterDescription,
                 be::kParameterStatus, be::kRowDescription}) {
    set(c, 4, kMaxBackendStructured);
  }
  return t;
}
inline constexpr std::array<LenRange, 256> kBackendLengths = backend_lengths();
}  // namespace detail

[[nodiscard]] inline bool is_tx_status(char c) {
  return c == 'I' || c == 'T' || c == 'E';
}

// True if a server may send a message of this type and length (`len` as on the wire) once
// logged in.
[[nodiscard]] inline bool backend_header_ok(char type, std::uint32_t len) {
  const detail::LenRange& r = detail::kBackendLengths[static_cast<unsigned char>(type)];
  return r.max != 0 && len >= r.min && len <= r.max;
}

}  // namespace sluice::proto
