// Login: the first packet (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), the
// startup parameters and the limits that apply before authentication.
#include "session/login.h"

#include "core/log.h"
#include "pool/settings.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/startup.h"
#include "proto/startup_options.h"
#include "session/auth_query.h"
#include "session/auth_state.h"
#include "session/session_worker.h"

namespace sluice::session {
namespace {

constexpr std::uint32_t kMaxAuthMessage = 16384;

bool is_admin_db(std::string_view db) {
  return db == "pgbouncer" || db == "sluice";
}

bool in_list(const std::vector<std::string>& list, std::string_view name) {
  for (const auto& n : list) {
    if (n == name || n == "*") return true;
  }
  return false;
}

}  // namespace

Login::Login(SessionWorker& w, LoginHost& host)
    : worker_(w), host_(host), io_(host.login_stream()) {}

Login::~Login() = default;

void Login::on_input() {
  if (phase_ == Phase::Startup) {
    on_startup_input();
  } else if (phase_ == Phase::Auth) {
    on_auth_input();
  }
}

void Login::end() {
  phase_ = Phase::Ended;
  if (auth_ && auth_->lookup != nullptr) {
    auth_->lookup->abandon();
    auth_->lookup = nullptr;
  }
}

void Login::close(std::string_view reason, const char* sqlstate, std::string_view message) {
  end();
  host_.login_close(reason, sqlstate, message);
}

// A refusal while the startup packet is read: the host knows the names read so far first (its
// log lines name them).
void Login::refuse_startup(std::string_view reason, const char* sqlstate,
                           std::string_view message) {
  host_.login_named(user_, db_, std::string(), admin_);
  close(reason, sqlstate, message);
}

void Login::succeeded(bool peer_admin) {
  phase_ = Phase::Authenticated;
  auth_.reset();
  host_.login_authenticated(peer_admin);
}

void Login::on_startup_input() {
  for (;;) {
    if (phase_ != Phase::Startup) return;
    if (!auth_) auth_ = std::make_unique<AuthState>();
    if (io_.tls && !io_.tls->established()) {  // TLS handshake (client_tls.cc)
      if (!step_tls_handshake()) return;
      continue;
    }
    if (!auth_->first_byte_checked && io_.unscanned() == 0) {  // direct TLS?
      if (!peek_direct_tls()) return;
      continue;
    }
    std::uint32_t len = 0;
    auto ls = proto::startup_length(io_.scan_ptr(), io_.unscanned(), len);
    if (ls == proto::StartupStatus::Bad) {
      close("bad startup packet", proto::sqlstate::kProtocolViolation,
            "invalid length of startup packet");
      return;
    }
    if (ls == proto::StartupStatus::Ok && io_.unscanned() >= len) {
      if (!handle_first_packet(len)) return;
      continue;
    }
    if (!read_input(ls == proto::StartupStatus::Ok ? len : 0)) return;
  }
}

// Every login read makes progress or ends: the input consumed so far is dropped (nothing
// sluice sends during login points into it), room is made for `need` bytes from the scan
// position (a packet whose length is known, already checked against its cap), and a read that
// cannot take a byte closes the client instead of being retried.
bool Login::read_input(std::uint32_t need) {
  io_.consume_scanned();
  if (need > io_.unscanned() && !io_.reserve(worker_.buffers(), need)) {
    close("out of memory", proto::sqlstate::kProgramLimitExceeded, "out of memory");
    return false;
  }
  if (!io_.readable) {
    worker_.buffers().release_if_empty(io_.in);
    return false;
  }
  if (io_.in.allocated() && io_.in.free_tail() == 0) io_.compact();
  auto r = io_.read(worker_.buffers());
  if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
    close("client unexpected eof");
    return false;
  }
  if (r.kind == net::IoResult::Kind::Data && r.n == 0) {  // no room: cannot happen, never spin
    close("login message exceeds the buffer", proto::sqlstate::kProtocolViolation,
          "invalid message length");
    return false;
  }
  return true;
}

bool Login::handle_first_packet(std::uint32_t len) {
  proto::StartupPacket pkt = proto::parse_startup(io_.scan_ptr(), len);
  io_.scan += len;
  io_.consume_scanned();  // the packet was copied out; what follows it stays
  switch (pkt.kind) {
    case proto::StartupKind::SslRequest:
    case proto::StartupKind::GssEncRequest: {
      if (io_.unscanned() > 0) {  // nothing may follow before our answer
        close("bad startup packet", proto::sqlstate::kProtocolViolation,
              "unexpected data after SSLRequest");
        return false;
      }
      if (io_.tls) {
        close("bad startup packet", proto::sqlstate::kProtocolViolation,
              "SSLRequest inside a TLS connection");
        return false;
      }
      bool tls = pkt.kind == proto::StartupKind::SslRequest && tls_offered();
      io_.out.add_synth(tls ? "S" : "N");
      if (!host_.login_flush()) return false;
      if (!tls) return true;
      if (!io_.out.empty()) {  // one byte on a fresh socket: cannot really happen
        close("cannot answer SSLRequest");
        return false;
      }
      return start_tls(false);
    }
    case proto::StartupKind::Cancel:
      end();
      host_.login_cancel(pkt.cancel_pid, pkt.cancel_secret);
      return false;
    case proto::StartupKind::Startup:
      if (!io_.tls && !host_.login_unix_socket() &&
          worker_.cfg().settings.client_tls_sslmode >= config::SslMode::Require) {
        close("SSL required", proto::sqlstate::kInvalidAuthorization, "SSL required");
        return false;
      }
      handle_startup(std::move(pkt.params), pkt.version);
      return false;
    case proto::StartupKind::Invalid:
      close("bad startup packet", proto::sqlstate::kProtocolViolation, pkt.error);
      return false;
  }
  return false;
}

