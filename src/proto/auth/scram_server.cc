// SCRAM-SHA-256 server exchange, with Postgres' channel-binding rules.
#include "proto/auth/scram_server.h"

#include <openssl/crypto.h>

#include "proto/auth/base64.h"

namespace sluice::proto::auth {

ScramServer::ScramServer(ScramSecret secret, Options opts)
    : secret_(std::move(secret)), opts_(std::move(opts)) {}

core::Result<ScramServer> ScramServer::with_password(std::string_view password, Options opts) {
  auto secret = make_scram_secret(password);
  if (!secret) return core::Error{secret.error()};
  return ScramServer(std::move(*secret), std::move(opts));
}

core::Result<ScramServer> ScramServer::mock(std::string_view user, std::string_view mock_key,
                                            Options opts) {
  // HMAC(mock_key, user): stable for a user within a process, unpredictable without the key.
  ScramKey digest{};
  if (!scram_hmac(std::span<const std::uint8_t>(
                      reinterpret_cast<const std::uint8_t*>(mock_key.data()), mock_key.size()),
                  user, digest)) {
    return core::Error{"HMAC-SHA-256 failed in libcrypto"};
  }
  ScramSecret secret;
  secret.iterations = kScramDefaultIterations;
  secret.salt.assign(reinterpret_cast<const char*>(digest.data()), kScramDefaultSaltLen);
  ScramServer server(std::move(secret), std::move(opts));
  server.doomed_ = true;
  return server;
}

ScramServer::~ScramServer() {
  OPENSSL_cleanse(recovered_.client_key.data(), recovered_.client_key.size());
}

core::Error ScramServer::fail(ScramFailure why, std::string message) {
  state_ = State::Failed;
  failure_ = why;
  return core::Error{std::move(message)};
}

core::Result<std::string> ScramServer::on_client_first(std::string_view msg) {
  if (state_ != State::Start) {
    return fail(ScramFailure::Protocol, "unexpected SCRAM client-first message");
  }
  auto cf = parse_client_first(msg);
  if (!cf) return fail(ScramFailure::Protocol, cf.error());

  const bool offered = !opts_.cbind_data.empty();
  switch (cf->flag) {
    case CbindFlag::NotSupported:
    case CbindFlag::ClientOnly:
      if (opts_.plus_selected) {
        return fail(ScramFailure::Protocol,
                    "client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include "
                    "channel binding data");
      }
      if (cf->flag == CbindFlag::ClientOnly && offered) {
        return fail(ScramFailure::Protocol,
                    "SCRAM channel binding negotiation error: the client supports channel "
                    "binding but thinks the server does not, and this server does support it");
      }
      break;
    case CbindFlag::TlsServerEndPoint:
      if (!opts_.plus_selected) {
        return fail(ScramFailure::Protocol,
                    "client selected SCRAM-SHA-256 without channel binding, but the SCRAM "
                    "message includes channel binding data");
      }
      if (!offered) {
        return fail(ScramFailure::Protocol, "SCRAM channel binding is not supported here");
      }
      if (cf->cbind_name != kTlsServerEndPoint) {
        return fail(ScramFailure::Protocol, "unsupported SCRAM channel-binding type \"" +
                                                std::string(cf->cbind_name) + "\"");
      }
      break;
  }

  std::string server_nonce;
  if (opts_.nonce.empty()) {
    auto n = scram_nonce();
    if (!n) return fail(ScramFailure::Protocol, n.error());
    server_nonce = std::move(*n);
  } else {
    if (!scram_printable(opts_.nonce)) return fail(ScramFailure::Protocol, "invalid fixed nonce");
    server_nonce = opts_.nonce;
  }
  gs2_header_ = std::string(cf->gs2_header);
  if (cf->flag == CbindFlag::TlsServerEndPoint) gs2_header_ += opts_.cbind_data;
  client_first_bare_ = std::string(cf->bare);
  nonce_ = std::string(cf->nonce) + server_nonce;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(secret_.salt) +
                  ",i=" + std::to_string(secret_.iterations);
  state_ = State::SentFirst;
  return server_first_;
}

core::Result<std::string> ScramServer::on_client_final(std::string_view msg) {
  if (state_ != State::SentFirst) {
    return fail(ScramFailure::Protocol, "unexpected SCRAM client-final message");
  }
  auto cf = parse_client_final(msg);
  if (!cf) return fail(ScramFailure::Protocol, cf.error());
  // gs2_header_ already holds the channel-binding data for "p".
  if (cf->cbind_input != gs2_header_) {
    if (gs2_header_.starts_with("p=")) {
      return fail(ScramFailure::ChannelBinding, "SCRAM channel binding check failed");
    }
    return fail(ScramFailure::Protocol,
                "unexpected SCRAM channel-binding attribute in client-final-message");
  }
  if (cf->nonce != nonce_) {
    return fail(ScramFailure::Protocol, "invalid SCRAM response: nonce does not match");
  }

  std::string auth_message = client_first_bare_;
  auth_message += ',';
  auth_message += server_first_;
  auth_message += ',';
  auth_message += cf->without_proof;

  ScramKey client_signature{};
  ScramKey server_signature{};
  ScramKey stored{};
  if (!scram_hmac(secret_.stored_key, auth_message, client_signature) ||
      !scram_hmac(secret_.server_key, auth_message, server_signature)) {
    return fail(ScramFailure::Protocol, "SCRAM computation failed in libcrypto");
  }
  ScramKey client_key{};
  for (std::size_t i = 0; i < kScramKeyLen; ++i) {
    client_key[i] = cf->proof[i] ^ client_signature[i];
  }
  const bool hashed = scram_sha256(client_key, stored);
  // Evaluate the comparison even for a doomed exchange so both take the same time.
  const bool match = hashed && scram_key_equal(stored, secret_.stored_key);
  if (!match || doomed_) {
    OPENSSL_cleanse(client_key.data(), client_key.size());
    return fail(ScramFailure::Authentication, "password authentication failed");
  }
  recovered_.client_key = client_key;
  recovered_.server_key = secret_.server_key;
  OPENSSL_cleanse(client_key.data(), client_key.size());
  state_ = State::Done;
  return "v=" + base64_encode(server_signature);
}

}  // namespace sluice::proto::auth
