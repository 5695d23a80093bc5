// SCRAM-SHA-256 client side: the pooler authenticating itself to a Postgres server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/result.h"
#include "proto/auth/scram.h"
#include "proto/auth/scram_message.h"

namespace sluice::proto::auth {

// One exchange: client_first(), on_server_first(), on_server_final(), in that order. A call out
// of order, or any error, ends the exchange (every later call fails).
class ScramClient {
 public:
  struct Options {
    // NotSupported ("n") unless the connection uses TLS: then ClientOnly ("y") if the server
    // did not offer SCRAM-SHA-256-PLUS, TlsServerEndPoint if it did and `cbind_data` is set.
    CbindFlag cbind = CbindFlag::NotSupported;
    std::string cbind_data;  // TlsServerEndPoint: hash of the server's certificate (RFC 5929)
    std::string user;        // n= value; Postgres ignores it and libpq sends it empty
    std::string nonce;       // tests only: a fixed client nonce instead of a random one
  };

  // Knows the plaintext password; keys are derived with the server's salt and iterations.
  [[nodiscard]] static ScramClient with_password(std::string_view password, Options opts);
  [[nodiscard]] static ScramClient with_password(std::string_view password) {
    return with_password(password, Options{});
  }
  // Knows only ClientKey and ServerKey (e.g. recovered from a client's exchange by ScramServer).
  // They only work if the server's secret has the salt and iterations they were derived with.
  [[nodiscard]] static ScramClient with_keys(const ScramKeys& keys, Options opts);
  [[nodiscard]] static ScramClient with_keys(const ScramKeys& keys) {
    return with_keys(keys, Options{});
  }

  ScramClient(ScramClient&&) = default;
  ScramClient& operator=(ScramClient&&) = default;
  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;
  ~ScramClient();

  // The mechanism to name in SASLInitialResponse.
  [[nodiscard]] std::string_view mechanism() const {
    return opts_.cbind == CbindFlag::TlsServerEndPoint ? kScramSha256Plus : kScramSha256;
  }

  // The client-first message, e.g. "n,,n=,r=<nonce>" (SASLInitialResponse data).
  [[nodiscard]] core::Result<std::string> client_first();
  // Checks the server-first message (AuthenticationSASLContinue data) and returns the
  // client-final message (SASLResponse data).
  [[nodiscard]] core::Result<std::string> on_server_first(std::string_view msg);
  // Checks the server-final message (AuthenticationSASLFinal data): the server proved it knows
  // the secret. Only after this succeeds may AuthenticationOk be believed.
  [[nodiscard]] core::Result<std::monostate> on_server_final(std::string_view msg);

  [[nodiscard]] bool succeeded() const { return state_ == State::Done; }

 private:
  enum class State : std::uint8_t { Start, SentFirst, SentFinal, Done, Failed };

  ScramClient(std::string password, bool have_keys, const ScramKeys& keys, Options opts);
  core::Error fail(std::string message);

  Options opts_;
  std::string password_;  // empty when constructed from keys
  bool have_keys_ = false;
  ScramKeys keys_{};
  State state_ = State::Start;
  std::string client_nonce_;
  std::string client_first_bare_;
  ScramKey server_signature_{};  // expected in server-final
};

}  // namespace sluice::proto::auth
