// Pool commands: PAUSE, RESUME, SUSPEND, DISABLE, ENABLE, RECONNECT, KILL, KILL_CLIENT,
// WAIT_CLOSE.
#include "admin/command.h"
#include "admin/console.h"
#include "admin/fanout.h"
#include "config/entries.h"
#include "core/log.h"

namespace sluice::admin {
namespace {

// The optional database argument; false (with the error written) if more follows.
bool db_arg(Request& r, std::string_view verb, std::string_view args, std::string& db) {
  std::string_view rest = args;
  db = name_of(next_word(rest));
  if (!rest.empty()) {
    write_error(r.out, "invalid command '" + std::string(verb) + " " + std::string(args) +
                           "', use SHOW HELP;");
    return false;
  }
  return true;
}

std::string complete(std::string_view tag) {
  std::string out;
  write_complete(out, tag);
  return out;
}

void log_issued(std::string_view verb, const std::string& db) {
  if (db.empty()) {
    core::log(core::LogLevel::Log, "{} command issued", verb);
  } else {
    core::log(core::LogLevel::Log, "{} '{}' command issued", verb, db);
  }
}

}  // namespace

Status Console::cmd_pause(Request& r, std::string_view args) {
  std::string db;
  if (!db_arg(r, "PAUSE", args, db)) return Status::Error;
  auto& pools = *shared_.pools;
  if (pools.paused({}) || pools.suspended()) {
    write_error(r.out, "already suspended/paused");
    return Status::Error;
  }
  if (!db.empty() && !check_database(r, db, "pause")) return Status::Error;
  log_issued("PAUSE", db);
  pools.pause(db, &r.client.worker);
  // Done when the transactions running now have finished and their servers are closed.
  return wait_for(r, [&pools, db](core::Micros) -> std::optional<std::pair<std::string, bool>> {
    if (pools.busy_servers(db) > 0) return std::nullopt;
    return std::pair{complete("PAUSE"), true};
  });
}

Status Console::cmd_resume(Request& r, std::string_view args) {
  std::string db;
  if (!db_arg(r, "RESUME", args, db)) return Status::Error;
  auto& pools = *shared_.pools;
  log_issued("RESUME", db);
  if (db.empty()) {
    if (shared_.shutdown.load() != session::ShutdownMode::None) {
      write_error(r.out, "pooler is shutting down");
      return Status::Error;
    }
    if (!pools.resume({}, r.client.worker)) {
      write_error(r.out, "pooler is not paused/suspended");
      return Status::Error;
    }
  } else {
    if (!check_database(r, db, "resume")) return Status::Error;
    if (!pools.paused(db)) {
      write_error(r.out, "database " + db + " is not paused");
      return Status::Error;
    }
    (void)pools.resume(db, r.client.worker);
  }
  write_complete(r.out, "RESUME");
  return Status::Ok;
}

Status Console::cmd_suspend(Request& r, std::string_view args) {
  if (!trim(args).empty()) {
    write_error(r.out, "invalid command 'SUSPEND " + std::string(args) + "', use SHOW HELP;");
    return Status::Error;
  }
  auto& pools = *shared_.pools;
  if (pools.paused({}) || pools.suspended()) {
    write_error(r.out, "already suspended/paused");
    return Status::Error;
  }
  if (pools.paused_databases() > 0) {
    write_error(r.out, "cannot suspend with paused databases");
    return Status::Error;
  }
  log_issued("SUSPEND", {});
  // Output is never held back (every write goes out at once), so there is nothing to flush:
  // new transactions wait from now on, running ones finish.
  pools.suspend();
  write_complete(r.out, "SUSPEND");
  return Status::Ok;
}

Status Console::cmd_disable(Request& r, std::string_view args) {
  std::string db;
  if (!db_arg(r, "DISABLE", args, db)) return Status::Error;
  if (db.empty()) {
    write_error(r.out, "a database is required");
    return Status::Error;
  }
  if (!check_database(r, db, "disable")) return Status::Error;
  log_issued("DISABLE", db);
  shared_.pools->set_disabled(db, true);
  write_complete(r.out, "DISABLE");
  return Status::Ok;
}

Status Console::cmd_enable(Request& r, std::string_view args) {
  std::string db;
  if (!db_arg(r, "ENABLE", args, db)) return Status::Error;
  if (db.empty()) {
    write_error(r.out, "a database is required");
    return Status::Error;
  }
  if (!check_database(r, db, "disable")) return Status::Error;
  log_issued("ENABLE", db);
  shared_.pools->set_disabled(db, false);
  write_complete(r.out, "ENABLE");
  return Status::Ok;
}

Status Console::cmd_reconnect(Request& r, std::string_view args) {
  std::string db;
  if (!db_arg(r, "RECONNECT", args, db)) return Status::Error;
  if (!db.empty() && !check_database(r, db, "reconnect")) return Status::Error;
  log_issued("RECONNECT", db);
  shared_.pools->reconnect(db, r.client.worker);
  write_complete(r.out, "RECONNECT");
  return Status::Ok;
}

Status Console::cmd_kill(Request& r, std::string_view args) {
  std::string db;
  if (!db_arg(r, "KILL", args, db)) return Status::Error;
  auto& pools = *shared_.pools;
  if (pools.paused({}) || pools.suspended()) {
    write_error(r.out, "already suspended/paused");
    return Status::Error;
  }
  if (!db.empty() && !check_database(r, db, "kill")) return Status::Error;
  log_issued("KILL", db);
  // Paused first, so that no client of it gets a server while the others are being closed;
  // it stays paused until RESUME, as in PgBouncer.
  pools.pause(db, &r.client.worker);
  auto finish = r.finish;
  fan_out<int>(
      shared_.workers, r.client.worker,
      [db](session::SessionWorker& w) {
        int n = 0;
        w.clients.for_each([&](session::Client& c) {
          if (c.admin || c.state == session::ClientState::Closed) return;
          if (!db.empty() && c.db_name != db) return;
          if (c.state == session::ClientState::Startup || c.state == session::ClientState::Auth) {
            return;
          }
          c.close("database removed", "08P01", "database removed");
          ++n;
        });
        return n;
      },
      [finish](std::vector<int>) { finish(complete("KILL"), true); });
  return Status::Later;
}

Status Console::cmd_kill_client(Request& r, std::string_view args) {
  std::string_view rest = args;
  std::string_view word = next_word(rest);
  std::uint64_t id = 0;
  std::size_t digits = 0;
  while (digits < word.size() && word[digits] >= '0' && word[digits] <= '9' && digits < 19) {
    id = id * 10 + static_cast<std::uint64_t>(word[digits] - '0');
    ++digits;
  }
  if (digits == 0) {
    write_error(r.out, "invalid client pointer supplied");
    return Status::Error;
  }
  core::log(core::LogLevel::Log, "KILL_CLIENT {} command issued", id);
  auto finish = r.finish;
  fan_out<int>(
      shared_.workers, r.client.worker,
      [id](session::SessionWorker& w) {
        int found = 0;
        w.clients.for_each([&](session::Client& c) {
          if (c.id != id || c.state == session::ClientState::Closed) return;
          found = 1;
          c.close("admin forced disconnect", "08P01", "admin forced disconnect");
        });
        return found;
      },
      [finish](std::vector<int> parts) {
        for (int f : parts) {
          if (f != 0) {
            finish(complete("KILL_CLIENT"), true);
            return;
          }
        }
        std::string out;
        write_error(out, "client not found");
        finish(std::move(out), false);
      });
  return Status::Later;
}

Status Console::cmd_wait_close(Request& r, std::string_view args) {
  std::string db;
  if (!db_arg(r, "WAIT_CLOSE", args, db)) return Status::Error;
  if (!db.empty() && !check_database(r, db, "wait in")) return Status::Error;
  log_issued("WAIT_CLOSE", db);
  auto& pools = *shared_.pools;
  return wait_for(r, [&pools, db](core::Micros) -> std::optional<std::pair<std::string, bool>> {
    if (pools.stale_servers(db) > 0) return std::nullopt;
    return std::pair{complete("WAIT_CLOSE"), true};
  });
}

}  // namespace sluice::admin
