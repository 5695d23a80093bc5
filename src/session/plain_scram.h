// SCRAM secrets of users whose auth file entry (or auth_query answer) is a plain-text password.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/auth/scram.h"

namespace sluice::session {

// A SCRAM login of a plain-text user needs a salted secret (PBKDF2, 4096 iterations, ~4 ms of
// CPU). Derived on every attempt with a new salt, it cost the worker 4 ms per unauthenticated
// attempt and told an attacker which users exist (their salt changes, an unknown user's mock
// salt does not). Here it is derived once per user and password, kept until the password
// changes, and derived ahead (warm) off the worker threads after each configuration install, so
// that the first attempt for a real user is not slower than one for an unknown name.
//
// One per process, owned by the app (Shared::plain_scram); thread-safe; nothing here is logged.
class PlainScramSecrets {
 public:
  using SecretPtr = std::shared_ptr<const proto::auth::ScramSecret>;

  PlainScramSecrets() = default;
  PlainScramSecrets(const PlainScramSecrets&) = delete;
  PlainScramSecrets& operator=(const PlainScramSecrets&) = delete;

  // The secret of `user` for `password`: the cached one when the password is the one it was
  // derived from, else derived now (random salt) and cached. Null only if libcrypto fails.
  [[nodiscard]] SecretPtr get(std::string_view user, std::string_view password);
  // The cached secret, without deriving; null if there is none for this password.
  [[nodiscard]] SecretPtr find(std::string_view user, std::string_view password) const;
  // Keeps only the users of `users` (pairs of name and plain password) whose password is the
  // one cached: a changed or removed password is forgotten.
  void retain(const std::vector<std::pair<std::string, std::string>>& users);
  [[nodiscard]] std::size_t size() const;
  // Number of derivations done so far (tests, and the proof that attempts do not derive).
  [[nodiscard]] std::uint64_t derivations() const { return derivations_.load(); }

 private:
  struct Entry {
    std::string password;
    SecretPtr secret;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::atomic<std::uint64_t> derivations_{0};
};

}  // namespace sluice::session
