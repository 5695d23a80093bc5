// Reading one server's connection budget over libpq; only `sluice budget` uses libpq.
#pragma once

#include <string>
#include <vector>

#include "app/budget_model.h"
#include "core/result.h"

namespace sluice::app::budget {

// Logs in with the first of `logins` that works and reads the server's facts. Stops trying when
// the server does not answer at all; the error names every attempt.
[[nodiscard]] core::Result<ServerFacts> read_server(const ServerAddress& address,
                                                    const std::vector<Login>& logins,
                                                    int connect_timeout_s);

// The same for a libpq connection string or URI; `address` is set to the server it reached.
[[nodiscard]] core::Result<ServerFacts> read_server(const std::string& conninfo,
                                                    int connect_timeout_s, ServerAddress& address);

}  // namespace sluice::app::budget
