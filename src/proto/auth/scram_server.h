// SCRAM-SHA-256 server side: the pooler checking a client against a stored secret.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "proto/auth/scram.h"
#include "proto/auth/scram_message.h"

namespace sluice::proto::auth {

// Why an exchange failed; the session maps it to a SQLSTATE.
enum class ScramFailure : std::uint8_t {
  None,
  Protocol,        // malformed or out-of-order message, unsupported option (08P01)
  ChannelBinding,  // channel-binding data does not match (28000, as Postgres)
  Authentication,  // wrong password or unknown user (28P01)
};

// One exchange: on_client_first(), then on_client_final(). Any error ends it.
class ScramServer {
 public:
  struct Options {
    // The tls-server-end-point hash of the pooler's certificate (RFC 5929) when the client
    // connection uses TLS and SCRAM-SHA-256-PLUS was offered; empty otherwise. Empty means
    // channel binding is not offered: "p=" is rejected and "y" accepted. Set means it was
    // offered: "y" is a downgrade and rejected, and "p=tls-server-end-point" is verified.
    std::string cbind_data;
    bool plus_selected = false;  // the client named SCRAM-SHA-256-PLUS in SASLInitialResponse
    std::string nonce;           // tests only: a fixed server nonce instead of a random one
  };

  ScramServer(ScramSecret secret, Options opts);
  explicit ScramServer(ScramSecret secret) : ScramServer(std::move(secret), Options{}) {}
  // From a plaintext password (e.g. userlist.txt): a secret with a random salt and 4096
  // iterations. Keys recovered this way only open servers whose secret has the same salt.
  [[nodiscard]] static core::Result<ScramServer> with_password(std::string_view password,
                                                               Options opts);
  [[nodiscard]] static core::Result<ScramServer> with_password(std::string_view password) {
    return with_password(password, Options{});
  }
  // For a user that does not exist: behaves like a real exchange (salt derived from the user
  // name and `mock_key`, a per-process random string, so it is stable across attempts) and
  // always fails with Authentication at the end, so a client cannot probe for user names.
  [[nodiscard]] static core::Result<ScramServer> mock(std::string_view user,
                                                      std::string_view mock_key, Options opts);

  ScramServer(ScramServer&&) = default;
  ScramServer& operator=(ScramServer&&) = default;
  ScramServer(const ScramServer&) = delete;
  ScramServer& operator=(const ScramServer&) = delete;
  ~ScramServer();

  // Client-first (SASLInitialResponse data) -> server-first (AuthenticationSASLContinue data).
  [[nodiscard]] core::Result<std::string> on_client_first(std::string_view msg);
  // Client-final (SASLResponse data) -> server-final "v=..." (AuthenticationSASLFinal data).
  // An error means the client is not authenticated; failure() says why.
  [[nodiscard]] core::Result<std::string> on_client_final(std::string_view msg);

  [[nodiscard]] bool succeeded() const { return state_ == State::Done; }
  [[nodiscard]] ScramFailure failure() const { return failure_; }
  // After success: ClientKey (ClientProof XOR ClientSignature) and the secret's ServerKey, with
  // which ScramClient::with_keys can log in to a server holding the same secret.
  [[nodiscard]] const ScramKeys* recovered_keys() const {
    return state_ == State::Done ? &recovered_ : nullptr;
  }
  [[nodiscard]] const ScramSecret& secret() const { return secret_; }

 private:
  enum class State : std::uint8_t { Start, SentFirst, Done, Failed };

  core::Error fail(ScramFailure why, std::string message);

  ScramSecret secret_;
  Options opts_;
  bool doomed_ = false;
  State state_ = State::Start;
  ScramFailure failure_ = ScramFailure::None;
  std::string gs2_header_;  // as the client sent it
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  ScramKeys recovered_{};
};

}  // namespace sluice::proto::auth
