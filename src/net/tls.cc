// TLS contexts (files, protocol versions, ciphers, ALPN) and non-blocking sessions over OpenSSL 3.
#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace sluice::net {
namespace {

constexpr unsigned char kAlpnPostgres[] = "\x0apostgresql";
constexpr std::size_t kAlpnPostgresLen = sizeof kAlpnPostgres - 1;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// OpenSSL's reason for the most recent error on this thread, without the numeric prefix.
std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  if (code == 0) return "unknown error";
  const char* r = ERR_reason_error_string(code);
  std::string out = r != nullptr ? r : "error " + std::to_string(ERR_GET_REASON(code));
  ERR_clear_error();
  return out;
}

// "secure", "all", "tlsv1.2,tlsv1.3", ... -> min/max versions and the versions to switch off.
bool parse_protocols(std::string_view text, int& min_v, int& max_v, std::uint64_t& no_opts,
                     std::string& err) {
  constexpr std::array<std::pair<std::string_view, int>, 4> kNames = {{
      {"tlsv1.0", TLS1_VERSION},
      {"tlsv1.1", TLS1_1_VERSION},
      {"tlsv1.2", TLS1_2_VERSION},
      {"tlsv1.3", TLS1_3_VERSION},
  }};
  unsigned mask = 0;
  std::string s = lower(text);
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t j = s.find_first_of(",: \t", i);
    if (j == std::string::npos) j = s.size();
    std::string_view tok(s.data() + i, j - i);
    i = j + 1;
    if (tok.empty()) continue;
    if (tok == "all" || tok == "legacy") {
      mask |= 0xfu;
    } else if (tok == "secure" || tok == "default" || tok == "normal") {
      mask |= 0xcu;
    } else {
      bool found = false;
      for (std::size_t k = 0; k < kNames.size(); ++k) {
        if (tok == kNames[k].first || (k == 0 && tok == "tlsv1")) {
          mask |= 1u << k;
          found = true;
        }
      }
      if (!found) {
        err = "unknown TLS protocol: " + std::string(tok);
        return false;
      }
    }
  }
  if (mask == 0) mask = 0xcu;
  int lo = -1;
  int hi = -1;
  for (int k = 0; k < 4; ++k) {
    if ((mask & (1u << k)) != 0) {
      if (lo < 0) lo = k;
      hi = k;
    }
  }
  min_v = kNames[static_cast<std::size_t>(lo)].second;
  max_v = kNames[static_cast<std::size_t>(hi)].second;
  constexpr std::array<std::uint64_t, 4> kNo = {SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1,
                                                SSL_OP_NO_TLSv1_2, SSL_OP_NO_TLSv1_3};
  no_opts = 0;
  for (int k = lo; k <= hi; ++k) {
    if ((mask & (1u << k)) == 0) no_opts |= kNo[static_cast<std::size_t>(k)];
  }
  return true;
}

// TLS 1.3 suites as names (comma or colon separated); OpenSSL silently drops unknown names, so
// they are checked here.
bool tls13_suites(std::string_view text, std::string& out) {
  constexpr std::array<std::string_view, 5> kKnown = {
      "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256",
      "TLS_AES_128_CCM_8_SHA256", "TLS_AES_128_CCM_SHA256"};
  out.clear();
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = text.find_first_of(",: ", i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view tok = text.substr(i, j - i);
    i = j + 1;
    if (tok.empty()) continue;
    bool ok = false;
    for (auto k : kKnown)
      ok = ok || k == tok;
    if (!ok) return false;
    if (!out.empty()) out.push_back(':');
    out.append(tok);
  }
  return !out.empty();
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, kAlpnPostgres, kAlpnPostgresLen, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
  }
  // Like Postgres: a client naming other protocols only is not speaking to us.
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// RFC 5929 tls-server-end-point: the certificate's hash, SHA-256 when it is signed with MD5/SHA-1.
std::string compute_endpoint_hash(X509* cert) {
  int md_nid = NID_undef;
  if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, nullptr) == 0) return {};
  const EVP_MD* md = nullptr;
  if (md_nid == NID_md5 || md_nid == NID_sha1) {
    md = EVP_sha256();
  } else if (md_nid != NID_undef) {
    md = EVP_get_digestbynid(md_nid);
  }
  if (md == nullptr) return {};  // e.g. Ed25519: no channel binding type defined
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, md, buf, &len) != 1) return {};
  return std::string(reinterpret_cast<char*>(buf), len);
}

