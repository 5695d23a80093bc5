// Interned parameter values and the registry of tracked parameter names.
#include "pool/params.h"

#include <strings.h>

namespace sluice::pool {

ValueTable::ValueTable() {
  for (auto& c : chunks_)
    c.store(nullptr, std::memory_order_relaxed);
}

ValueTable& ValueTable::instance() {
  static ValueTable t;
  return t;
}

std::uint32_t ValueTable::intern(std::string_view value) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = ids_.find(std::string(value));
  if (it != ids_.end()) return it->second;
  std::uint32_t id = next_;
  std::uint32_t ci = id >> kChunkBits;
  if (ci >= kMaxChunks) return 0;  // table exhausted: treat as "unknown"
  std::string* chunk = chunks_[ci].load(std::memory_order_relaxed);
  if (chunk == nullptr) {
    chunk = new std::string[kChunkSize];
    chunks_[ci].store(chunk, std::memory_order_release);
  }
  chunk[id & (kChunkSize - 1)] = std::string(value);
  ++next_;
  ids_.emplace(std::string(value), id);
  return id;
}

const std::string& ValueTable::get(std::uint32_t id) const {
  static const std::string empty;
  if (id == 0) return empty;
  std::string* chunk = chunks_[id >> kChunkBits].load(std::memory_order_acquire);
  if (chunk == nullptr) return empty;
  return chunk[id & (kChunkSize - 1)];
}

ParamRegistry::ParamRegistry() {
  const char* builtin[] = {"client_encoding", "DateStyle", "TimeZone",
                           "standard_conforming_strings", "application_name"};
  int n = 0;
  for (const char* b : builtin)
    names_[n++] = b;
  count_.store(n);
}

ParamRegistry& ParamRegistry::instance() {
  static ParamRegistry r;
  return r;
}

void ParamRegistry::configure(const std::vector<std::string>& extra) {
  std::lock_guard<std::mutex> g(mu_);
  int n = count_.load();
  for (const auto& e : extra) {
    if (slot(e) >= 0 || n >= kMaxSlots) continue;
    names_[n] = e;
    ++n;
    count_.store(n, std::memory_order_release);
  }
}

int ParamRegistry::slot(std::string_view name) const {
  int n = count_.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    if (names_[i].size() == name.size() &&
        strncasecmp(names_[i].data(), name.data(), name.size()) == 0) {
      return i;
    }
  }
  return -1;
}

std::string quote_literal(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 2);
  bool backslash = v.find('\\') != std::string_view::npos;
  if (backslash) out.push_back('E');
  out.push_back('\'');
  for (char c : v) {
    if (c == '\'') out.push_back('\'');
    if (c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string param_sync_sql(const ParamValues& client, const ParamValues& server) {
  std::string sql;
  auto& reg = ParamRegistry::instance();
  auto& values = ValueTable::instance();
  int n = reg.count();
  for (int i = 0; i < n; ++i) {
    std::uint32_t want = client.v[static_cast<std::size_t>(i)];
    if (want == 0 || want == server.v[static_cast<std::size_t>(i)]) continue;
    sql += "SET ";
    sql += reg.name(i);
    sql += " = ";
    sql += quote_literal(values.get(want));
    sql += ";";
  }
  return sql;
}

}  // namespace sluice::pool
