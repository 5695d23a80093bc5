// /healthz and /readyz: is the process turning, and can it serve every database now.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "config/config.h"
#include "core/clock.h"
#include "session/session_worker.h"

namespace sluice::admin {

class Health {
 public:
  struct Answer {
    bool ok = false;
    std::string text;  // one line per check, for people and logs
  };

  Health(session::Shared& shared, std::function<config::ConfigPtr()> config)
      : shared_(shared), config_(std::move(config)) {}

  // Alive: every worker's loop has ticked within the last 2 seconds.
  [[nodiscard]] Answer live();
  // Ready: listening (not shutting down, not globally paused) and every configured database
  // either disabled (DISABLE), served by a logged-in server connection, or reachable (a TCP or
  // unix connect within 500 ms, cached 2 s) with no failed login since the last success.
  [[nodiscard]] Answer ready();

 private:
  bool reachable(const std::vector<std::string>& hosts, int port, const std::string& unix_dir);

  session::Shared& shared_;
  std::function<config::ConfigPtr()> config_;
  struct Probe {
    bool ok = false;
    core::Micros at = 0;
  };
  std::map<std::string, Probe> probes_;  // by address; used by the HTTP thread only
};

}  // namespace sluice::admin
