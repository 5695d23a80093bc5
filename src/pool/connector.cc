// Opening a server connection: resolve, non-blocking connect, TLS, startup, authentication, params.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "net/socket.h"
#include "net/tls.h"
#include "pool/login_state.h"
#include "pool/pool.h"
#include "pool/registries.h"
#include "pool/server_conn.h"
#include "proto/auth/md5.h"
#include "proto/auth/scram.h"
#include "proto/backend.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/reader.h"
#include "proto/writer.h"

namespace sluice::pool {
namespace {
constexpr std::uint32_t kMaxLoginFrame = 1u << 20;

std::string sockname_text(int fd) {
  sockaddr_storage ss{};
  socklen_t l = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &l) != 0) return "?";
  return net::format_peer(ss, l);
}

bool is_scram_secret(std::string_view s) {
  return s.rfind("SCRAM-SHA-256$", 0) == 0;
}

// An ErrorResponse body for a login failure decided here (waiting clients are told this).
std::string login_error_body(std::string_view msg,
                             const char* sqlstate = proto::sqlstate::kInvalidPassword) {
  std::string full;
  proto::write_error(full, {proto::Severity::Fatal, sqlstate, msg});
  return full.substr(proto::kHeaderLen);
}
}  // namespace

void ServerConn::start(std::shared_ptr<const ConnectTarget> t) {
  target = std::move(t);
  lifetime = target->lifetime;
  login = std::make_unique<LoginState>();
  login->sslmode = target->sslmode;
  login->deadline =
      target->connect_timeout > 0 ? worker->loop().now() + target->connect_timeout : 0;
  state = ServerState::Connecting;
  std::string host;
  if (!target->hosts.empty()) {
    unsigned n = static_cast<unsigned>(target->hosts.size());
    unsigned idx = target->load_balance ? pool->next_host.fetch_add(1) % n : 0;
    host = target->hosts[idx];
  }
  login->host = host;
  if (host.empty() || host[0] == '/') {
    std::string dir = host.empty() ? target->unix_dir : host;
    login->unix_path = dir + "/.s.PGSQL." + std::to_string(target->port);
    addr_text = login->unix_path;
  } else if (auto literal = net::numeric_address(host, target->port)) {
    login->addrs.push_back(*literal);  // an IP address needs no lookup
  } else if (worker->resolver != nullptr) {
    // The lookup runs on the resolver's thread; this worker goes on serving its clients. The
    // login deadline (server_connect_timeout) covers the wait.
    addr_text = host + ":" + std::to_string(target->port);
    login->dns_wait = std::make_shared<ServerConn*>(this);
    auto answer =
        worker->resolver->lookup(host, worker->loop(), [wait = login->dns_wait](net::DnsAnswer a) {
          if (*wait != nullptr) (*wait)->on_resolved(std::move(a));
        });
    if (answer) on_resolved(std::move(*answer));  // from the cache
    return;
  } else {
    auto r = net::resolve(host, target->port);  // no resolver: unit tests only
    if (!r) {
      core::log(core::LogLevel::Warning, "{} {}", log_prefix(), r.error());
      fail_connect("connect failed", false);
      return;
    }
    login->addrs = std::move(r.value());
  }
  try_next_address("");
}

void ServerConn::on_resolved(net::DnsAnswer answer) {
  if (closed_ || !login || state != ServerState::Connecting) return;
  login->dns_wait.reset();
  if (answer.status != net::DnsAnswer::Status::Ok) {
    // Like a refused connection: waiting clients wait for the next attempt (server_login_retry)
    // and, past their timeout, are told why.
    core::log(core::LogLevel::Warning, "{} DNS lookup failed: {}: {}", log_prefix(), login->host,
              answer.error);
    fail_connect("DNS lookup failed: " + login->host + ": " + answer.error, false);
    return;
  }
  login->addrs = std::move(answer.addrs);
  for (auto& a : login->addrs)
    net::set_port(a.first, target->port);
  try_next_address("");
}

void ServerConn::try_next_address(std::string_view last_error) {
  for (;;) {
    core::Result<int> fd = core::Error{"no address"};
    if (!login->unix_path.empty()) {
      if (login->next_addr++ > 0) break;
      fd = net::connect_unix_start(login->unix_path);
      addr_text = login->unix_path;
      unix_path = login->unix_path;
    } else {
      if (login->next_addr >= login->addrs.size()) break;
      auto& [ss, len] = login->addrs[login->next_addr++];
      addr = ss;
      addr_len = len;
      addr_text = net::format_peer(ss, len);
      fd = net::connect_tcp_start(ss, len);
    }
    if (!fd) {
      last_error = fd.error();
      continue;
    }
    if (io.fd >= 0) {
      worker->loop().remove(io.fd);
      ::close(io.fd);
    }
    io.fd = fd.value();
    io.hup = false;  // a fresh socket
    if (!worker->loop().add(io.fd, this)) {
      last_error = "epoll registration failed";
      continue;
    }
    return;  // wait for writability
  }
  if (!last_error.empty()) {
    core::log(core::LogLevel::Warning, "{} connect failed: {}", log_prefix(), last_error);
  }
  fail_connect("connect failed", false);
}

