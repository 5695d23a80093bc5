// The `options` startup parameter: command-line switches for the server, of which a pooler
// can keep only settings ("-c name=value", "-cname=value", "--name=value").
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::proto {

// Splits `options` into (name, value) pairs in written order. Words are separated by spaces or
// tabs; a backslash makes the next character part of the word (PostgreSQL's escaping). Dashes in
// a name become underscores, as the server reads them. False, with `out` unspecified, on any
// other switch or on a pair without a name.
[[nodiscard]] bool parse_startup_options(std::string_view opts,
                                         std::vector<std::pair<std::string, std::string>>& out);

}  // namespace sluice::proto
