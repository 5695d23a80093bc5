// /metrics: pools, traffic and duration histograms in the Prometheus text format (0.0.4).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pool/pool.h"

namespace sluice::admin {

struct MetricsInput {
  std::vector<pool::PoolManager::PoolSnapshot> pools;
  int client_connections = 0;  // every accepted client socket
  int server_connections = 0;
  bool paused = false;  // global PAUSE or SUSPEND
};

// The exposition text; every family has HELP and TYPE, histograms are cumulative and end in
// le="+Inf" equal to _count.
[[nodiscard]] std::string render_metrics(const MetricsInput& in);

// Label value escaping of the text format: backslash, double quote, line feed.
[[nodiscard]] std::string escape_label(std::string_view v);

}  // namespace sluice::admin
