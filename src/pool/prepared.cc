// PreparedRegistry and ServerStatements.
#include "pool/prepared.h"

#include <fmt/format.h>

#include "proto/writer.h"

namespace sluice::pool {

PreparedPtr PreparedRegistry::get(std::string_view query, std::string_view param_types) {
  std::string key;
  key.reserve(query.size() + 1 + param_types.size());
  key.append(query);
  key.push_back('\0');  // a query cannot contain NUL: the key is unambiguous
  key.append(param_types);
  std::lock_guard<std::mutex> g(mu_);
  auto it = map_.find(key);
  if (it != map_.end()) {
    if (PreparedPtr p = it->second.lock()) return p;
  }
  auto p = std::make_shared<PreparedStatement>();
  p->id = next_id_++;
  p->server_name = fmt::format("sluice_{}", p->id);
  p->query = std::string(query);
  p->param_types = std::string(param_types);
  map_[key] = p;
  if (map_.size() > 4096 && map_.size() % 1024 == 0) {
    for (auto i = map_.begin(); i != map_.end();) {  // drop entries no one uses any more
      i = i->second.expired() ? map_.erase(i) : std::next(i);
    }
  }
  return p;
}

std::size_t PreparedRegistry::size() {
  std::lock_guard<std::mutex> g(mu_);
  return map_.size();
}

void ServerStatements::touch(std::uint64_t id) {
  auto it = index_.find(id);
  if (it != index_.end() && it->second != lru_.begin()) {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
}

std::list<PreparedPtr> ServerStatements::add(PreparedPtr s, int cap) {
  std::list<PreparedPtr> evicted;
  std::uint64_t id = s->id;
  lru_.push_front(std::move(s));
  index_[id] = lru_.begin();
  while (cap > 0 && static_cast<int>(lru_.size()) > cap) {
    evicted.push_back(lru_.back());
    index_.erase(lru_.back()->id);
    lru_.pop_back();
  }
  return evicted;
}

void ServerStatements::remove(std::uint64_t id) {
  auto it = index_.find(id);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void ServerStatements::clear() {
  lru_.clear();
  index_.clear();
  stale_.clear();
}

void write_parse(std::string& out, const PreparedStatement& s) {
  proto::MessageWriter w(out);
  w.begin('P').cstring(s.server_name).cstring(s.query).bytes(s.param_types).finish();
}

void write_close_statement(std::string& out, std::string_view server_name) {
  proto::MessageWriter(out).begin('C').u8('S').cstring(server_name).finish();
}

}  // namespace sluice::pool