void Login::handle_startup(std::vector<std::pair<std::string, std::string>> params,
                           std::uint32_t version) {
  worker_.sync_config();
  protocol_minor_ = version & 0xffffu;
  const config::Config& cfg = worker_.cfg();
  const auto& st = cfg.settings;
  const auto& reg = worker_.registries().params;
  // A startup parameter becomes a setting this client keeps on every server: the reported
  // ones always (PgBouncer's), any valid setting name with track_session_state.
  auto wanted = [&](const std::string& k) {
    if (in_list(st.ignore_startup_parameters, k)) return false;
    return reg.slot(k) >= 0 || (st.track_session_state && pool::valid_setting_name(k));
  };
  std::vector<std::pair<std::string, std::string>> tracked;
  std::string fallback_app;
  bool have_app = false;
  for (auto& [k, v] : params) {
    if (k == "user") {
      user_ = v;
    } else if (k == "database") {
      db_ = v;
    } else if (k == "options") {
      std::vector<std::pair<std::string, std::string>> opts;
      if (!proto::parse_startup_options(v, opts)) {
        refuse_startup(
            "unsupported options", proto::sqlstate::kProtocolViolation,
            "unsupported options startup parameter: only '-c config=val' and '--config=val' "
            "are allowed");
        return;
      }
      for (auto& [ok, ov] : opts) {
        // With "options" in ignore_startup_parameters, what we cannot keep is dropped.
        if (wanted(ok)) {
          tracked.emplace_back(ok, ov);
        } else if (!in_list(st.ignore_startup_parameters, ok) &&
                   !in_list(st.ignore_startup_parameters, "options")) {
          refuse_startup("unsupported startup parameter", proto::sqlstate::kProtocolViolation,
                         "unsupported startup parameter in options: " + ok);
          return;
        }
      }
    } else if (k.rfind("_pq_.", 0) == 0) {
      unknown_pq_.push_back(k);  // protocol extensions: we implement none, say so
    } else if (k == "fallback_application_name") {
      fallback_app = v;
    } else if (k == "replication") {
      refuse_startup("replication connection", proto::sqlstate::kFeatureNotSupported,
                     "replication connections are not supported yet");
      return;
    } else if (wanted(k)) {
      if (k == "application_name") have_app = true;
      tracked.emplace_back(k, v);
    } else if (!in_list(st.ignore_startup_parameters, k)) {
      refuse_startup("unsupported startup parameter", proto::sqlstate::kProtocolViolation,
                     "unsupported startup parameter: " + k);
      return;
    }
  }
  if (!have_app && !fallback_app.empty()) tracked.emplace_back("application_name", fallback_app);
  std::string application_name;
  for (auto& [k, v] : tracked) {
    if (k == "application_name") application_name = v;
  }
  if (user_.empty()) {
    host_.login_named(user_, db_, application_name, admin_);
    close("no user name", proto::sqlstate::kInvalidAuthorization,
          "no user name specified in startup packet");
    return;
  }
  if (db_.empty()) db_ = user_;
  startup_ = std::move(tracked);
  admin_ = is_admin_db(db_);
  host_.login_named(user_, db_, application_name, admin_);  // the host's limits follow the user
  if (worker_.shared().draining.load()) {
    close("server shutting down", "57P03", "sluice is shutting down");
    return;
  }
  if (st.max_client_conn > 0 && worker_.shared().clients.load() > st.max_client_conn) {
    close("no more connections allowed (max_client_conn)", proto::sqlstate::kTooManyConnections,
          "no more connections allowed (max_client_conn)");
    return;
  }
  if (st.log_connections) {
    core::log(core::LogLevel::Log, "{} login attempt: db={} user={} tls={}", log_prefix(), db_,
              user_, io_.tls ? io_.tls->describe() : std::string("no"));
  }
  if (!admin_ && worker_.shared().shutdown.load() != ShutdownMode::None) {
    // Only the console stays reachable (over the unix socket) while a shutdown waits.
    close("server shutting down", "57P03", "sluice is shutting down");
    return;
  }
  // An unknown database is reported after authentication (as PgBouncer), so that the answer
  // to a wrong password does not tell which databases exist.
  begin_auth();
}

void Login::on_auth_input() {
  for (;;) {
    if (phase_ != Phase::Auth) return;
    // While auth_query looks the user up, nothing was asked yet: input waits (read later).
    if (auth_->lookup != nullptr) return;
    proto::Header h;
    auto hs = proto::decode_header(io_.scan_ptr(), io_.unscanned(), kMaxAuthMessage, h);
    if (hs == proto::HeaderStatus::LengthTooSmall || hs == proto::HeaderStatus::LengthTooLarge) {
      close("bad auth packet", proto::sqlstate::kProtocolViolation, "invalid message length");
      return;
    }
    if (hs == proto::HeaderStatus::Ok && io_.unscanned() >= h.wire_size()) {
      if (h.type != proto::fe::kPassword) {
        close("bad auth packet", proto::sqlstate::kProtocolViolation, "expected password response");
        return;
      }
      std::string_view body(io_.scan_ptr() + proto::kHeaderLen, h.body_size());
      io_.scan += static_cast<std::uint32_t>(h.wire_size());
      if (!handle_auth_message(body)) return;
      io_.consume_scanned();
      continue;
    }
    auto need = hs == proto::HeaderStatus::Ok ? static_cast<std::uint32_t>(h.wire_size()) : 0u;
    if (!read_input(need)) return;
  }
}

}  // namespace sluice::session