void ServerConn::on_connecting(std::uint32_t events) {
  if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
  int err = net::connect_result(io.fd);
  if (err != 0) {
    try_next_address(std::strerror(err));
    return;
  }
  if (login->unix_path.empty()) {
    net::set_tcp_options(io.fd, target->tcp_keepalive != 0, target->tcp_keepidle,
                         target->tcp_keepintvl, target->tcp_keepcnt, target->tcp_user_timeout,
                         target->tcp_socket_buffer);
  }
  local_text = login->unix_path.empty() ? sockname_text(io.fd) : "unix";
  if (worker->cfg().settings.log_connections) {
    core::log(core::LogLevel::Log, "{} new connection to server (from {})", log_prefix(),
              local_text);
  }
  begin_login();
}

void ServerConn::begin_login() {
  state = ServerState::Login;
  // TLS only over TCP. allow asks for it only after a plaintext login was refused.
  config::SslMode mode = login->sslmode;
  bool want_tls = login->unix_path.empty() && mode != config::SslMode::Disable &&
                  (mode != config::SslMode::Allow || login->tls_retry);
  if (want_tls && !login->tls_decided) {
    if (worker->registries().tls.get(net::TlsSide::Connect) == nullptr) {
      if (mode >= config::SslMode::Require || login->tls_retry) {
        core::log(core::LogLevel::Warning, "{} server TLS is not available (see earlier errors)",
                  log_prefix());
        fail_connect("server TLS is not available", false);
        return;
      }
    } else {
      login->tls = LoginState::Tls::AwaitAnswer;
      std::size_t mark = io.out.synth_mark();
      proto::MessageWriter(io.out.synth()).begin_untyped().u32(proto::kSslRequestCode).finish();
      (void)io.out.commit_synth(mark);
      if (!flush_out()) return;
      return;  // the one-byte answer arrives as input (on_login_io)
    }
  }
  std::vector<std::pair<std::string, std::string>> sp;
  sp.emplace_back("user", target->user);
  sp.emplace_back("database", target->dbname);
  for (const auto& kv : target->startup_params)
    sp.push_back(kv);
  std::size_t mark = io.out.synth_mark();
  proto::write_startup(io.out.synth(), sp);
  (void)io.out.commit_synth(mark);
  if (!flush_out()) return;
  on_login_io();
}

void ServerConn::check_deadlines(core::Micros now) {
  if (login) {
    // Connecting, logging in or running connect_query (state Internal): one login deadline.
    if (login->deadline != 0 && now >= login->deadline &&
        (state == ServerState::Connecting || state == ServerState::Login ||
         state == ServerState::Internal)) {
      fail_connect("connect timeout", false);
    }
    return;
  }
  if (state == ServerState::Internal && internal_deadline != 0 && now >= internal_deadline) {
    close("internal query timeout (" + internal_what_ + ")", false);
  }
}

void ServerConn::fail_connect(std::string_view reason, bool login_error, std::string error_body) {
  if (closed_) return;
  worker->pools->connect_failed(*pool, login_error, std::move(error_body), reason, target.get());
  close(reason, false);
}

