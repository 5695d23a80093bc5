// Tracked server parameters: interned values (id equality == value equality) per connection.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::pool {

// Process-wide, append-only table of parameter values. Ids are stable; reads need no lock.
class ValueTable {
 public:
  static ValueTable& instance();
  // 0 is "no value".
  [[nodiscard]] std::uint32_t intern(std::string_view value);
  [[nodiscard]] const std::string& get(std::uint32_t id) const;

 private:
  static constexpr std::uint32_t kChunkBits = 10;
  static constexpr std::uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr std::uint32_t kMaxChunks = 1u << 14;
  ValueTable();
  std::mutex mu_;
  std::unordered_map<std::string, std::uint32_t> ids_;
  std::uint32_t next_ = 1;
  std::atomic<std::string*> chunks_[kMaxChunks];
};

// The names sluice keeps in sync between a client and whichever server serves it, each with a
// slot number. Postgres reports all of them with ParameterStatus.
class ParamRegistry {
 public:
  static constexpr int kMaxSlots = 8;
  static ParamRegistry& instance();
  // Sets the extra names (track_extra_parameters); built-ins always come first.
  void configure(const std::vector<std::string>& extra);
  // Slot for a name (case-insensitive), or -1.
  [[nodiscard]] int slot(std::string_view name) const;
  [[nodiscard]] const std::string& name(int slot) const { return names_[slot]; }
  [[nodiscard]] int count() const { return count_.load(std::memory_order_acquire); }

 private:
  ParamRegistry();
  std::string names_[kMaxSlots];
  std::atomic<int> count_{0};
  std::mutex mu_;
};

// One connection's view of the tracked parameters.
struct ParamValues {
  std::array<std::uint32_t, ParamRegistry::kMaxSlots> v{};
  [[nodiscard]] bool operator==(const ParamValues&) const = default;
};

// "SET a = 'x'; SET b = 'y'" for every slot the client wants differently from the server; empty if
// nothing differs. Server values it sets are what the client wants afterwards.
[[nodiscard]] std::string param_sync_sql(const ParamValues& client, const ParamValues& server);

// Quotes a value as an SQL string literal.
[[nodiscard]] std::string quote_literal(std::string_view v);

}  // namespace sluice::pool
