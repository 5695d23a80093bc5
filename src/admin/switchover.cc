// SWITCHOVER db TO 'host=... port=...' [TIMEOUT seconds]: moves a database to another server
// between transactions, without dropping clients and without editing the configuration file.
//
//   1. PAUSE the database: new transactions queue, idle servers close, servers close as the
//      running transactions end.
//   2. When no server of it is busy, point its pools at the new address (a new ConnectTarget
//      generation: anything of the old one still open is closed, never reused) and RESUME:
//      the queued transactions run on the new server.
//   3. If transactions are still running at the timeout (switchover_timeout, or TIMEOUT),
//      RESUME on the old address and report the failure.
#include "admin/command.h"
#include "admin/console.h"
#include "config/connstring.h"
#include "config/values.h"
#include "core/log.h"

namespace sluice::admin {
namespace {

std::string join(const std::vector<std::string>& hosts) {
  std::string out;
  for (const auto& h : hosts)
    out += (out.empty() ? "" : ",") + h;
  return out.empty() ? std::string("(unix socket)") : out;
}

}  // namespace

Status Console::cmd_switchover(Request& r, std::string_view args) {
  auto usage = [&] {
    write_error(r.out, "syntax: SWITCHOVER <db> TO 'host=... port=...' [TIMEOUT <seconds>]",
                "42601");
    return Status::Error;
  };
  std::string_view rest = args;
  std::string db = name_of(next_word(rest));
  if (db.empty() || !iequals(next_word(rest), "TO")) return usage();
  std::string_view target = next_word(rest);
  if (target.size() < 2 || target.front() != '\'') return usage();
  auto cfg = control_.config();
  core::Micros timeout = cfg->settings.switchover_timeout;
  if (!rest.empty()) {
    if (!iequals(next_word(rest), "TIMEOUT")) return usage();
    auto t = config::parse_seconds(next_word(rest));
    if (!t || *t <= 0 || !rest.empty()) return usage();
    timeout = *t;
  }
  if (!check_database(r, db, "switch over")) return Status::Error;

  // Where to: host and port; what is not given stays as it is now.
  const config::DatabaseConfig* d = cfg->find_database(db);
  if (d == nullptr) d = cfg->fallback_database();
  std::vector<std::string> hosts = d->hosts;
  int port = d->port;
  if (auto sw = shared_.pools->switched_target(db)) {
    hosts = sw->hosts;
    port = sw->port;
  }
  auto params = config::parse_connstring(unquote(target));
  if (!params.ok()) {
    write_error(r.out, "invalid switchover target: " + params.error(), "22023");
    return Status::Error;
  }
  for (const auto& [k, v] : *params) {
    if (k == "host") {
      hosts = config::split_list(v);
    } else if (k == "port") {
      auto n = config::parse_int(v);
      if (!n || *n <= 0 || *n > 65535) {
        write_error(r.out, "invalid switchover target: bad port " + v, "22023");
        return Status::Error;
      }
      port = static_cast<int>(*n);
    } else {
      write_error(r.out, "invalid switchover target: only host and port may change, not " + k,
                  "22023");
      return Status::Error;
    }
  }

  auto& pools = *shared_.pools;
  if (pools.paused({}) || pools.suspended() || pools.paused(db)) {
    write_error(r.out, "database " + db + " is paused; RESUME it first");
    return Status::Error;
  }
  core::log(core::LogLevel::Log, "SWITCHOVER '{}' to {}:{} command issued: pausing", db,
            join(hosts), port);
  session::SessionWorker* w = &r.client.worker;
  pools.pause(db, w);
  core::Micros deadline = w->loop().now() + timeout;
  return wait_for(
      r,
      [&pools, w, db, hosts, port, deadline,
       timeout](core::Micros now) -> std::optional<std::pair<std::string, bool>> {
        int busy = pools.busy_servers(db);
        std::string out;
        if (busy == 0) {
          pools.switch_target(db, hosts, port, *w);
          (void)pools.resume(db, *w);
          core::log(core::LogLevel::Log, "SWITCHOVER '{}': now on {}:{}", db, join(hosts), port);
          write_complete(out, "SWITCHOVER");
          return std::pair{std::move(out), true};
        }
        if (now < deadline) return std::nullopt;
        (void)pools.resume(db, *w);
        std::string msg = "switchover of " + db + " timed out after " +
                          config::format_seconds(timeout) + " s with " + std::to_string(busy) +
                          " server connection(s) still busy; it stays on the old server";
        core::log(core::LogLevel::Warning, "SWITCHOVER '{}': {}", db, msg);
        write_error(out, msg, "57014");
        return std::pair{std::move(out), false};
      });
}

}  // namespace sluice::admin
