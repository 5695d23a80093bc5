// Opening a server connection: resolve, non-blocking connect, startup, authentication, params.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "core/log.h"
#include "net/socket.h"
#include "pool/login_state.h"
#include "pool/pool.h"
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

bool is_scram_secret(std::string_view s) { return s.rfind("SCRAM-SHA-256$", 0) == 0; }

// An ErrorResponse body for a login failure decided here (waiting clients are told this).
std::string login_error_body(std::string_view msg) {
  std::string full;
  proto::write_error(full, {proto::Severity::Fatal, proto::sqlstate::kInvalidPassword, msg});
  return full.substr(proto::kHeaderLen);
}
}  // namespace

void ServerConn::start(std::shared_ptr<const ConnectTarget> t) {
  target = std::move(t);
  lifetime = target->lifetime;
  login = std::make_unique<LoginState>();
  login->deadline =
      target->connect_timeout > 0 ? worker->loop().now() + target->connect_timeout : 0;
  state = ServerState::Connecting;
  std::string host;
  if (!target->hosts.empty()) {
    unsigned n = static_cast<unsigned>(target->hosts.size());
    unsigned idx = target->load_balance ? pool->next_host.fetch_add(1) % n : 0;
    host = target->hosts[idx];
  }
  if (host.empty() || host[0] == '/') {
    std::string dir = host.empty() ? target->unix_dir : host;
    login->unix_path = dir + "/.s.PGSQL." + std::to_string(target->port);
    addr_text = login->unix_path;
  } else {
    auto r = net::resolve(host, target->port);
    if (!r) {
      core::log(core::LogLevel::Warning, "{} {}", log_prefix(), r.error());
      fail_connect("connect failed", false);
      return;
    }
    login->addrs = std::move(r.value());
  }
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
  core::log(core::LogLevel::Log, "{} new connection to server (from {})", log_prefix(),
            local_text);
  begin_login();
}

void ServerConn::begin_login() {
  state = ServerState::Login;
  std::vector<std::pair<std::string, std::string>> sp;
  sp.emplace_back("user", target->user);
  sp.emplace_back("database", target->dbname);
  for (const auto& kv : target->startup_params) sp.push_back(kv);
  std::size_t mark = io.out.synth_mark();
  proto::write_startup(io.out.synth(), sp);
  (void)io.out.commit_synth(mark);
  if (!flush_out()) return;
  on_login_io();
}

void ServerConn::check_connect_timeout(core::Micros now) {
  if ((state == ServerState::Connecting || state == ServerState::Login) && login &&
      login->deadline != 0 && now >= login->deadline) {
    fail_connect("connect timeout", false);
  }
}

void ServerConn::fail_connect(std::string_view reason, bool login_error, std::string error_body) {
  if (closed_) return;
  worker->pools->connect_failed(*pool, login_error, std::move(error_body));
  close(reason, false);
}

void ServerConn::on_login_io() {
  bool done = false;
  for (;;) {
    if (io.in.allocated() && io.in.free_tail() == 0) io.compact();
    auto r = io.read(worker->buffers());
    if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
      core::log(core::LogLevel::Warning, "{} server closed connection during login",
                log_prefix());
      fail_connect("server login failed", false);
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
            !worker->buffers().reserve(io.in, static_cast<std::uint32_t>(h.wire_size()))) {
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
      const std::optional<std::string>& pw = target->password;
      auto send = [&](auto&& write) {
        std::size_t mark = io.out.synth_mark();
        write(io.out.synth());
        (void)io.out.commit_synth(mark);
        return flush_out();
      };
      switch (*code) {
        case proto::auth::kOk: return true;
        case proto::auth::kCleartext:
          if (!pw || auth::is_md5_hash(*pw) || is_scram_secret(*pw)) {
            core::log(core::LogLevel::Warning,
                      "{} server asks for a cleartext password, none is configured", log_prefix());
            fail_connect("server login failed", true,
                         login_error_body("server login failed: no password for this user"));
            return false;
          }
          return send([&](std::string& o) { proto::write_password(o, *pw); });
        case proto::auth::kMd5: {
          auto salt_bytes = rd.bytes(4);
          if (!salt_bytes || !pw || is_scram_secret(*pw)) {
            core::log(core::LogLevel::Warning,
                      "{} server asks for an md5 password, none is configured", log_prefix());
            fail_connect("server login failed", true,
                         login_error_body("server login failed: no password for this user"));
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
                         login_error_body("server login failed: no password for this user"));
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
            core::log(core::LogLevel::Warning, "{} SCRAM: server signature mismatch",
                      log_prefix());
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
      auto e = proto::ErrorView::decode(body);
      core::log(core::LogLevel::Warning, "{} server login failed: {} {}", log_prefix(),
                e ? e->severity : "", e ? e->message : "?");
      fail_connect("server login failed", true, std::string(body));
      return false;
    }
    case proto::be::kParameterStatus: {
      if (auto ps = proto::ParameterStatusView::decode(body)) {
        int slot = ParamRegistry::instance().slot(ps->name);
        if (slot >= 0) {
          params.v[static_cast<std::size_t>(slot)] = ValueTable::instance().intern(ps->value);
        }
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
