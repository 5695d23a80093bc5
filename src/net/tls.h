// TLS with OpenSSL 3: contexts built from certificate files, one non-blocking session per socket.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/result.h"
#include "net/socket.h"

namespace sluice::net {

// Which end of the handshake a context serves: Accept for clients connecting to sluice,
// Connect for sluice's own connections to servers.
enum class TlsSide : std::uint8_t { Accept, Connect };

// Everything a context is built from (PgBouncer's *_tls_* settings, without the mode).
struct TlsOptions {
  std::string key_file;
  std::string cert_file;
  std::string ca_file;
  std::string protocols = "secure";  // secure, all, legacy, default, or tlsv1.0..tlsv1.3 list
  std::string ciphers = "default";   // OpenSSL syntax; default/secure/fast/normal, all
  std::string tls13_ciphers;         // empty: OpenSSL's TLS 1.3 defaults
  bool operator==(const TlsOptions&) const = default;
};

// One SSL_CTX, immutable once built. Sessions keep the context they started with alive, so a
// reload only changes what new handshakes use.
class TlsContext {
 public:
  // Errors name the setting or file that is wrong; nothing secret is in them.
  [[nodiscard]] static core::Result<std::shared_ptr<const TlsContext>> create(
      TlsSide side, const TlsOptions& opts);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  [[nodiscard]] SSL_CTX* raw() const { return ctx_; }
  [[nodiscard]] TlsSide side() const { return side_; }
  [[nodiscard]] const TlsOptions& options() const { return opts_; }
  [[nodiscard]] bool has_certificate() const { return has_cert_; }
  [[nodiscard]] bool has_ca() const { return !opts_.ca_file.empty(); }
  // RFC 5929 tls-server-end-point data of our own certificate (empty without one).
  [[nodiscard]] const std::string& endpoint_hash() const { return endpoint_hash_; }

 private:
  TlsContext(SSL_CTX* ctx, TlsSide side, TlsOptions opts)
      : ctx_(ctx), side_(side), opts_(std::move(opts)) {}
  SSL_CTX* ctx_;
  TlsSide side_;
  TlsOptions opts_;
  std::string endpoint_hash_;
  bool has_cert_ = false;
};

// One TLS session on a non-blocking socket. Never used from two threads at once; it may move
// between threads with its connection.
class TlsConn {
 public:
  enum class Step : std::uint8_t { Done, WantIo, Failed };

  // Server end for a client connection. `request_cert`: ask for a client certificate and verify
  // it if one is sent; `require_cert`: fail the handshake without a valid one.
  [[nodiscard]] static core::Result<std::unique_ptr<TlsConn>> accept(
      std::shared_ptr<const TlsContext> ctx, int fd, bool request_cert, bool require_cert);
  // Client end toward a server. `verify_ca`: the chain must verify against the CA file;
  // `verify_name`: the certificate must also name `host` (DNS name or IP address).
  [[nodiscard]] static core::Result<std::unique_ptr<TlsConn>> connect(
      std::shared_ptr<const TlsContext> ctx, int fd, const std::string& host, bool verify_ca,
      bool verify_name);
  ~TlsConn();
  TlsConn(const TlsConn&) = delete;
  TlsConn& operator=(const TlsConn&) = delete;

  // Drives the handshake; WantIo means: call again on the next socket event.
  Step handshake();
  [[nodiscard]] bool established() const { return established_; }
  // Why the handshake or a read/write failed (OpenSSL's reason, verification result).
  [[nodiscard]] const std::string& error() const { return error_; }

  // Like recv_some/send_some. Reads decrypt until `n` bytes or until OpenSSL needs the socket.
  IoResult read(char* p, std::size_t n);
  IoResult write(const char* p, std::size_t n);
  // Best effort close_notify (non-blocking; nothing is waited for).
  void shutdown();

  // "TLSv1.3/TLS_AES_256_GCM_SHA384"
  [[nodiscard]] std::string describe() const;
  // The client asked for ALPN "postgresql" and it was selected.
  [[nodiscard]] bool alpn_postgresql() const;
  // A peer certificate was presented and verified against the CA file.
  [[nodiscard]] bool peer_verified() const;
  // The peer certificate's subject CommonName; empty if absent or not plain text.
  [[nodiscard]] std::string peer_common_name() const;
  // Channel binding data for SCRAM-SHA-256-PLUS on an accepted session (our certificate's hash).
  [[nodiscard]] const std::string& cbind_data() const { return ctx_->endpoint_hash(); }
  [[nodiscard]] const TlsContext& context() const { return *ctx_; }

 private:
  TlsConn(std::shared_ptr<const TlsContext> ctx, SSL* ssl) : ctx_(std::move(ctx)), ssl_(ssl) {}
  IoResult fail_io(int ret, const char* what);

  std::shared_ptr<const TlsContext> ctx_;
  SSL* ssl_;
  bool established_ = false;
  std::string error_;
};

// The contexts new handshakes use; replaced on reload. Thread-safe. One per process, owned by
// the app (pool::Registries).
class TlsStore {
 public:
  TlsStore() = default;
  TlsStore(const TlsStore&) = delete;
  TlsStore& operator=(const TlsStore&) = delete;
  void set(TlsSide side, std::shared_ptr<const TlsContext> ctx);
  [[nodiscard]] std::shared_ptr<const TlsContext> get(TlsSide side) const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const TlsContext> accept_;
  std::shared_ptr<const TlsContext> connect_;
};

// The first byte of a TLS handshake record: a client that starts TLS without SSLRequest.
inline constexpr char kTlsHandshakeByte = 0x16;

}  // namespace sluice::net
