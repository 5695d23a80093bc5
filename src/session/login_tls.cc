// Login TLS: SSLRequest answered 'S', direct TLS (first byte 0x16, ALPN), the handshake.
#include <sys/socket.h>

#include <cerrno>

#include "core/log.h"
#include "net/tls.h"
#include "proto/codes.h"
#include "session/auth_state.h"
#include "session/login.h"
#include "session/session_worker.h"

namespace sluice::session {

bool Login::tls_offered() const {
  if (host_.login_unix_socket())
    return false;  // as Postgres and PgBouncer: no TLS over unix sockets
  if (worker_.cfg().settings.client_tls_sslmode == config::SslMode::Disable) return false;
  return worker_.registries().tls.get(net::TlsSide::Accept) != nullptr;
}

// Before anything is read: a client that starts with a TLS record (libpq 17
// sslnegotiation=direct) gets TLS at once. The byte is peeked so that OpenSSL reads it itself.
bool Login::peek_direct_tls() {
  if (!tls_offered()) {
    auth_->first_byte_checked = true;
    return true;
  }
  if (!io_.readable) return false;
  char b = 0;
  ssize_t n = ::recv(io_.fd, &b, 1, MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    io_.readable = false;
    return false;
  }
  if (n <= 0) {
    close("client unexpected eof");
    return false;
  }
  auth_->first_byte_checked = true;
  if (b != net::kTlsHandshakeByte) return true;
  return start_tls(true);
}

bool Login::start_tls(bool direct) {
  auto ctx = worker_.registries().tls.get(net::TlsSide::Accept);
  if (ctx == nullptr) {
    close("TLS is not available");
    return false;
  }
  bool verify = worker_.cfg().settings.client_tls_sslmode >= config::SslMode::VerifyCa;
  // A client certificate is asked for whenever there is a CA to check it against (cert
  // authentication needs it); verify-ca and verify-full refuse clients without a valid one
  // (without client_tls_ca_file nothing verifies: every client is refused, fail closed).
  auto conn = net::TlsConn::accept(ctx, io_.fd, ctx->has_ca() || verify, verify);
  if (!conn) {
    core::log(core::LogLevel::Warning, "{} {}", log_prefix(), conn.error());
    close("TLS setup failed");
    return false;
  }
  io_.tls = std::move(conn.value());
  auth_->direct_tls = direct;
  io_.readable = true;  // the handshake reads whatever is already there
  return true;
}

bool Login::step_tls_handshake() {
  switch (io_.tls->handshake()) {
    case net::TlsConn::Step::WantIo:
      io_.readable = false;
      return false;
    case net::TlsConn::Step::Failed:
      if (worker_.cfg().settings.log_pooler_errors) {
        core::log(core::LogLevel::Log, "{} TLS handshake failed: {}", log_prefix(),
                  io_.tls->error());
      }
      close("TLS handshake failed");
      return false;
    case net::TlsConn::Step::Done:
      break;
  }
  if (auth_->direct_tls && !io_.tls->alpn_postgresql()) {
    // Postgres 17 requires ALPN on direct TLS, so that other protocols cannot be confused
    // with ours.
    close("direct TLS connection without ALPN", proto::sqlstate::kProtocolViolation,
          "direct SSL connection without ALPN protocol negotiation extension");
    return false;
  }
  // OpenSSL may already hold the startup packet: no edge will announce it.
  io_.readable = true;
  return true;
}

}  // namespace sluice::session
