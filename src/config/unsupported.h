// The one list of PgBouncer settings sluice accepts but does not act on yet.
#pragma once

#include <span>
#include <string_view>

namespace sluice::config {

// A [pgbouncer] setting sluice knows but does not implement. Setting it to a value other than
// a neutral one adds "unsupported setting ignored: <name>" to Config::warnings. Supporting a
// setting means deleting its line here (and giving it a field in Settings if it has none).
struct UnsupportedSetting {
  std::string_view name;
  // Comma-separated values that change nothing in sluice (compared case-insensitively, numbers
  // by value). The first one is what sluice effectively does; SHOW CONFIG prints it as the
  // default for settings that have no field in Settings.
  std::string_view neutral;
  bool changeable;  // PgBouncer lets it change on reload / SET
};

[[nodiscard]] std::span<const UnsupportedSetting> unsupported_settings();
[[nodiscard]] const UnsupportedSetting* find_unsupported(std::string_view name);
[[nodiscard]] std::string_view neutral_default(const UnsupportedSetting& s);
[[nodiscard]] bool changes_behaviour(const UnsupportedSetting& s, std::string_view value);

// [databases] parameters that are parsed and stored but not acted on yet.
[[nodiscard]] bool is_unsupported_database_key(std::string_view key);

}  // namespace sluice::config
