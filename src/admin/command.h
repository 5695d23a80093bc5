// Console statement syntax (words, quoted values, statement splitting) and reply helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace sluice::admin {

[[nodiscard]] std::string_view trim(std::string_view s);
[[nodiscard]] bool iequals(std::string_view a, std::string_view b);
[[nodiscard]] std::string lower(std::string_view s);

// Splits a simple Query string at ';' outside quotes; empty statements are dropped.
[[nodiscard]] std::vector<std::string_view> split_statements(std::string_view sql);

// Takes the next word (letters, digits, '_', or a "quoted" or 'quoted' token) off `s`.
// Returns an empty view at the end; `s` keeps the rest, trimmed.
[[nodiscard]] std::string_view next_word(std::string_view& s);
// A word as a name: double quotes removed ("My DB" -> My DB); unquoted names as written.
[[nodiscard]] std::string name_of(std::string_view word);
// 'it''s' -> it's; "x" -> x; anything else as written.
[[nodiscard]] std::string unquote(std::string_view v);

// Reply messages. Errors of the console are ERROR 08P01, as PgBouncer's.
void write_error(std::string& out, std::string_view message, const char* sqlstate = "08P01");
void write_notice(std::string& out, std::string_view message, std::string_view detail = {});
void write_complete(std::string& out, std::string_view tag);

// Wall-clock text of a monotonic time (PgBouncer's "2024-01-31 12:00:00 UTC"); empty for 0.
[[nodiscard]] std::string wall_time_text(core::Micros monotonic, core::Micros mono_now);
// Object identity for the ptr/link columns.
[[nodiscard]] std::string ptr_text(const void* p);

}  // namespace sluice::admin
