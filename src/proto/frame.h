// Frame boundaries of typed v3 messages: header decode with length caps, before any allocation.
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace sluice::proto
