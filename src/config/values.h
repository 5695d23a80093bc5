// Text helpers shared by the config readers: trimming, numbers, booleans, seconds, lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace sluice::config {

[[nodiscard]] std::string_view trim(std::string_view s);
[[nodiscard]] std::string to_lower(std::string_view s);
[[nodiscard]] bool iequals(std::string_view a, std::string_view b);

// An integer as C's strtol(s, 0) reads it: optional sign, "0x" hex, leading-zero octal.
// The whole text must be the number.
[[nodiscard]] std::optional<std::int64_t> parse_int(std::string_view s);

// 0/1 (any integer: non-zero is true), on/off, true/false, yes/no; case-insensitive.
[[nodiscard]] std::optional<bool> parse_bool(std::string_view s);

// Non-negative seconds, possibly fractional ("0.5"), to microseconds.
[[nodiscard]] std::optional<core::Micros> parse_seconds(std::string_view s);

// Comma-separated list; items trimmed, empty items dropped.
[[nodiscard]] std::vector<std::string> split_list(std::string_view s);
[[nodiscard]] std::string join_list(const std::vector<std::string>& items);

// Microseconds as seconds the way SHOW CONFIG prints them: "60", "0.5", "0.000001".
[[nodiscard]] std::string format_seconds(core::Micros us);

}  // namespace sluice::config
