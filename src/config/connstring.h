// libpq-style "key=value key='quoted value'" strings used by [databases] and [users] entries.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace sluice::config {

using ConnParams = std::vector<std::pair<std::string, std::string>>;

// Splits into pairs in written order; keys are lowercased. Pairs are separated by whitespace and
// may have whitespace around '='. A value in single quotes may contain spaces; inside it `\'` and
// `''` stand for a quote and `\\` for a backslash (other backslashes are kept as written, as
// PgBouncer does). An unquoted value cannot be empty.
[[nodiscard]] core::Result<ConnParams> parse_connstring(std::string_view text);

}  // namespace sluice::config
