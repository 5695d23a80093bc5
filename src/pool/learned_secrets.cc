// LearnedSecrets: user -> secret from auth_query, behind a mutex.
#include "pool/learned_secrets.h"

namespace sluice::pool {

void LearnedSecrets::remember(std::string_view user, std::string_view secret) {
  std::lock_guard<std::mutex> g(mu_);
  secrets_.insert_or_assign(std::string(user), std::string(secret));
}

void LearnedSecrets::forget(std::string_view user) {
  std::lock_guard<std::mutex> g(mu_);
  secrets_.erase(std::string(user));
}

std::optional<std::string> LearnedSecrets::find(std::string_view user) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = secrets_.find(std::string(user));
  if (it == secrets_.end()) return std::nullopt;
  return it->second;
}

}  // namespace sluice::pool
