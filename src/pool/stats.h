// Per-pool traffic counters: one slot per worker, written only by that worker, summed on read.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace sluice::pool {

// Single-writer counter: the owning worker adds with plain loads and stores (no locked
// instruction); any thread may read.
class Counter {
 public:
  void add(std::uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Upper bounds of the duration histograms, in microseconds (Prometheus `le`, cumulative on
// read); one more bucket holds what is above the last bound.
inline constexpr std::array<std::uint64_t, 17> kLatencyBoundsUs = {
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 60000000};
inline constexpr std::size_t kLatencyBuckets = kLatencyBoundsUs.size() + 1;

// A sum of microseconds that also counts each added duration in a histogram bucket: every
// add() is one observation (a query, a transaction, a wait), so the relay's call sites feed
// the /metrics histograms without knowing of them. Single writer, like Counter.
class TimedCounter {
  // kFirstBucket[w]: the first bucket whose bound is at least 2^(w-1), the least value of
  // bit width w.
  static constexpr std::array<std::uint8_t, 65> kFirstBucket = [] {
    std::array<std::uint8_t, 65> t{};
    for (std::size_t w = 0; w < t.size(); ++w) {
      std::uint64_t least = w == 0 ? 0 : std::uint64_t{1} << (w - 1);
      std::size_t i = 0;
      while (i < kLatencyBoundsUs.size() && least > kLatencyBoundsUs[i])
        ++i;
      t[w] = static_cast<std::uint8_t>(i);
    }
    return t;
  }();

 public:
  void add(std::uint64_t us) {
    sum_.add(us);
    // Start at the first bucket that can hold a value of this bit width: at most a step or
    // two from there (the bounds are 2 to 2.5 apart).
    std::size_t i = kFirstBucket[static_cast<std::size_t>(std::bit_width(us))];
    while (i < kLatencyBoundsUs.size() && us > kLatencyBoundsUs[i])
      ++i;
    buckets_[i].add(1);
  }
  [[nodiscard]] std::uint64_t get() const { return sum_.get(); }
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const { return buckets_[i].get(); }

 private:
  Counter sum_;
  std::array<Counter, kLatencyBuckets> buckets_;
};

// One list generates the struct, the names for SHOW STATS/metrics and the summing. The first
// argument is the member's type: Counter, or TimedCounter for the durations /metrics shows as
// histograms.
#define SLUICE_POOL_COUNTERS(X)                                                                    \
  X(Counter, server_assignments) /* servers handed to clients */                                   \
  X(Counter, xacts)           /* transactions (a statement outside a transaction counts as one) */ \
  X(Counter, queries)         /* requests answered with ReadyForQuery */                           \
  X(Counter, received)        /* bytes from clients */                                             \
  X(Counter, sent)            /* bytes to clients */                                               \
  X(TimedCounter, xact_time)  /* microseconds inside transactions */                               \
  X(TimedCounter, query_time) /* microseconds from request to ReadyForQuery */                     \
  X(TimedCounter, wait_time)  /* microseconds clients waited for a server */                       \
  X(Counter, client_parses)   /* Parse messages from clients */                                    \
  X(Counter, server_parses)   /* Parse messages sent to servers */                                 \
  X(Counter, binds)           /* Bind messages */                                                  \
  X(Counter, errors)          /* ErrorResponse sent to clients */                                  \
  X(Counter, server_syncs)    /* checkouts that ran a query to bring a server's settings over */   \
  X(Counter, server_moves)    /* servers moved to another worker's loop for a waiter */

struct alignas(64) PoolCounters {  // each worker's slot starts on its own cache line
#define SLUICE_DECLARE_COUNTER(type, name) type name;
  SLUICE_POOL_COUNTERS(SLUICE_DECLARE_COUNTER)
#undef SLUICE_DECLARE_COUNTER
};

// A plain copy for readers.
struct PoolTotals {
#define SLUICE_DECLARE_TOTAL(type, name) std::uint64_t name = 0;
  SLUICE_POOL_COUNTERS(SLUICE_DECLARE_TOTAL)
#undef SLUICE_DECLARE_TOTAL
  void add(const PoolCounters& c) {
#define SLUICE_ADD_TOTAL(type, name) name += c.name.get();
    SLUICE_POOL_COUNTERS(SLUICE_ADD_TOTAL)
#undef SLUICE_ADD_TOTAL
  }
  void add(const PoolTotals& t) {
#define SLUICE_ADD_TOTALS(type, name) name += t.name;
    SLUICE_POOL_COUNTERS(SLUICE_ADD_TOTALS)
#undef SLUICE_ADD_TOTALS
  }
};

// Bucket counts (not cumulative) of one TimedCounter, summed over workers.
struct LatencyHistogram {
  std::array<std::uint64_t, kLatencyBuckets> buckets{};
  std::uint64_t sum_us = 0;
  void add(const TimedCounter& c) {
    for (std::size_t i = 0; i < kLatencyBuckets; ++i)
      buckets[i] += c.bucket(i);
    sum_us += c.get();
  }
  void add(const LatencyHistogram& h) {
    for (std::size_t i = 0; i < kLatencyBuckets; ++i)
      buckets[i] += h.buckets[i];
    sum_us += h.sum_us;
  }
  [[nodiscard]] std::uint64_t count() const {
    std::uint64_t n = 0;
    for (auto b : buckets)
      n += b;
    return n;
  }
  // The least bucket bound (microseconds) at or below which a fraction `q` of the
  // observations lie: an upper estimate of the q-quantile. 0 with no observations; the last
  // bound when the quantile lies above it.
  [[nodiscard]] std::uint64_t quantile_bound(double q) const {
    std::uint64_t n = count();
    if (n == 0) return 0;
    auto want = static_cast<std::uint64_t>(q * static_cast<double>(n));
    if (want == 0) want = 1;
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i < kLatencyBoundsUs.size(); ++i) {
      cum += buckets[i];
      if (cum >= want) return kLatencyBoundsUs[i];
    }
    return kLatencyBoundsUs.back();
  }
};

struct PoolHistograms {
  LatencyHistogram wait, xact, query;
  void add(const PoolCounters& c) {
    wait.add(c.wait_time);
    xact.add(c.xact_time);
    query.add(c.query_time);
  }
  void add(const PoolHistograms& h) {
    wait.add(h.wait);
    xact.add(h.xact);
    query.add(h.query);
  }
};

}  // namespace sluice::pool
