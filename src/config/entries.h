// [databases] and [users] entries: a name and a connection-string-like list of options.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace sluice::config {

// Database names clients cannot use for a pool: the admin console's.
[[nodiscard]] bool is_reserved_database(std::string_view name);

// Parses `name = <options>` from [databases]. Errors name the database and the option;
// warnings (options parsed but not acted on yet) are appended to `warnings`.
[[nodiscard]] core::Result<DatabaseConfig> parse_database_entry(std::string_view name,
                                                                std::string_view options,
                                                                std::vector<std::string>& warnings);

// Parses `name = <options>` from [users]. Errors name the user and the option.
[[nodiscard]] core::Result<UserConfig> parse_user_entry(std::string_view name,
                                                        std::string_view options);

}  // namespace sluice::config
