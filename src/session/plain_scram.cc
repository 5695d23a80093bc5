// PlainScramSecrets: the cache of SCRAM secrets derived from plain-text passwords.
#include "session/plain_scram.h"

namespace sluice::session {

PlainScramSecrets::SecretPtr PlainScramSecrets::find(std::string_view user,
                                                     std::string_view password) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = map_.find(std::string(user));
  if (it == map_.end() || it->second.password != password) return nullptr;
  return it->second.secret;
}

PlainScramSecrets::SecretPtr PlainScramSecrets::get(std::string_view user,
                                                    std::string_view password) {
  if (SecretPtr s = find(user, password)) return s;
  // Derived outside the lock (milliseconds); if another thread got there first, its secret
  // wins, so that every attempt of a user sees the same salt.
  auto made = proto::auth::make_scram_secret(password);
  if (!made) return nullptr;
  derivations_.fetch_add(1, std::memory_order_relaxed);
  auto fresh = std::make_shared<const proto::auth::ScramSecret>(std::move(made.value()));
  std::lock_guard<std::mutex> g(mu_);
  Entry& e = map_[std::string(user)];
  if (e.secret != nullptr && e.password == password) return e.secret;
  e.password = std::string(password);
  e.secret = std::move(fresh);
  return e.secret;
}

void PlainScramSecrets::retain(const std::vector<std::pair<std::string, std::string>>& users) {
  std::unordered_map<std::string_view, std::string_view> want;
  for (const auto& [u, p] : users)
    want.emplace(u, p);
  std::lock_guard<std::mutex> g(mu_);
  std::erase_if(map_, [&](const auto& kv) {
    auto it = want.find(kv.first);
    return it == want.end() || it->second != kv.second.password;
  });
}

std::size_t PlainScramSecrets::size() const {
  std::lock_guard<std::mutex> g(mu_);
  return map_.size();
}

}  // namespace sluice::session
