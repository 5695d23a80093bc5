// The untyped first packet: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::proto {

enum class StartupKind : std::uint8_t { Startup, SslRequest, GssEncRequest, Cancel, Invalid };

struct StartupPacket {
  StartupKind kind = StartupKind::Invalid;
  std::uint32_t version = 0;                                // for Startup: major << 16 | minor
  std::vector<std::pair<std::string, std::string>> params;  // Startup only, in wire order
  std::uint32_t cancel_pid = 0;                             // Cancel only
  std::uint32_t cancel_secret = 0;
  std::string error;  // Invalid: why
};

enum class StartupStatus : std::uint8_t { Ok, NeedMore, Bad };

// Length of the first packet once 4 bytes are there; Bad if outside [8, kMaxStartupLen].
[[nodiscard]] StartupStatus startup_length(const char* p, std::size_t n, std::uint32_t& len);

// Parses a complete first packet of exactly `len` bytes (including the length word).
[[nodiscard]] StartupPacket parse_startup(const char* p, std::uint32_t len);

}  // namespace sluice::proto
