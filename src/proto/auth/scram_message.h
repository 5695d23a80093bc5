// The four SCRAM messages: strict, bounded parsers (views into the input) and the gs2 header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "proto/auth/scram.h"

namespace sluice::proto::auth {

// The gs2 channel-binding flag of the client-first message.
enum class CbindFlag : std::uint8_t {
  NotSupported,       // "n": the client does not support channel binding
  ClientOnly,         // "y": the client supports it but thinks the server does not
  TlsServerEndPoint,  // "p=tls-server-end-point" (RFC 5929)
};

// The gs2 header a client sends for `flag` (no authzid: Postgres does not support one).
[[nodiscard]] std::string_view gs2_header(CbindFlag flag);

// "n,,n=<user>,r=<nonce>[,ext...]" with "y,," or "p=<cb-name>,," instead of "n,,".
struct ClientFirstMessage {
  CbindFlag flag = CbindFlag::NotSupported;
  std::string_view cbind_name;  // the cb-name after "p=", else empty
  std::string_view gs2_header;  // as sent, including the second ','
  std::string_view bare;        // client-first-message-bare: everything after gs2_header
  std::string_view user;        // n= value, still saslname-encoded (Postgres ignores it)
  std::string_view nonce;
};
// Rejects an authzid ("a="), a mandatory extension ("m"), a badly encoded user name, a
// non-printable or empty nonce and malformed extensions. Channel binding *policy* (which flag
// is acceptable) is the server's business; any syntactically valid cb-name is returned.
[[nodiscard]] core::Result<ClientFirstMessage> parse_client_first(std::string_view msg);

// "r=<nonce>,s=<base64 salt>,i=<iterations>"; extensions are rejected, as libpq does.
struct ServerFirstMessage {
  std::string_view nonce;
  std::string salt;  // decoded, non-empty
  int iterations = 0;
};
[[nodiscard]] core::Result<ServerFirstMessage> parse_server_first(std::string_view msg);

// "c=<base64 cbind-input>,r=<nonce>[,ext...],p=<base64 proof>".
struct ClientFinalMessage {
  std::string cbind_input;         // decoded c=: the gs2 header plus channel-binding data
  std::string_view nonce;          // r=, the client nonce followed by the server's
  std::string_view without_proof;  // everything before ",p="; part of the AuthMessage
  ScramKey proof{};
};
[[nodiscard]] core::Result<ClientFinalMessage> parse_client_final(std::string_view msg);

// "v=<base64 ServerSignature>" or "e=<server-error-value>".
struct ServerFinalMessage {
  std::string_view error;  // non-empty for "e="
  ScramKey verifier{};     // valid when error is empty
};
[[nodiscard]] core::Result<ServerFinalMessage> parse_server_final(std::string_view msg);

// saslname encoding of a user name: ',' as "=2C" and '=' as "=3D".
[[nodiscard]] std::string scram_encode_saslname(std::string_view name);

}  // namespace sluice::proto::auth
