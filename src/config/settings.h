// The table of [pgbouncer] settings: names, types, bounds, run-time changeability.
#pragma once

#include <cstdint>
#include <string_view>

#include "config/config.h"

namespace sluice::config {

enum class SettingStatus : std::uint8_t { Ok, Unknown, Invalid };

// Sets the [pgbouncer] setting `name` (lowercase) from its text `value` in cfg.settings, or in
// cfg.unsupported_values for settings sluice does not act on yet. A value that turns on an
// unsupported feature adds "<location>unsupported setting ignored: <name>" to cfg.warnings.
// On Unknown or Invalid, cfg is unchanged.
[[nodiscard]] SettingStatus apply_setting(Config& cfg, std::string_view name,
                                          std::string_view value, std::string_view location);

// Whether `name` (lowercase) is a [pgbouncer] setting, supported or not.
[[nodiscard]] bool is_known_setting(std::string_view name);

// False for names that are unknown or may not change while running (listen_port, ...).
[[nodiscard]] bool is_changeable(std::string_view name);

}  // namespace sluice::config
