// What a server connection carries only while it connects and logs in.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "proto/auth/scram_client.h"

namespace sluice::pool {

struct LoginState {
  std::vector<std::pair<sockaddr_storage, socklen_t>> addrs;  // resolved, tried in order
  std::size_t next_addr = 0;
  std::string unix_path;
  std::vector<std::pair<std::string, std::string>> params;  // ParameterStatus at login
  std::optional<proto::auth::ScramClient> scram;
  core::Micros deadline = 0;
};

}  // namespace sluice::pool
