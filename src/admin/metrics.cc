// Prometheus text rendering of pool snapshots.
#include "admin/metrics.h"

#include <fmt/format.h>

namespace sluice::admin {
namespace {

using Snapshot = pool::PoolManager::PoolSnapshot;

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  // One sample; `labels` already rendered ("a=\"x\",b=\"y\"") or empty.
  template <typename V>
  void sample(std::string_view name, std::string_view labels, V value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string pool_labels(const Snapshot& p) {
  return fmt::format("database=\"{}\",user=\"{}\"", escape_label(p.database), escape_label(p.user));
}

std::string seconds(std::uint64_t us) {
  return fmt::format("{}", static_cast<double>(us) / 1e6);
}

// Bucket counts are per bucket in the snapshot; the exposition wants them cumulative.
void histogram(Writer& w, std::string_view name, const std::vector<Snapshot>& pools,
               pool::LatencyHistogram pool::PoolHistograms::*which, bool waits) {
  std::string bucket = std::string(name) + "_bucket";
  for (const auto& p : pools) {
    pool::LatencyHistogram h = p.histograms.*which;
    if (waits) {
      // A checkout served at once waited ~0: the relay records only real waits, so the
      // assignments without one go into the first bucket.
      std::uint64_t n = h.count();
      if (p.totals.server_assignments > n) h.buckets[0] += p.totals.server_assignments - n;
    }
    std::string labels = pool_labels(p);
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i < pool::kLatencyBoundsUs.size(); ++i) {
      cum += h.buckets[i];
      w.sample(bucket, labels + ",le=\"" + seconds(pool::kLatencyBoundsUs[i]) + "\"", cum);
    }
    cum += h.buckets[pool::kLatencyBuckets - 1];
    w.sample(bucket, labels + ",le=\"+Inf\"", cum);
    w.sample(std::string(name) + "_sum", labels, seconds(h.sum_us));
    w.sample(std::string(name) + "_count", labels, cum);
  }
}

}  // namespace

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string render_metrics(const MetricsInput& in) {
  Writer w;
  w.family("sluice_up", "gauge", "1 while the pooler runs.");
  w.sample("sluice_up", "", 1);
  w.family("sluice_paused", "gauge", "1 while a global PAUSE or SUSPEND holds new transactions.");
  w.sample("sluice_paused", "", in.paused ? 1 : 0);
  w.family("sluice_client_connections", "gauge",
           "Client sockets open, in any state (login, console and cancel requests included).");
  w.sample("sluice_client_connections", "", in.client_connections);
  w.family("sluice_server_connections", "gauge", "Server connections open or being opened.");
  w.sample("sluice_server_connections", "", in.server_connections);

  const auto& pools = in.pools;
  w.family("sluice_pool_clients", "gauge",
           "Logged-in clients of a pool: active (linked to a server or between transactions), "
           "waiting (queued for a server). As SHOW POOLS cl_active and cl_waiting.");
  for (const auto& p : pools) {
    std::string l = pool_labels(p);
    w.sample("sluice_pool_clients", l + ",state=\"active\"", p.cl_active);
    w.sample("sluice_pool_clients", l + ",state=\"waiting\"", p.cl_waiting);
  }
  w.family("sluice_pool_servers", "gauge",
           "Server connections of a pool by state: active (linked), idle, used (idle past "
           "server_check_delay), tested (running a check or reset query), login. As SHOW POOLS.");
  for (const auto& p : pools) {
    std::string l = pool_labels(p);
    w.sample("sluice_pool_servers", l + ",state=\"active\"", p.sv_active);
    w.sample("sluice_pool_servers", l + ",state=\"idle\"", p.sv_idle);
    w.sample("sluice_pool_servers", l + ",state=\"used\"", p.sv_used);
    w.sample("sluice_pool_servers", l + ",state=\"tested\"", p.sv_tested);
    w.sample("sluice_pool_servers", l + ",state=\"login\"", p.sv_login);
  }
  w.family("sluice_pool_servers_pinned", "gauge",
           "Active servers held by their client outside a transaction for session state "
           "(transaction and statement mode).");
  for (const auto& p : pools)
    w.sample("sluice_pool_servers_pinned", pool_labels(p), p.sv_pinned);
  w.family("sluice_pool_size", "gauge", "Effective pool_size of the pool.");
  for (const auto& p : pools)
    w.sample("sluice_pool_size", pool_labels(p), p.pool_size);
  w.family("sluice_pool_maxwait_seconds", "gauge",
           "How long the oldest waiting client has waited.");
  for (const auto& p : pools) {
    w.sample("sluice_pool_maxwait_seconds", pool_labels(p),
             seconds(static_cast<std::uint64_t>(p.maxwait)));
  }
  w.family("sluice_pool_paused", "gauge", "1 while the pool's new transactions are held.");
  for (const auto& p : pools)
    w.sample("sluice_pool_paused", pool_labels(p), p.paused ? 1 : 0);

  struct CounterDef {
    const char* name;
    const char* help;
    std::uint64_t pool::PoolTotals::*field;
  };
  static constexpr CounterDef kCounters[] = {
      {"sluice_pool_transactions_total",
       "Transactions (a statement outside a transaction block counts as one).",
       &pool::PoolTotals::xacts},
      {"sluice_pool_queries_total", "Requests answered with ReadyForQuery.",
       &pool::PoolTotals::queries},
      {"sluice_pool_received_bytes_total", "Bytes received from clients.",
       &pool::PoolTotals::received},
      {"sluice_pool_sent_bytes_total", "Bytes sent to clients.", &pool::PoolTotals::sent},
      {"sluice_pool_errors_total", "ErrorResponse messages sent to clients.",
       &pool::PoolTotals::errors},
      {"sluice_pool_server_assignments_total", "Times a server was handed to a client.",
       &pool::PoolTotals::server_assignments},
      {"sluice_pool_server_syncs_total",
       "Checkouts that first ran a query to bring the server's session settings to the "
       "client's (state churn; divide by transactions for syncs per transaction).",
       &pool::PoolTotals::server_syncs},
      {"sluice_pool_server_moves_total",
       "Servers moved to another worker thread to serve a waiting client.",
       &pool::PoolTotals::server_moves},
  };
  for (const auto& c : kCounters) {
    w.family(c.name, "counter", c.help);
    for (const auto& p : pools)
      w.sample(c.name, pool_labels(p), p.totals.*(c.field));
  }

  w.family("sluice_pool_wait_seconds", "histogram",
           "Time a client waited for a server, per assignment (0 when one was free).");
  histogram(w, "sluice_pool_wait_seconds", pools, &pool::PoolHistograms::wait, true);
  w.family("sluice_pool_transaction_seconds", "histogram",
           "Transaction duration, first request to ReadyForQuery outside the transaction.");
  histogram(w, "sluice_pool_transaction_seconds", pools, &pool::PoolHistograms::xact, false);
  w.family("sluice_pool_query_seconds", "histogram",
           "Request duration, forwarded to ReadyForQuery.");
  histogram(w, "sluice_pool_query_seconds", pools, &pool::PoolHistograms::query, false);
  return w.take();
}

}  // namespace sluice::admin
