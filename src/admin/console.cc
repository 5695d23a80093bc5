// Console core: statement batches, the command table, privileges, waits polled on ticks.
#include "admin/console.h"

#include <array>

#include "admin/command.h"
#include "admin/result_set.h"
#include "config/entries.h"
#include "proto/codes.h"

namespace sluice::admin {

std::string version_string() {
  return std::string("sluice ") + SLUICE_VERSION;
}

// The statements of one Query message, run in order; stops at the first error (as Postgres
// does). A statement that answers later suspends the batch until its reply arrives.
class Console::Batch : public std::enable_shared_from_this<Batch> {
 public:
  Batch(Console& console, session::Client& c, std::vector<std::string> stmts)
      : console_(console), client_(c), stmts_(std::move(stmts)) {}

  // Runs statements; true when all have answered (replies appended to `out`).
  bool run(std::string& out) {
    while (next_ < stmts_.size()) {
      if (client_.state == session::ClientState::Closed) {
        next_ = stmts_.size();
        break;
      }
      auto self = shared_from_this();
      Request r{client_, out,
                [self](std::string reply, bool ok) { self->resume(std::move(reply), ok); }};
      Status st = console_.run(r, stmts_[next_++]);
      if (st == Status::Error) next_ = stmts_.size();
      if (st == Status::Later) return false;
    }
    return true;
  }

 private:
  void resume(std::string reply, bool ok) {
    rest_ += reply;
    if (!ok) next_ = stmts_.size();
    if (run(rest_)) client_.finish_admin_query(rest_);
  }

  Console& console_;
  session::Client& client_;
  std::vector<std::string> stmts_;
  std::size_t next_ = 0;
  std::string rest_;  // replies after the first statement that answered later
};

Console::Console(session::Shared& shared, Control& control)
    : shared_(shared),
      control_(control),
      history_(core::monotonic_now()),
      admin_counters_(std::make_unique<pool::PoolCounters[]>(shared.workers.size())),
      pending_(shared.workers.size()) {}

Console::~Console() = default;

bool Console::handle_query(session::Client& c, std::string_view sql, std::string& out) {
  pool::PoolCounters& pc = admin_counters_[static_cast<std::size_t>(c.worker.id())];
  pc.queries.add(1);
  pc.xacts.add(1);
  pc.received.add(sql.size() + 6);
  std::vector<std::string> stmts;
  for (auto s : split_statements(sql))
    stmts.emplace_back(s);
  if (stmts.empty()) {
    proto::write_empty_query_response(out);
    return true;
  }
  auto batch = std::make_shared<Batch>(*this, c, std::move(stmts));
  return batch->run(out);
}

pool::PoolTotals Console::admin_totals() const {
  pool::PoolTotals t;
  for (std::size_t i = 0; i < shared_.workers.size(); ++i)
    t.add(admin_counters_[i]);
  return t;
}

namespace {

// Parameters some drivers set or read on connect; the console answers them as PgBouncer does.
constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kFakeParams = {{
    {"client_encoding", "UTF-8"},
    {"default_transaction_isolation", "read committed"},
    {"standard_conforming_strings", "on"},
    {"datestyle", "ISO"},
    {"timezone", "GMT"},
}};

const std::string_view* fake_param(std::string_view name) {
  for (const auto& [k, v] : kFakeParams) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

}  // namespace

Status Console::run(Request& r, std::string_view stmt) {
  static constexpr Command kCommands[] = {
      {"SHOW", &Console::show, false},
      {"SELECT", &Console::show, false},
      {"SET", &Console::cmd_set, true},
      {"RELOAD", &Console::cmd_reload, true},
      {"SHUTDOWN", &Console::cmd_shutdown, true},
      {"PAUSE", &Console::cmd_pause, true},
      {"RESUME", &Console::cmd_resume, true},
      {"SUSPEND", &Console::cmd_suspend, true},
      {"DISABLE", &Console::cmd_disable, true},
      {"ENABLE", &Console::cmd_enable, true},
      {"RECONNECT", &Console::cmd_reconnect, true},
      {"KILL", &Console::cmd_kill, true},
      {"KILL_CLIENT", &Console::cmd_kill_client, true},
      {"WAIT_CLOSE", &Console::cmd_wait_close, true},
      {"SWITCHOVER", &Console::cmd_switchover, true},
  };
  std::string_view rest = stmt;
  std::string_view verb = next_word(rest);
  for (const Command& cmd : kCommands) {
    if (!iequals(cmd.name, verb)) continue;
    // Drivers set and read a few session parameters on connect: answer them for anyone.
    if (iequals(verb, "SET") || iequals(verb, "SHOW")) {
      std::string_view probe = rest;
      std::string_view key = next_word(probe);
      if (fake_param(key) != nullptr) {
        if (iequals(verb, "SET")) {
          write_complete(r.out, "SET");
        } else {
          ResultSet rs;
          rs.column(lower(key));
          rs.row({std::string(*fake_param(key))});
          rs.write(r.out, "SHOW");
        }
        return Status::Ok;
      }
    }
    if (cmd.control && !r.client.admin_control) {
      write_error(r.out, "admin access needed");
      return Status::Error;
    }
    return (this->*cmd.handler)(r, rest);
  }
  write_error(r.out, "invalid command '" + std::string(stmt) + "', use SHOW HELP;");
  return Status::Error;
}

Status Console::wait_for(Request& r, Poll poll) {
  if (auto reply = poll(r.client.worker.loop().now())) {
    r.out += reply->first;
    return reply->second ? Status::Ok : Status::Error;
  }
  auto& list = pending_[static_cast<std::size_t>(r.client.worker.id())];
  list.push_back(Pending{std::move(poll), r.finish});
  return Status::Later;
}

void Console::tick(session::SessionWorker& w) {
  auto& list = pending_[static_cast<std::size_t>(w.id())];
  if (list.empty()) return;
  core::Micros now = w.loop().now();
  // A finish may start the next statement of its batch, which may add to this list.
  std::vector<Pending> current;
  current.swap(list);
  for (auto& p : current) {
    auto reply = p.poll(now);
    if (reply) {
      p.finish(std::move(reply->first), reply->second);
    } else {
      list.push_back(std::move(p));
    }
  }
}

void Console::stats_tick(core::Micros now) {
  auto cfg = control_.config();
  if (!cfg) return;
  history_.tick(now, cfg->settings.stats_period, cfg->settings.log_stats, [this] {
    StatsHistory::Totals t;
    for (const auto& p : shared_.pools->pool_snapshots(core::monotonic_now())) {
      t[p.database].add(p.totals);
    }
    t["pgbouncer"].add(admin_totals());
    return t;
  });
}

bool Console::check_database(Request& r, const std::string& db, std::string_view verb) {
  if (config::is_reserved_database(db)) {
    write_error(r.out, "cannot " + std::string(verb) + " admin db: " + db);
    return false;
  }
  auto cfg = control_.config();
  if (cfg->find_database(db) == nullptr && cfg->fallback_database() == nullptr) {
    write_error(r.out, "no such database: " + db);
    return false;
  }
  return true;
}

}  // namespace sluice::admin
