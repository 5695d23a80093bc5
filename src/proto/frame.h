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

struct Header {
  char type = 0;
  std::uint32_t len = 0;  // as on the wire: includes the 4 length bytes, not the type byte
  [[nodiscard]] std::size_t wire_size() const { return std::size_t{len} + 1; }
  [[nodiscard]] std::size_t body_size() const { return std::size_t{len} - 4; }
};

// Decodes the header at the start of [p, p+n). The body may still be incomplete.
[[nodiscard]] inline HeaderStatus decode_header(const char* p, std::size_t n, std::uint32_t max_len,
                                                Header& out) {
  if (n < kHeaderLen) return HeaderStatus::NeedMore;
  out.type = p[0];
  out.len = read_be32(p + 1);
  if (out.len < 4) return HeaderStatus::LengthTooSmall;
  if (out.len > max_len) return HeaderStatus::LengthTooLarge;
  return HeaderStatus::Ok;
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
