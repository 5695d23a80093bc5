// SHOW STATS averages and the periodic "stats:" log line: per-database totals kept at the last
// two stats_period boundaries, as PgBouncer keeps them.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "pool/stats.h"

namespace sluice::admin {

class StatsHistory {
 public:
  using Totals = std::map<std::string, pool::PoolTotals, std::less<>>;  // by database

  explicit StatsHistory(core::Micros start);

  // Called often (any one thread). When `period` has passed since the last boundary, takes
  // `current()` as the new boundary and, if `log`, logs the averages of the period just ended.
  void tick(core::Micros now, core::Micros period, bool log,
            const std::function<Totals()>& current);

  // Averages of `cur` against the older boundary, per second for counts and bytes and per
  // event for times (PgBouncer's avg_* columns), for one database or (empty name) all.
  [[nodiscard]] pool::PoolTotals averages(const std::string& database, const pool::PoolTotals& cur,
                                          core::Micros now) const;
  [[nodiscard]] pool::PoolTotals averages_all(const pool::PoolTotals& cur, core::Micros now) const;

  // The arithmetic, exposed for tests: `older` taken `elapsed` microseconds before `cur`.
  [[nodiscard]] static pool::PoolTotals average(const pool::PoolTotals& cur,
                                                const pool::PoolTotals& older,
                                                core::Micros elapsed);
  // The log line's text (after "stats: ").
  [[nodiscard]] static std::string log_text(const pool::PoolTotals& avg);

 private:
  mutable std::mutex mu_;
  core::Micros old_stamp_;
  core::Micros new_stamp_;
  Totals older_;
  Totals newer_;
};

}  // namespace sluice::admin
