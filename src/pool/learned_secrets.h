// Secrets auth_query found for users missing from the auth file, for their pools' server logins.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sluice::pool {

// One per process, owned by the app (pool::Registries); thread-safe. A login that runs auth_query
// again replaces the entry, so a password changed on the server is picked up by the next client
// login. A SCRAM secret only opens a server login together with the keys a client's proof revealed
// (SCRAM pass-through); an md5 hash answers md5 directly. Nothing here is ever logged.
class LearnedSecrets {
 public:
  LearnedSecrets() = default;
  LearnedSecrets(const LearnedSecrets&) = delete;
  LearnedSecrets& operator=(const LearnedSecrets&) = delete;
  void remember(std::string_view user, std::string_view secret);
  void forget(std::string_view user);
  [[nodiscard]] std::optional<std::string> find(std::string_view user) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::string> secrets_;
};

}  // namespace sluice::pool