bool is_ip_literal(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

core::Result<std::shared_ptr<const TlsContext>> TlsContext::create(TlsSide side,
                                                                   const TlsOptions& opts) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(side == TlsSide::Accept ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return core::Error{"cannot create TLS context: " + openssl_reason()};
  std::shared_ptr<TlsContext> c(new TlsContext(ctx, side, opts));

  int min_v = 0;
  int max_v = 0;
  std::uint64_t no_opts = 0;
  std::string err;
  if (!parse_protocols(opts.protocols, min_v, max_v, no_opts, err)) return core::Error{err};
  if (min_v < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);  // old versions need it
  if (SSL_CTX_set_min_proto_version(ctx, min_v) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, max_v) != 1) {
    return core::Error{"cannot set TLS protocol versions: " + openssl_reason()};
  }
  SSL_CTX_set_options(ctx, no_opts | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(ctx, 1);

  std::string ciphers = lower(opts.ciphers);
  if (ciphers == "all") {
    if (SSL_CTX_set_cipher_list(ctx, "ALL") != 1) {
      return core::Error{"failed to set the TLS cipher list: " + openssl_reason()};
    }
  } else if (!ciphers.empty() && ciphers != "default" && ciphers != "secure" && ciphers != "fast" &&
             ciphers != "normal") {
    if (SSL_CTX_set_cipher_list(ctx, opts.ciphers.c_str()) != 1) {
      return core::Error{"failed to set the TLS cipher list '" + opts.ciphers +
                         "': " + openssl_reason()};
    }
  }
  if (!opts.tls13_ciphers.empty()) {
    std::string suites;
    if (!tls13_suites(opts.tls13_ciphers, suites) ||
        SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
      ERR_clear_error();
      return core::Error{"failed to set the TLSv1.3 cipher suites: '" + opts.tls13_ciphers + "'"};
    }
  }

  if (!opts.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, opts.cert_file.c_str()) != 1) {
      return core::Error{"cannot load certificate file " + opts.cert_file + ": " +
                         openssl_reason()};
    }
  }
  if (!opts.key_file.empty()) {
    if (SSL_CTX_use_PrivateKey_file(ctx, opts.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return core::Error{"cannot load key file " + opts.key_file + ": " + openssl_reason()};
    }
  }
  if (!opts.cert_file.empty() || !opts.key_file.empty()) {
    if (opts.cert_file.empty() || opts.key_file.empty()) {
      return core::Error{"a certificate needs both a key file and a certificate file"};
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return core::Error{"key file " + opts.key_file + " does not match certificate " +
                         opts.cert_file};
    }
    if (X509* cert = SSL_CTX_get0_certificate(ctx)) {
      c->endpoint_hash_ = compute_endpoint_hash(cert);
      c->has_cert_ = true;
    }
  }
  if (side == TlsSide::Accept && opts.cert_file.empty()) {
    return core::Error{"accepting TLS needs a key file and a certificate file"};
  }

  if (!opts.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, opts.ca_file.c_str(), nullptr) != 1) {
      return core::Error{"cannot load CA file " + opts.ca_file + ": " + openssl_reason()};
    }
    if (side == TlsSide::Accept) {
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(opts.ca_file.c_str())) {
        SSL_CTX_set_client_CA_list(ctx, names);
      }
      ERR_clear_error();
    }
  } else if (side == TlsSide::Connect) {
    (void)SSL_CTX_set_default_verify_paths(ctx);
    ERR_clear_error();
  }

  if (side == TlsSide::Accept) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    (void)SSL_CTX_set_num_tickets(ctx, 0);
    (void)SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  }
  return std::shared_ptr<const TlsContext>(std::move(c));
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

core::Result<std::unique_ptr<TlsConn>> TlsConn::accept(std::shared_ptr<const TlsContext> ctx,
                                                       int fd, bool request_cert,
                                                       bool require_cert) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx->raw());
  if (ssl == nullptr) return core::Error{"cannot create TLS session: " + openssl_reason()};
  std::unique_ptr<TlsConn> c(new TlsConn(std::move(ctx), ssl));
  if (SSL_set_fd(ssl, fd) != 1) return core::Error{"cannot attach TLS: " + openssl_reason()};
  SSL_set_accept_state(ssl);
  int mode = SSL_VERIFY_NONE;
  if (request_cert || require_cert) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (require_cert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_set_verify(ssl, mode, nullptr);
  return c;
}

core::Result<std::unique_ptr<TlsConn>> TlsConn::connect(std::shared_ptr<const TlsContext> ctx,
                                                        int fd, const std::string& host,
                                                        bool verify_ca, bool verify_name) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx->raw());
  if (ssl == nullptr) return core::Error{"cannot create TLS session: " + openssl_reason()};
  std::unique_ptr<TlsConn> c(new TlsConn(std::move(ctx), ssl));
  if (SSL_set_fd(ssl, fd) != 1) return core::Error{"cannot attach TLS: " + openssl_reason()};
  SSL_set_connect_state(ssl);
  bool ip = is_ip_literal(host);
  if (!host.empty() && !ip) (void)SSL_set_tlsext_host_name(ssl, host.c_str());
  SSL_set_verify(ssl, verify_ca || verify_name ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (verify_name) {
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str())
                : SSL_set1_host(ssl, host.c_str());
    if (ok != 1) return core::Error{"cannot check the server name " + host};
  }
  return c;
}

