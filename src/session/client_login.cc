// Client login: first packet (SSL/GSS refusal, cancel, startup), limits, auth, welcome.
#include <strings.h>
#include <sys/random.h>

#include <cstring>

#include "core/log.h"
#include "proto/auth/md5.h"
#include "proto/auth/scram.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/reader.h"
#include "proto/startup.h"
#include "proto/startup_options.h"
#include "proto/writer.h"
#include "session/auth_state.h"
#include "session/client.h"

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

std::uint64_t random_u64() {
  std::uint64_t v = 0;
  std::size_t got = 0;
  while (got < sizeof v) {
    ssize_t r = getrandom(reinterpret_cast<char*>(&v) + got, sizeof v - got, 0);
    if (r <= 0) continue;
    got += static_cast<std::size_t>(r);
  }
  return v;
}

}  // namespace

void Client::on_startup_input() {
  for (;;) {
    if (state != ClientState::Startup) return;
    if (!auth_) auth_ = std::make_unique<AuthState>();
    if (io.tls && !io.tls->established()) {  // TLS handshake (client_tls.cc)
      if (!step_tls_handshake()) return;
      continue;
    }
    if (!auth_->first_byte_checked && io.unscanned() == 0) {  // direct TLS?
      if (!peek_direct_tls()) return;
      continue;
    }
    std::uint32_t len = 0;
    auto ls = proto::startup_length(io.scan_ptr(), io.unscanned(), len);
    if (ls == proto::StartupStatus::Bad) {
      close("bad startup packet", proto::sqlstate::kProtocolViolation,
            "invalid length of startup packet");
      return;
    }
    if (ls == proto::StartupStatus::Ok && io.unscanned() >= len) {
      if (!handle_first_packet(len)) return;
      continue;
    }
    if (!read_login_input(ls == proto::StartupStatus::Ok ? len : 0)) return;
  }
}

