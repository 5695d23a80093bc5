// What a server connection carries only while it connects, negotiates TLS and logs in.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "proto/auth/scram_client.h"

namespace sluice::pool {

class ServerConn;

struct LoginState {
  LoginState() = default;
  LoginState(const LoginState&) = delete;
  LoginState& operator=(const LoginState&) = delete;
  // An answer still on its way finds the connection gone.
  ~LoginState() {
    if (dns_wait) *dns_wait = nullptr;
  }

  // While the host name is being looked up: the resolver's answer reaches the connection
  // through this (ServerConn::on_resolved), unless the login ended first.
  std::shared_ptr<ServerConn*> dns_wait;
  std::vector<std::pair<sockaddr_storage, socklen_t>> addrs;  // resolved, tried in order
  std::size_t next_addr = 0;
  std::string unix_path;
  std::string host;  // as configured: the name verify-full checks and SNI sends
  std::vector<std::pair<std::string, std::string>> params;  // ParameterStatus at login
  std::optional<proto::auth::ScramClient> scram;
  core::Micros deadline = 0;

  // TLS (server_tls_sslmode, fixed for this login)
  enum class Tls : std::uint8_t { None, AwaitAnswer, Handshake };
  config::SslMode sslmode = config::SslMode::Disable;
  Tls tls = Tls::None;
  bool tls_decided = false;  // negotiated (or refused where allowed): send the startup packet
  bool tls_retry = false;    // sslmode allow: the plaintext login was refused, now with TLS
  bool auth_ok = false;      // AuthenticationOk seen
};

}  // namespace sluice::pool
