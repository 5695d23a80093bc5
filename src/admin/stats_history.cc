// StatsHistory: boundary snapshots, averages, the stats log line.
#include "admin/stats_history.h"

#include <fmt/format.h>

#include "core/log.h"

namespace sluice::admin {

StatsHistory::StatsHistory(core::Micros start)
    : old_stamp_(start - core::kMicrosPerSecond), new_stamp_(start) {}

pool::PoolTotals StatsHistory::average(const pool::PoolTotals& cur, const pool::PoolTotals& older,
                                       core::Micros elapsed) {
  pool::PoolTotals avg;
  if (elapsed <= 0) return avg;
  auto delta = [](std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : 0; };
  auto per_second = [&](std::uint64_t a, std::uint64_t b) {
    return delta(a, b) * static_cast<std::uint64_t>(core::kMicrosPerSecond) /
           static_cast<std::uint64_t>(elapsed);
  };
  std::uint64_t xacts = delta(cur.xacts, older.xacts);
  std::uint64_t queries = delta(cur.queries, older.queries);
  std::uint64_t assignments = delta(cur.server_assignments, older.server_assignments);
  avg.xacts = per_second(cur.xacts, older.xacts);
  avg.queries = per_second(cur.queries, older.queries);
  avg.server_assignments = per_second(cur.server_assignments, older.server_assignments);
  avg.received = per_second(cur.received, older.received);
  avg.sent = per_second(cur.sent, older.sent);
  avg.client_parses = per_second(cur.client_parses, older.client_parses);
  avg.server_parses = per_second(cur.server_parses, older.server_parses);
  avg.binds = per_second(cur.binds, older.binds);
  avg.errors = per_second(cur.errors, older.errors);
  avg.server_syncs = per_second(cur.server_syncs, older.server_syncs);
  avg.server_moves = per_second(cur.server_moves, older.server_moves);
  if (xacts > 0) avg.xact_time = delta(cur.xact_time, older.xact_time) / xacts;
  if (queries > 0) avg.query_time = delta(cur.query_time, older.query_time) / queries;
  if (assignments > 0) avg.wait_time = delta(cur.wait_time, older.wait_time) / assignments;
  return avg;
}

std::string StatsHistory::log_text(const pool::PoolTotals& a) {
  return fmt::format(
      "{} xacts/s, {} queries/s, {} client parses/s, {} server parses/s, {} binds/s, in {} B/s, "
      "out {} B/s, xact {} us, query {} us, wait {} us",
      a.xacts, a.queries, a.client_parses, a.server_parses, a.binds, a.received, a.sent,
      a.xact_time, a.query_time, a.wait_time);
}

void StatsHistory::tick(core::Micros now, core::Micros period, bool log,
                        const std::function<Totals()>& current) {
  std::lock_guard<std::mutex> g(mu_);
  if (period <= 0 || now - new_stamp_ < period) return;
  Totals cur = current();
  old_stamp_ = new_stamp_;
  new_stamp_ = now;
  older_ = std::move(newer_);
  newer_ = std::move(cur);
  if (!log) return;
  pool::PoolTotals all_new;
  pool::PoolTotals all_old;
  for (const auto& [db, t] : newer_)
    all_new.add(t);
  for (const auto& [db, t] : older_)
    all_old.add(t);
  core::log(core::LogLevel::Log, "stats: {}",
            log_text(average(all_new, all_old, new_stamp_ - old_stamp_)));
}

pool::PoolTotals StatsHistory::averages(const std::string& database, const pool::PoolTotals& cur,
                                        core::Micros now) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = older_.find(database);
  return average(cur, it == older_.end() ? pool::PoolTotals{} : it->second, now - old_stamp_);
}

pool::PoolTotals StatsHistory::averages_all(const pool::PoolTotals& cur, core::Micros now) const {
  std::lock_guard<std::mutex> g(mu_);
  pool::PoolTotals old;
  for (const auto& [db, t] : older_)
    old.add(t);
  return average(cur, old, now - old_stamp_);
}

}  // namespace sluice::admin
