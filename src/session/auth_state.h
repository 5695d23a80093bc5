// What a client carries only while it logs in: TLS negotiation, the method, the secret, SCRAM.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "proto/auth/md5.h"
#include "proto/auth/scram_server.h"

namespace sluice::session {

class AuthQuery;

struct AuthState {
  // How the password exchange runs (password methods only).
  enum class Method : std::uint8_t { Cleartext, Md5, Scram };
  // What decides whether the user gets in: auth_type, or the matching auth_hba_file rule.
  enum class Check : std::uint8_t { Any, Trust, Password, Md5, Scram, Cert, Peer };

  AuthState() = default;
  ~AuthState();  // abandons an auth_query lookup still in flight (auth_query.cc)
  AuthState(const AuthState&) = delete;
  AuthState& operator=(const AuthState&) = delete;

  // Before the startup packet: whether the first byte was looked at (direct TLS), and how TLS
  // started.
  bool first_byte_checked = false;
  bool direct_tls = false;

  Check check = Check::Md5;
  int hba_line = 0;  // the auth_hba_file rule that chose `check` (0: auth_type)
  std::string map;   // its map= option (cert, peer)

  Method method = Method::Cleartext;
  bool user_known = false;
  std::string stored;  // the auth file or auth_query secret: plaintext, md5 hash or SCRAM secret
  proto::auth::Md5Salt salt{};
  std::optional<proto::auth::ScramServer> scram;
  bool scram_started = false;
  bool scram_plus_offered = false;  // SCRAM-SHA-256-PLUS was offered (TLS with a certificate)
  AuthQuery* lookup = nullptr;      // auth_query in flight
};

}  // namespace sluice::session