TlsConn::~TlsConn() {
  SSL_free(ssl_);
}

TlsConn::Step TlsConn::handshake() {
  if (established_) return Step::Done;
  ERR_clear_error();
  errno = 0;
  int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    established_ = true;
    return Step::Done;
  }
  int e = SSL_get_error(ssl_, ret);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Step::WantIo;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
    error_ = errno != 0 ? std::strerror(errno) : "connection closed during the TLS handshake";
  } else {
    error_ = openssl_reason();
  }
  long v = SSL_get_verify_result(ssl_);
  if (v != X509_V_OK) error_ += std::string(": ") + X509_verify_cert_error_string(v);
  return Step::Failed;
}

IoResult TlsConn::fail_io(int ret, const char* what) {
  int e = SSL_get_error(ssl_, ret);
  if (e == SSL_ERROR_ZERO_RETURN) return IoResult{IoResult::Kind::Eof, 0, 0};
  if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
    int err = errno != 0 ? errno : EPIPE;
    if (err == ECONNRESET || err == EPIPE) return IoResult{IoResult::Kind::Eof, 0, 0};
    return IoResult{IoResult::Kind::Error, 0, err};
  }
  error_ = std::string(what) + ": " + openssl_reason();
  return IoResult{IoResult::Kind::Error, 0, EPROTO};
}

IoResult TlsConn::read(char* p, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    ERR_clear_error();
    errno = 0;
    std::size_t r = 0;
    int ret = SSL_read_ex(ssl_, p + got, n - got, &r);
    if (ret == 1) {
      got += r;
      continue;
    }
    int e = SSL_get_error(ssl_, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      // OpenSSL saw EAGAIN: nothing decrypted is left inside it, the next edge will come.
      if (got > 0) return IoResult{IoResult::Kind::Data, got, 0};
      return IoResult{IoResult::Kind::WouldBlock, 0, 0};
    }
    if (got > 0) return IoResult{IoResult::Kind::Data, got, 0};  // the end comes next call
    return fail_io(ret, "TLS read");
  }
  // Buffer full: more may be decrypted or buffered inside OpenSSL; the caller reads again.
  return IoResult{IoResult::Kind::Data, got, 0};
}

IoResult TlsConn::write(const char* p, std::size_t n) {
  if (n == 0) return IoResult{IoResult::Kind::Data, 0, 0};
  ERR_clear_error();
  errno = 0;
  std::size_t w = 0;
  int ret = SSL_write_ex(ssl_, p, n, &w);
  if (ret == 1) return IoResult{IoResult::Kind::Data, w, 0};
  int e = SSL_get_error(ssl_, ret);
  if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
    return IoResult{IoResult::Kind::WouldBlock, 0, 0};
  }
  IoResult r = fail_io(ret, "TLS write");
  if (r.kind == IoResult::Kind::Eof) r = IoResult{IoResult::Kind::Error, 0, EPIPE};
  return r;
}

void TlsConn::shutdown() {
  if (!established_) return;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string TlsConn::describe() const {
  const char* cipher = SSL_get_cipher_name(ssl_);
  return std::string(SSL_get_version(ssl_)) + "/" + (cipher != nullptr ? cipher : "?");
}

bool TlsConn::alpn_postgresql() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return len == kAlpnPostgresLen - 1 && std::memcmp(data, kAlpnPostgres + 1, len) == 0;
}

bool TlsConn::peer_verified() const {
  return SSL_get0_peer_certificate(ssl_) != nullptr && SSL_get_verify_result(ssl_) == X509_V_OK;
}

std::string TlsConn::peer_common_name() const {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return {};
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  if (out.find('\0') != std::string::npos) return {};  // embedded NUL: refuse the name
  return out;
}

void TlsStore::set(TlsSide side, std::shared_ptr<const TlsContext> ctx) {
  std::lock_guard<std::mutex> g(mu_);
  (side == TlsSide::Accept ? accept_ : connect_) = std::move(ctx);
}

std::shared_ptr<const TlsContext> TlsStore::get(TlsSide side) const {
  std::lock_guard<std::mutex> g(mu_);
  return side == TlsSide::Accept ? accept_ : connect_;
}

}  // namespace sluice::net