void ServerConn::on_login_io() {
  if (login->tls == LoginState::Tls::AwaitAnswer) {
    // The one-byte answer to SSLRequest, read without buffering: nothing may follow it
    // before the handshake (a man in the middle could otherwise inject plaintext).
    char b = 0;
    ssize_t n = ::recv(io.fd, &b, 1, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      core::log(core::LogLevel::Warning, "{} server closed connection during TLS negotiation",
                log_prefix());
      fail_connect("server closed connection during TLS negotiation", false);
      return;
    }
    if (b == 'S') {
      char extra = 0;
      if (::recv(io.fd, &extra, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        core::log(core::LogLevel::Warning, "{} unexpected data after the server's SSL answer",
                  log_prefix());
        fail_connect("unexpected data after SSL answer", false);
        return;
      }
      auto ctx = worker->registries().tls.get(net::TlsSide::Connect);
      core::Result<std::unique_ptr<net::TlsConn>> conn = core::Error{"server TLS is not available"};
      if (ctx != nullptr) {
        conn = net::TlsConn::connect(std::move(ctx), io.fd, login->host,
                                     login->sslmode >= config::SslMode::VerifyCa,
                                     login->sslmode == config::SslMode::VerifyFull);
      }
      if (!conn) {
        core::log(core::LogLevel::Warning, "{} {}", log_prefix(), conn.error());
        fail_connect("TLS setup failed: " + conn.error(), false);
        return;
      }
      io.tls = std::move(conn.value());
      login->tls = LoginState::Tls::Handshake;
    } else if (b == 'N') {
      if (login->sslmode >= config::SslMode::Require || login->tls_retry) {
        core::log(core::LogLevel::Warning, "{} server does not support TLS", log_prefix());
        fail_connect("server refused SSL: server does not support TLS", false);
        return;
      }
      login->tls = LoginState::Tls::None;
      login->tls_decided = true;
      begin_login();
      return;
    } else {
      core::log(core::LogLevel::Warning, "{} bad answer to SSLRequest", log_prefix());
      fail_connect("bad answer to SSLRequest", false);
      return;
    }
  }
  if (login->tls == LoginState::Tls::Handshake) {
    switch (io.tls->handshake()) {
      case net::TlsConn::Step::WantIo:
        return;
      case net::TlsConn::Step::Failed:
        core::log(core::LogLevel::Warning, "{} TLS handshake failed: {}", log_prefix(),
                  io.tls->error());
        fail_connect("TLS handshake failed: " + io.tls->error(), false);
        return;
      case net::TlsConn::Step::Done:
        break;
    }
    login->tls = LoginState::Tls::None;
    login->tls_decided = true;
    begin_login();  // the startup packet, now through TLS
    return;
  }
  bool done = false;
  for (;;) {
    if (io.in.allocated() && io.in.free_tail() == 0) io.compact();
    auto r = io.read(worker->buffers());
    if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
      core::log(core::LogLevel::Warning, "{} server closed connection during login", log_prefix());
      fail_connect("server login failed", false);
      return;
    }
    if (r.kind == net::IoResult::Kind::Data && r.n == 0) {  // no room: never retry in a loop
      fail_connect("server login message too large", false);
      return;
    }
    for (;;) {
      proto::Header h;
      auto st = proto::decode_header(io.scan_ptr(), io.unscanned(), kMaxLoginFrame, h);
      if (st == proto::HeaderStatus::NeedMore) break;
      if (st != proto::HeaderStatus::Ok) {
        fail_connect("bad packet header from server", false);
        return;
      }
      if (io.unscanned() < h.wire_size()) {
        if (h.wire_size() > io.in.cap &&
            !io.reserve(worker->buffers(), static_cast<std::uint32_t>(h.wire_size()))) {
          fail_connect("out of memory", false);
          return;
        }
        break;
      }
      std::string_view body(io.scan_ptr() + proto::kHeaderLen, h.body_size());
      io.scan += static_cast<std::uint32_t>(h.wire_size());
      if (!handle_login_frame(h.type, body)) return;  // closed
      if (state != ServerState::Login) {
        done = true;
        break;
      }
    }
    io.consume_scanned();
    if (done || !io.readable) break;
  }
  if (!done) worker->buffers().release_if_empty(io.in);
}

