// Base64 (RFC 4648, standard alphabet, padded) as SCRAM uses it; decoding is strict.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sluice::proto::auth {

[[nodiscard]] std::string base64_encode(std::string_view data);
[[nodiscard]] std::string base64_encode(std::span<const std::uint8_t> data);

// Decodes canonical base64 only: length a multiple of 4, standard alphabet, at most two '='
// and only at the end, zero padding bits. Whitespace, URL-safe letters, missing padding and
// anything else is rejected. So for every accepted `s`, base64_encode(decode(s)) == s.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

}  // namespace sluice::proto::auth
