// SCRAM-SHA-256 client exchange.
#include "proto/auth/scram_client.h"

#include <openssl/crypto.h>

#include "proto/auth/base64.h"

namespace sluice::proto::auth {

ScramClient ScramClient::with_password(std::string_view password, Options opts) {
  return ScramClient(std::string(password), false, ScramKeys{}, std::move(opts));
}

ScramClient ScramClient::with_keys(const ScramKeys& keys, Options opts) {
  return ScramClient(std::string(), true, keys, std::move(opts));
}

ScramClient::ScramClient(std::string password, bool have_keys, const ScramKeys& keys, Options opts)
    : opts_(std::move(opts)), password_(std::move(password)), have_keys_(have_keys), keys_(keys) {}

ScramClient::~ScramClient() {
  OPENSSL_cleanse(password_.data(), password_.size());
  OPENSSL_cleanse(keys_.client_key.data(), keys_.client_key.size());
  OPENSSL_cleanse(keys_.server_key.data(), keys_.server_key.size());
}

core::Error ScramClient::fail(std::string message) {
  state_ = State::Failed;
  return core::Error{std::move(message)};
}

core::Result<std::string> ScramClient::client_first() {
  if (state_ != State::Start) return fail("SCRAM client-first requested twice");
  if (opts_.cbind == CbindFlag::TlsServerEndPoint && opts_.cbind_data.empty()) {
    return fail("SCRAM channel binding requested without channel-binding data");
  }
  if (opts_.nonce.empty()) {
    auto nonce = scram_nonce();
    if (!nonce) return fail(nonce.error());
    client_nonce_ = std::move(*nonce);
  } else {
    if (!scram_printable(opts_.nonce)) return fail("invalid fixed SCRAM nonce");
    client_nonce_ = opts_.nonce;
  }
  client_first_bare_ = "n=" + scram_encode_saslname(opts_.user) + ",r=" + client_nonce_;
  state_ = State::SentFirst;
  return std::string(gs2_header(opts_.cbind)) + client_first_bare_;
}

core::Result<std::string> ScramClient::on_server_first(std::string_view msg) {
  if (state_ != State::SentFirst) return fail("unexpected SCRAM server-first message");
  auto sf = parse_server_first(msg);
  if (!sf) return fail(sf.error());
  if (sf->nonce.size() <= client_nonce_.size() || !sf->nonce.starts_with(client_nonce_)) {
    return fail("invalid SCRAM response: nonce mismatch");
  }
  if (!have_keys_) {
    auto keys = scram_derive_keys(password_, sf->salt, sf->iterations);
    if (!keys) return fail(keys.error());
    keys_ = *keys;
  }

  std::string cbind_input(gs2_header(opts_.cbind));
  if (opts_.cbind == CbindFlag::TlsServerEndPoint) cbind_input += opts_.cbind_data;
  std::string without_proof = "c=" + base64_encode(cbind_input) + ",r=";
  without_proof += sf->nonce;

  std::string auth_message = client_first_bare_;
  auth_message += ',';
  auth_message += msg;
  auth_message += ',';
  auth_message += without_proof;

  // ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage)
  ScramKey stored{};
  ScramKey client_signature{};
  if (!scram_sha256(keys_.client_key, stored) ||
      !scram_hmac(stored, auth_message, client_signature) ||
      !scram_hmac(keys_.server_key, auth_message, server_signature_)) {
    return fail("SCRAM computation failed in libcrypto");
  }
  ScramKey proof{};
  for (std::size_t i = 0; i < kScramKeyLen; ++i) {
    proof[i] = keys_.client_key[i] ^ client_signature[i];
  }
  state_ = State::SentFinal;
  return without_proof + ",p=" + base64_encode(proof);
}

core::Result<std::monostate> ScramClient::on_server_final(std::string_view msg) {
  if (state_ != State::SentFinal) return fail("unexpected SCRAM server-final message");
  auto sf = parse_server_final(msg);
  if (!sf) return fail(sf.error());
  if (!sf->error.empty()) return fail("SCRAM error from server: " + std::string(sf->error));
  if (!scram_key_equal(sf->verifier, server_signature_)) {
    return fail("invalid SCRAM server signature: the server does not know the password");
  }
  state_ = State::Done;
  return std::monostate{};
}

}  // namespace sluice::proto::auth
