// Per-pool traffic counters: one slot per worker, written only by that worker, summed on read.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::pool {

// One list generates the struct, the names for SHOW STATS/metrics and the summing.
#define SLUICE_POOL_COUNTERS(X)                                                           \
  X(server_assignments) /* servers handed to clients */                                   \
  X(xacts)              /* transactions (a statement outside a transaction counts as one) */ \
  X(queries)            /* requests answered with ReadyForQuery */                        \
  X(received)           /* bytes from clients */                                          \
  X(sent)               /* bytes to clients */                                            \
  X(xact_time)          /* microseconds inside transactions */                            \
  X(query_time)         /* microseconds from request to ReadyForQuery */                  \
  X(wait_time)          /* microseconds clients waited for a server */                    \
  X(client_parses)      /* Parse messages from clients */                                 \
  X(server_parses)      /* Parse messages sent to servers */                              \
  X(binds)              /* Bind messages */                                               \
  X(errors)             /* ErrorResponse sent to clients */

// Single-writer counter: the owning worker adds with plain loads and stores (no locked
// instruction); any thread may read.
class Counter {
 public:
  void add(std::uint64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

struct alignas(64) PoolCounters {  // one cache line per worker slot
#define SLUICE_DECLARE_COUNTER(name) Counter name;
  SLUICE_POOL_COUNTERS(SLUICE_DECLARE_COUNTER)
#undef SLUICE_DECLARE_COUNTER
};

// A plain copy for readers.
struct PoolTotals {
#define SLUICE_DECLARE_TOTAL(name) std::uint64_t name = 0;
  SLUICE_POOL_COUNTERS(SLUICE_DECLARE_TOTAL)
#undef SLUICE_DECLARE_TOTAL
  void add(const PoolCounters& c) {
#define SLUICE_ADD_TOTAL(name) name += c.name.get();
    SLUICE_POOL_COUNTERS(SLUICE_ADD_TOTAL)
#undef SLUICE_ADD_TOTAL
  }
};

}  // namespace sluice::pool
