// install_tls: configuration -> net::TlsContext for both sides, keeping the old one on errors.
#include "session/tls_setup.h"

#include <filesystem>

#include "core/log.h"
#include "net/tls.h"

namespace sluice::session {
namespace {

// Relative to the config file's directory, else (as PgBouncer) to the working directory.
std::string resolve(const config::Config& cfg, const std::string& file) {
  if (file.empty()) return file;
  std::filesystem::path p(file);
  if (!p.is_relative()) return file;
  std::filesystem::path near = std::filesystem::path(cfg.base_dir) / p;
  std::error_code ec;
  if (std::filesystem::exists(near, ec) || !std::filesystem::exists(p, ec)) return near.string();
  return file;
}

void install_side(net::TlsStore& store, net::TlsSide side, bool enabled,
                  const net::TlsOptions& opts, std::string_view what) {
  if (!enabled) {
    store.set(side, nullptr);
    return;
  }
  auto ctx = net::TlsContext::create(side, opts);
  if (!ctx) {
    bool had = store.get(side) != nullptr;
    core::log(core::LogLevel::Error, "{} TLS: {}{}", what, ctx.error(),
              had ? "; keeping the previous TLS settings" : "; TLS is not available");
    return;
  }
  store.set(side, std::move(ctx.value()));
}

}  // namespace

void install_tls(const config::Config& cfg, net::TlsStore& store) {
  const auto& st = cfg.settings;
  net::TlsOptions c;
  c.key_file = resolve(cfg, st.client_tls_key_file);
  c.cert_file = resolve(cfg, st.client_tls_cert_file);
  c.ca_file = resolve(cfg, st.client_tls_ca_file);
  c.protocols = st.client_tls_protocols;
  c.ciphers = st.client_tls_ciphers;
  c.tls13_ciphers = st.client_tls13_ciphers;
  install_side(store, net::TlsSide::Accept, st.client_tls_sslmode != config::SslMode::Disable, c,
               "client");
  if (st.client_tls_sslmode >= config::SslMode::VerifyCa && c.ca_file.empty()) {
    core::log(core::LogLevel::Warning,
              "client_tls_sslmode {} without client_tls_ca_file: no client certificate can be "
              "verified, every TLS client is refused",
              config::to_string(st.client_tls_sslmode));
  }

  net::TlsOptions s;
  s.key_file = resolve(cfg, st.server_tls_key_file);
  s.cert_file = resolve(cfg, st.server_tls_cert_file);
  s.ca_file = resolve(cfg, st.server_tls_ca_file);
  s.protocols = st.server_tls_protocols;
  s.ciphers = st.server_tls_ciphers;
  s.tls13_ciphers = st.server_tls13_ciphers;
  install_side(store, net::TlsSide::Connect, st.server_tls_sslmode != config::SslMode::Disable, s,
               "server");
}

}  // namespace sluice::session
