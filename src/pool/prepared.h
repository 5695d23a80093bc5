// Named prepared statements in transaction pooling: one registry for the process (owned by the
// app, pool::Registries), keyed by the
// full query text and parameter types (never a short hash alone), and per-server LRU sets.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::pool {

// One distinct statement. Servers know it as `server_name`.
struct PreparedStatement {
  std::uint64_t id = 0;
  std::string server_name;  // "sluice_<id>"
  std::string query;
  std::string param_types;  // the Parse body after the query: int16 count + int32 oids
};
using PreparedPtr = std::shared_ptr<const PreparedStatement>;

class PreparedRegistry {
 public:
  PreparedRegistry() = default;
  PreparedRegistry(const PreparedRegistry&) = delete;
  PreparedRegistry& operator=(const PreparedRegistry&) = delete;
  // The statement for (query, types), created on first use. Thread-safe.
  [[nodiscard]] PreparedPtr get(std::string_view query, std::string_view param_types);
  [[nodiscard]] std::size_t size();

 private:
  std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::string, std::weak_ptr<const PreparedStatement>> map_;
};

// Which statements one server connection has prepared, least recently used first out.
class ServerStatements {
 public:
  [[nodiscard]] bool has(std::uint64_t id) const { return index_.count(id) != 0; }
  void touch(std::uint64_t id);
  // Adds `s`; returns the statements to close to stay within `cap` (oldest first).
  [[nodiscard]] std::list<PreparedPtr> add(PreparedPtr s, int cap);
  void remove(std::uint64_t id);
  void clear();
  // A statement whose plan the server refuses (0A000 after DDL): it still exists there and must
  // be closed before it is prepared again.
  void mark_stale(std::uint64_t id) {
    remove(id);
    stale_.push_back(id);
  }
  [[nodiscard]] bool take_stale(std::uint64_t id) {
    for (auto it = stale_.begin(); it != stale_.end(); ++it) {
      if (*it == id) {
        stale_.erase(it);
        return true;
      }
    }
    return false;
  }
  [[nodiscard]] std::size_t size() const { return lru_.size(); }

 private:
  std::list<PreparedPtr> lru_;  // front: most recent
  std::unordered_map<std::uint64_t, std::list<PreparedPtr>::iterator> index_;
  std::vector<std::uint64_t> stale_;
};

// The Parse message for `s` under its server name.
void write_parse(std::string& out, const PreparedStatement& s);
void write_close_statement(std::string& out, std::string_view server_name);

}  // namespace sluice::pool