// Every login read makes progress or ends: the input consumed so far is dropped (nothing
// sluice sends during login points into it), room is made for `need` bytes from the scan
// position (a packet whose length is known, already checked against its cap), and a read that
// cannot take a byte closes the client instead of being retried.
bool Client::read_login_input(std::uint32_t need) {
  io.consume_scanned();
  if (need > io.unscanned() && !io.reserve(worker.buffers(), need)) {
    close("out of memory", proto::sqlstate::kProgramLimitExceeded, "out of memory");
    return false;
  }
  if (!io.readable) {
    worker.buffers().release_if_empty(io.in);
    return false;
  }
  if (io.in.allocated() && io.in.free_tail() == 0) io.compact();
  auto r = io.read(worker.buffers());
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

bool Client::handle_first_packet(std::uint32_t len) {
  proto::StartupPacket pkt = proto::parse_startup(io.scan_ptr(), len);
  io.scan += len;
  io.consume_scanned();  // the packet was copied out; what follows it stays
  switch (pkt.kind) {
    case proto::StartupKind::SslRequest:
    case proto::StartupKind::GssEncRequest: {
      if (io.unscanned() > 0) {  // nothing may follow before our answer
        close("bad startup packet", proto::sqlstate::kProtocolViolation,
              "unexpected data after SSLRequest");
        return false;
      }
      if (io.tls) {
        close("bad startup packet", proto::sqlstate::kProtocolViolation,
              "SSLRequest inside a TLS connection");
        return false;
      }
      bool tls = pkt.kind == proto::StartupKind::SslRequest && tls_offered();
      io.out.add_synth(tls ? "S" : "N");
      if (!flush_to_client()) return false;
      if (!tls) return true;
      if (!io.out.empty()) {  // one byte on a fresh socket: cannot really happen
        close("cannot answer SSLRequest");
        return false;
      }
      return start_tls(false);
    }
    case proto::StartupKind::Cancel:
      route_cancel(pkt.cancel_pid, pkt.cancel_secret);
      return false;
    case proto::StartupKind::Startup:
      if (!io.tls && !unix_socket &&
          worker.cfg().settings.client_tls_sslmode >= config::SslMode::Require) {
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

void Client::handle_startup(std::vector<std::pair<std::string, std::string>> params,
                            std::uint32_t version) {
  worker.sync_config();
  protocol_minor_ = version & 0xffffu;
  const config::Config& cfg = worker.cfg();
  const auto& st = cfg.settings;
  const auto& reg = worker.registries().params;
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
      user_name = v;
    } else if (k == "database") {
      db_name = v;
    } else if (k == "options") {
      std::vector<std::pair<std::string, std::string>> opts;
      if (!proto::parse_startup_options(v, opts)) {
        close("unsupported options", proto::sqlstate::kProtocolViolation,
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
          close("unsupported startup parameter", proto::sqlstate::kProtocolViolation,
                "unsupported startup parameter in options: " + ok);
          return;
        }
      }
    } else if (k.rfind("_pq_.", 0) == 0) {
      unknown_pq_.push_back(k);  // protocol extensions: we implement none, say so
    } else if (k == "fallback_application_name") {
      fallback_app = v;
    } else if (k == "replication") {
      close("replication connection", proto::sqlstate::kFeatureNotSupported,
            "replication connections are not supported yet");
      return;
    } else if (wanted(k)) {
      if (k == "application_name") have_app = true;
      tracked.emplace_back(k, v);
    } else if (!in_list(st.ignore_startup_parameters, k)) {
      close("unsupported startup parameter", proto::sqlstate::kProtocolViolation,
            "unsupported startup parameter: " + k);
      return;
    }
  }
  if (!have_app && !fallback_app.empty()) tracked.emplace_back("application_name", fallback_app);
  for (auto& [k, v] : tracked) {
    if (k == "application_name") application_name = v;
  }
  if (user_name.empty()) {
    close("no user name", proto::sqlstate::kInvalidAuthorization,
          "no user name specified in startup packet");
    return;
  }
  if (db_name.empty()) db_name = user_name;
  startup_ = std::move(tracked);
  compute_limits();
  if (worker.shared().draining.load()) {
    close("server shutting down", "57P03", "sluice is shutting down");
    return;
  }
  if (st.max_client_conn > 0 && worker.shared().clients.load() > st.max_client_conn) {
    close("no more connections allowed (max_client_conn)", proto::sqlstate::kTooManyConnections,
          "no more connections allowed (max_client_conn)");
    return;
  }
  if (st.log_connections) {
    core::log(core::LogLevel::Log, "{} login attempt: db={} user={} tls={}", log_prefix(), db_name,
              user_name, io.tls ? io.tls->describe() : std::string("no"));
  }
  admin = is_admin_db(db_name);
  if (!admin && worker.shared().shutdown.load() != ShutdownMode::None) {
    // Only the console stays reachable (over the unix socket) while a shutdown waits.
    close("server shutting down", "57P03", "sluice is shutting down");
    return;
  }
  // An unknown database is reported after authentication (as PgBouncer), so that the answer
  // to a wrong password does not tell which databases exist.
  begin_auth();
}

void Client::on_auth_input() {
  for (;;) {
    if (state != ClientState::Auth) return;
    // While auth_query looks the user up, nothing was asked yet: input waits (read later).
    if (auth_->lookup != nullptr) return;
    proto::Header h;
    auto hs = proto::decode_header(io.scan_ptr(), io.unscanned(), kMaxAuthMessage, h);
    if (hs == proto::HeaderStatus::LengthTooSmall || hs == proto::HeaderStatus::LengthTooLarge) {
      close("bad auth packet", proto::sqlstate::kProtocolViolation, "invalid message length");
      return;
    }
    if (hs == proto::HeaderStatus::Ok && io.unscanned() >= h.wire_size()) {
      if (h.type != proto::fe::kPassword) {
        close("bad auth packet", proto::sqlstate::kProtocolViolation, "expected password response");
        return;
      }
      std::string_view body(io.scan_ptr() + proto::kHeaderLen, h.body_size());
      io.scan += static_cast<std::uint32_t>(h.wire_size());
      if (!handle_auth_message(body)) return;
      io.consume_scanned();
      continue;
    }
    auto need = hs == proto::HeaderStatus::Ok ? static_cast<std::uint32_t>(h.wire_size()) : 0u;
    if (!read_login_input(need)) return;
  }
}

void Client::auth_succeeded() {
  auth_.reset();
  const config::Config& cfg = worker.cfg();
  const auto& st = cfg.settings;
  if (!admin && cfg.find_database(db_name) == nullptr && cfg.fallback_database() == nullptr) {
    close("no such database: " + db_name, proto::sqlstate::kInvalidCatalogName,
          "no such database: " + db_name);
    return;
  }
  if (!admin && worker.pools->database_disabled(db_name)) {  // console DISABLE
    std::string msg = "database \"" + db_name + "\" is disabled";
    close(msg, proto::sqlstate::kConnectionFailure, msg);
    return;
  }
  if (admin) {
    if (!admin_control) {
      if (in_list(st.admin_users, user_name)) {
        admin_control = true;
      } else if (!in_list(st.stats_users, user_name)) {
        close("not allowed", proto::sqlstate::kInvalidAuthorization,
              "not allowed to connect to the admin console");
        return;
      }
    }
  }
  bool exempt = admin && admin_control;
  std::string limit = worker.pools->try_add_client(db_name, user_name, exempt);
  if (!limit.empty()) {
    close("no more connections allowed (" + limit + ")", proto::sqlstate::kTooManyConnections,
          "no more connections allowed (" + limit + ")");
    return;
  }
  counted_in_groups_ = true;
  limits_exempt_ = exempt;
  std::size_t mark = io.out.synth_mark();
  proto::write_auth_request(io.out.synth(), proto::auth::kOk);
  (void)io.out.commit_synth(mark);
  if (admin) {
    std::vector<std::pair<std::string, std::string>> w = {
        {"server_version", worker.shared().admin->version()},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"DateStyle", "ISO, MDY"},
        {"TimeZone", "UTC"},
        {"integer_datetimes", "on"},
        {"standard_conforming_strings", "on"},
        {"IntervalStyle", "postgres"},
        {"application_name", application_name},
    };
    send_welcome(w);
    state = ClientState::Idle;
    flush_to_client();
    return;
  }
  const config::DatabaseConfig* d = cfg.find_database(db_name);
  if (d == nullptr) d = cfg.fallback_database();
  std::string server_user = d->user ? *d->user : user_name;
  pool = worker.pools->get_pool(*d, db_name, server_user, worker);
  worker.pools->pool_client_added(*pool);
  counted_in_pool_ = true;
  std::vector<std::pair<std::string, std::string>> welcome;
  if (worker.pools->welcome(*pool, welcome)) {
    send_welcome(welcome);
    state = ClientState::Idle;
    flush_to_client();
    return;
  }
  // First client of this pool: learn the server's parameters from a server connection.
  flush_to_client();
  if (state == ClientState::Closed) return;
  request_server(true);
}

void Client::finish_login() {
  std::vector<std::pair<std::string, std::string>> welcome;
  if (!worker.pools->welcome(*pool, welcome)) {
    close("server parameters unknown", proto::sqlstate::kConnectionFailure,
          "server parameters unknown");
    return;
  }
  send_welcome(welcome);
  flush_to_client();
}

void Client::send_welcome(const std::vector<std::pair<std::string, std::string>>& welcome) {
  auto same_name = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
  };
  // The settings this client wants everywhere: its startup values, except those equal to
  // what servers start with anyway (nothing to set then).
  std::vector<std::pair<std::string, std::string>> want;
  for (const auto& [k, v] : startup_) {
    bool is_default = false;
    for (const auto& [wk, wv] : welcome) {
      if (same_name(wk, k) && wv == v) is_default = true;
    }
    if (!is_default) want.emplace_back(k, v);
  }
  settings_ = pool::make_settings(std::move(want));
  std::size_t mark = io.out.synth_mark();
  std::string& out = io.out.synth();
  for (const auto& [k, v] : welcome) {
    const std::string* mine = pool::find_setting(settings_, k);
    proto::write_parameter_status(out, k, mine != nullptr ? *mine : v);
  }
  const auto& reg = worker.registries().params;
  for (const auto& [k, v] : startup_) {  // reported settings the server did not announce
    bool announced = false;
    for (const auto& [wk, wv] : welcome)
      announced = announced || same_name(wk, k);
    if (!announced && reg.slot(k) >= 0) proto::write_parameter_status(out, k, v);
  }
  // Cancel key: random, with the owning worker in the low byte of the secret.
  std::uint64_t r = random_u64();
  auto pid = static_cast<std::uint32_t>(r >> 32) & 0x7fffffffu;
  auto secret = (static_cast<std::uint32_t>(r) & ~0xffu) | static_cast<std::uint32_t>(worker.id());
  cancel_key = (std::uint64_t{pid} << 32) | secret;
  worker.register_cancel_key(cancel_key, *this);
  proto::write_backend_key_data(out, pid, secret);
  proto::write_ready_for_query(out, 'I');
  (void)io.out.commit_synth(mark);
  std::vector<std::pair<std::string, std::string>>().swap(startup_);
  last_activity = worker.loop().now();
  // Login is over: an idle client holds no buffer, unless the client sent more with its
  // last login message (or while it waited): no new edge will announce those bytes, so they
  // are handled once this event is done (on_deferred).
  io.consume_scanned();
  worker.buffers().release_if_empty(io.in);
  if (io.unscanned() > 0 || io.readable) worker.loop().defer(*this);
}

}  // namespace sluice::session
