// The tracked server parameter names, and SQL literal quoting.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::pool {

// The names sluice keeps in sync between a client and whichever server serves it, each with a
// slot number. Postgres reports all of them with ParameterStatus. One per process, owned by the
// app (pool::Registries).
class ParamRegistry {
 public:
  static constexpr int kMaxSlots = 8;
  ParamRegistry();
  ParamRegistry(const ParamRegistry&) = delete;
  ParamRegistry& operator=(const ParamRegistry&) = delete;
  // Sets the extra names (track_extra_parameters); built-ins always come first.
  void configure(const std::vector<std::string>& extra);
  // Slot for a name (case-insensitive), or -1.
  [[nodiscard]] int slot(std::string_view name) const;
  [[nodiscard]] const std::string& name(int slot) const { return names_[slot]; }
  [[nodiscard]] int count() const { return count_.load(std::memory_order_acquire); }

 private:
  std::string names_[kMaxSlots];
  std::atomic<int> count_{0};
  std::mutex mu_;
};

// Quotes a value as an SQL string literal.
[[nodiscard]] std::string quote_literal(std::string_view v);

}  // namespace sluice::pool
