// The auth_file ("userlist.txt"): one `"user" "secret"` pair per line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace sluice::config {

// Md5 for "md5" + 32 hex digits, Scram for "SCRAM-SHA-256$...", Plain otherwise.
[[nodiscard]] AuthEntry::Kind classify_secret(std::string_view secret);

// Parses auth file text; errors start with "<origin>:<line>: ". A user listed twice keeps the
// position of its first line and the secret of its last.
[[nodiscard]] core::Result<std::vector<AuthEntry>> parse_auth_text(std::string_view text,
                                                                   const std::string& origin);

}  // namespace sluice::config
