// SHOW STATS, STATS_TOTALS, STATS_AVERAGES and TOTALS: counters summed over workers and pools,
// averages over the last stats_period (stats_history.h).
#include <map>

#include "admin/command.h"
#include "admin/console.h"
#include "admin/result_set.h"

namespace sluice::admin {
namespace {

using T = ResultSet::Type;

// The eleven figures of a row, in PgBouncer's column order.
std::vector<std::optional<std::string>> figures(const pool::PoolTotals& t) {
  auto s = [](std::uint64_t v) { return std::optional<std::string>(std::to_string(v)); };
  return {s(t.server_assignments), s(t.xacts),     s(t.queries),
          s(t.received),           s(t.sent),      s(t.xact_time),
          s(t.query_time),         s(t.wait_time), s(t.client_parses),
          s(t.server_parses),      s(t.binds)};
}

// SHOW TOTALS row names (PgBouncer's internal counter names).
constexpr const char* kTotalNames[] = {"server_assignment_count",
                                       "xact_count",
                                       "query_count",
                                       "client_bytes",
                                       "server_bytes",
                                       "xact_time",
                                       "query_time",
                                       "wait_time",
                                       "ps_client_parse_count",
                                       "ps_server_parse_count",
                                       "ps_bind_count"};

}  // namespace

Status Console::show_stats(Request& r, std::string_view which) {
  core::Micros now = core::monotonic_now();
  std::map<std::string, pool::PoolTotals> dbs;
  std::map<std::string, pool::LatencyHistogram> waits;
  for (const auto& p : shared_.pools->pool_snapshots(r.client.worker.loop().now())) {
    dbs[p.database].add(p.totals);
    pool::LatencyHistogram h = p.histograms.wait;
    // A checkout served at once waited ~0: only real waits are recorded, so assignments
    // without one count in the first bucket (as /metrics does).
    std::uint64_t n = h.count();
    if (p.totals.server_assignments > n) h.buckets[0] += p.totals.server_assignments - n;
    waits[p.database].add(h);
  }
  dbs["pgbouncer"].add(admin_totals());

  bool totals = which != "stats_averages";
  bool averages = which != "stats_totals";
  ResultSet rs;
  rs.column("database");
  if (which == "stats") {
    for (const char* n : {"total_server_assignment_count",
                          "total_xact_count",
                          "total_query_count",
                          "total_received",
                          "total_sent",
                          "total_xact_time",
                          "total_query_time",
                          "total_wait_time",
                          "total_client_parse_count",
                          "total_server_parse_count",
                          "total_bind_count",
                          "avg_server_assignment_count",
                          "avg_xact_count",
                          "avg_query_count",
                          "avg_recv",
                          "avg_sent",
                          "avg_xact_time",
                          "avg_query_time",
                          "avg_wait_time",
                          "avg_client_parse_count",
                          "avg_server_parse_count",
                          "avg_bind_count"}) {
      rs.column(n, T::Numeric);
    }
    // Ours, after PgBouncer's columns: state churn and fairness (issue 9).
    for (const char* n :
         {"total_server_sync_count", "total_server_move_count", "avg_server_sync_count",
          "avg_server_move_count", "wait_p50_us", "wait_p99_us"}) {
      rs.column(n, T::Numeric);
    }
  } else {
    for (const char* n : {"server_assignment_count", "xact_count", "query_count", "bytes_received",
                          "bytes_sent", "xact_time", "query_time", "wait_time"}) {
      rs.column(n, T::Numeric);
    }
    if (totals) {
      for (const char* n : {"client_parse_count", "server_parse_count", "bind_count"}) {
        rs.column(n, T::Numeric);
      }
    } else {
      for (const char* n : {"avg_client_parse_count", "avg_server_parse_count", "avg_bind_count"}) {
        rs.column(n, T::Numeric);
      }
    }
  }
  for (const auto& [db, t] : dbs) {
    std::vector<std::optional<std::string>> row{db};
    if (totals) {
      auto f = figures(t);
      row.insert(row.end(), f.begin(), f.end());
    }
    pool::PoolTotals avg;
    if (averages) {
      avg = history_.averages(db, t, now);
      auto f = figures(avg);
      row.insert(row.end(), f.begin(), f.end());
    }
    if (which == "stats") {
      const pool::LatencyHistogram& h = waits[db];
      for (std::uint64_t v : {t.server_syncs, t.server_moves, avg.server_syncs, avg.server_moves,
                              h.quantile_bound(0.5), h.quantile_bound(0.99)}) {
        row.emplace_back(std::to_string(v));
      }
    }
    rs.row(std::move(row));
  }
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

Status Console::show_totals(Request& r) {
  core::Micros now = core::monotonic_now();
  pool::PoolTotals all;
  for (const auto& p : shared_.pools->pool_snapshots(r.client.worker.loop().now())) {
    all.add(p.totals);
  }
  all.add(admin_totals());
  ResultSet rs;
  rs.column("name");
  rs.column("value", T::Numeric);
  auto total = figures(all);
  auto avg = figures(history_.averages_all(all, now));
  for (std::size_t i = 0; i < total.size(); ++i) {
    rs.row({std::string("total_") + kTotalNames[i], total[i]});
  }
  for (std::size_t i = 0; i < avg.size(); ++i) {
    rs.row({std::string("avg_") + kTotalNames[i], avg[i]});
  }
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

}  // namespace sluice::admin