bool ServerConn::handle_login_frame(char type, std::string_view body) {
  namespace auth = proto::auth;
  proto::BodyReader rd(body);
  switch (type) {
    case proto::be::kAuthentication: {
      auto code = rd.u32();
      if (!code) {
        fail_connect("bad authentication message", false);
        return false;
      }
      // The database entry's or auth file's secret; else what auth_query found for the user.
      std::optional<std::string> pw = target->password;
      if (!pw) pw = worker->registries().learned.find(target->user);
      auto send = [&](auto&& write) {
        std::size_t mark = io.out.synth_mark();
        write(io.out.synth());
        (void)io.out.commit_synth(mark);
        return flush_out();
      };
      switch (*code) {
        case proto::auth::kOk:
          login->auth_ok = true;
          return true;
        case proto::auth::kCleartext:
          if (!pw || auth::is_md5_hash(*pw) || is_scram_secret(*pw)) {
            core::log(core::LogLevel::Warning,
                      "{} server asks for a cleartext password, none is configured", log_prefix());
            fail_connect("server login failed", true,
                         login_error_body(pw ? "server login failed: wrong password type"
                                             : "server login failed: no password for this user"));
            return false;
          }
          return send([&](std::string& o) { proto::write_password(o, *pw); });
        case proto::auth::kMd5: {
          auto salt_bytes = rd.bytes(4);
          if (!salt_bytes || !pw || is_scram_secret(*pw)) {
            core::log(core::LogLevel::Warning,
                      "{} server asks for an md5 password, none is configured", log_prefix());
            fail_connect("server login failed", true,
                         login_error_body(pw ? "server login failed: wrong password type"
                                             : "server login failed: no password for this user"));
            return false;
          }
          auth::Md5Salt salt;
          std::memcpy(salt.data(), salt_bytes->data(), 4);
          auto resp = auth::md5_client_response(*pw, target->user, salt);
          if (!resp) {
            fail_connect("server login failed", false);
            return false;
          }
          return send([&](std::string& o) { proto::write_password(o, resp.value()); });
        }
        case proto::auth::kSasl: {
          bool scram = false;
          while (auto m = rd.cstring()) {
            if (m->empty()) break;
            if (*m == auth::kScramSha256) scram = true;
          }
          std::optional<auth::ScramKeys> keys;
          if (pw && is_scram_secret(*pw)) keys = worker->pools->scram_keys(*pool, *pw);
          if (!scram || !pw || auth::is_md5_hash(*pw) || (is_scram_secret(*pw) && !keys)) {
            core::log(core::LogLevel::Warning,
                      "{} server asks for SCRAM, no plaintext password or client proof is known",
                      log_prefix());
            fail_connect("server login failed", true,
                         login_error_body(pw ? "server login failed: wrong password type"
                                             : "server login failed: no password for this user"));
            return false;
          }
          // With only the SCRAM secret, log in with the keys a client's proof revealed.
          login->scram.emplace(keys ? auth::ScramClient::with_keys(*keys)
                                    : auth::ScramClient::with_password(*pw));
          auto first = login->scram->client_first();
          if (!first) {
            fail_connect("server login failed", false);
            return false;
          }
          return send([&](std::string& o) {
            proto::write_sasl_initial(o, login->scram->mechanism(), first.value());
          });
        }
        case proto::auth::kSaslContinue: {
          if (!login->scram) {
            fail_connect("server login failed", false);
            return false;
          }
          auto fin = login->scram->on_server_first(rd.rest());
          if (!fin) {
            core::log(core::LogLevel::Warning, "{} SCRAM: {}", log_prefix(), fin.error());
            fail_connect("server login failed", true,
                         login_error_body("server login failed: SCRAM exchange failed"));
            return false;
          }
          return send([&](std::string& o) { proto::write_sasl_response(o, fin.value()); });
        }
        case proto::auth::kSaslFinal: {
          if (!login->scram || !login->scram->on_server_final(rd.rest())) {
            core::log(core::LogLevel::Warning, "{} SCRAM: server signature mismatch", log_prefix());
            fail_connect("server login failed", true,
                         login_error_body("server login failed: SCRAM server signature mismatch"));
            return false;
          }
          return true;
        }
        default:
          core::log(core::LogLevel::Warning, "{} unsupported server authentication method {}",
                    log_prefix(), *code);
          fail_connect("server login failed", true,
                       login_error_body("server login failed: unsupported authentication method"));
          return false;
      }
    }
    case proto::be::kErrorResponse: {
      if (login->sslmode == config::SslMode::Allow && !io.tls && !login->tls_retry &&
          !login->auth_ok && login->unix_path.empty() && login->next_addr > 0) {
        // sslmode allow: the plaintext login was refused; try again with TLS (as libpq).
        core::log(core::LogLevel::Log, "{} plaintext login refused, retrying with TLS",
                  log_prefix());
        login->tls_retry = true;
        login->tls_decided = false;
        login->scram.reset();
        login->params.clear();
        io.out.clear();
        worker->buffers().release(io.in);
        io.scan = 0;
        io.readable = false;
        io.eof = false;
        --login->next_addr;
        state = ServerState::Connecting;
        try_next_address("");  // the same address, a fresh socket
        return false;
      }
      auto e = proto::ErrorView::decode(body);
      core::log(core::LogLevel::Warning, "{} server login failed: {} {}", log_prefix(),
                e ? e->severity : "", e ? e->message : "?");
      std::string reason =
          e && !e->message.empty() ? std::string(e->message) : std::string("server login failed");
      fail_connect(reason, true, std::string(body));
      return false;
    }
    case proto::be::kParameterStatus: {
      if (auto ps = proto::ParameterStatusView::decode(body)) {
        login->params.emplace_back(std::string(ps->name), std::string(ps->value));
      }
      return true;
    }
    case proto::be::kBackendKeyData: {
      if (auto k = proto::BackendKeyDataView::decode(body)) {
        backend_pid = k->pid;
        backend_secret = k->secret;
      }
      return true;
    }
    case proto::be::kReadyForQuery: {
      connected_at = worker->loop().now();
      requests.reset();
      if (!target->connect_query.empty()) {
        run_internal(target->connect_query, After::Ready, "connect_query");
      } else {
        login_done();
      }
      return true;
    }
    default:  // NoticeResponse, NegotiateProtocolVersion: nothing to do
      return true;
  }
}

void ServerConn::login_done() {
  auto params_at_login = std::move(login->params);
  login.reset();
  io.consume_scanned();
  worker->buffers().release_if_empty(io.in);
  worker->pools->server_ready(*this, *worker, std::move(params_at_login));
}

}  // namespace sluice::pool
