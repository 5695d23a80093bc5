// Client login: first packet (SSL/GSS refusal, cancel, startup), limits, auth, welcome.
#include <sys/random.h>

#include <cstring>

#include "core/log.h"
#include "proto/auth/md5.h"
#include "proto/auth/scram.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/reader.h"
#include "proto/startup.h"
#include "proto/writer.h"
#include "session/auth_state.h"
#include "session/client.h"

namespace sluice::session {
namespace {

constexpr std::uint32_t kMaxAuthMessage = 16384;

bool is_admin_db(std::string_view db) { return db == "pgbouncer" || db == "sluice"; }

bool in_list(const std::vector<std::string>& list, std::string_view name) {
  for (const auto& n : list) {
    if (n == name || n == "*") return true;
  }
  return false;
}

bool is_scram_secret(std::string_view s) { return s.rfind("SCRAM-SHA-256$", 0) == 0; }

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

// Splits "-c a=b -c c=d --e=f" into pairs; false on anything else.
bool parse_options(std::string_view opts, std::vector<std::pair<std::string, std::string>>& out) {
  std::vector<std::string> words;
  std::string cur;
  bool esc = false;
  for (char c : opts) {
    if (esc) {
      cur.push_back(c);
      esc = false;
    } else if (c == '\\') {
      esc = true;
    } else if (c == ' ' || c == '\t') {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string kv;
    if (words[i] == "-c" && i + 1 < words.size()) {
      kv = words[++i];
    } else if (words[i].rfind("-c", 0) == 0 && words[i].size() > 2) {
      kv = words[i].substr(2);
    } else if (words[i].rfind("--", 0) == 0) {
      kv = words[i].substr(2);
    } else {
      return false;
    }
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    std::string name = kv.substr(0, eq);
    for (char& ch : name) {
      if (ch == '-') ch = '_';
    }
    out.emplace_back(std::move(name), kv.substr(eq + 1));
  }
  return true;
}

}  // namespace

void Client::on_startup_input() {
  for (;;) {
    if (state != ClientState::Startup) return;
    std::uint32_t len = 0;
    auto ls = proto::startup_length(io.scan_ptr(), io.unscanned(), len);
    if (ls == proto::StartupStatus::Bad) {
      close("bad startup packet", proto::sqlstate::kProtocolViolation,
            "invalid length of startup packet");
      return;
    }
    if (ls == proto::StartupStatus::Ok && io.unscanned() >= len) {
      if (!handle_first_packet(len)) return;
      io.consume_scanned();
      continue;
    }
    if (ls == proto::StartupStatus::Ok && len > io.in.cap - io.in.lo) {
      if (!worker.buffers().reserve(io.in, len)) {
        close("out of memory");
        return;
      }
    }
    if (!io.readable) {
      worker.buffers().release_if_empty(io.in);
      return;
    }
    auto r = io.read(worker.buffers());
    if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
      close("client unexpected eof");
      return;
    }
  }
}

bool Client::handle_first_packet(std::uint32_t len) {
  proto::StartupPacket pkt = proto::parse_startup(io.scan_ptr(), len);
  io.scan += len;
  switch (pkt.kind) {
    case proto::StartupKind::SslRequest:
    case proto::StartupKind::GssEncRequest: {
      if (io.unscanned() > 0) {  // nothing may follow before our answer
        close("bad startup packet", proto::sqlstate::kProtocolViolation,
              "unexpected data after SSLRequest");
        return false;
      }
      io.out.add_synth("N");
      return flush_to_client();
    }
    case proto::StartupKind::Cancel:
      route_cancel(pkt.cancel_pid, pkt.cancel_secret);
      return false;
    case proto::StartupKind::Startup:
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
  auto& reg = pool::ParamRegistry::instance();
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
      if (!parse_options(v, opts)) {
        close("unsupported options", proto::sqlstate::kProtocolViolation,
              "unsupported startup parameter in options: " + v);
        return;
      }
      for (auto& [ok, ov] : opts) {
        if (reg.slot(ok) >= 0) {
          tracked.emplace_back(ok, ov);
        } else if (!in_list(st.ignore_startup_parameters, ok)) {
          close("unsupported startup parameter", proto::sqlstate::kProtocolViolation,
                "unsupported startup parameter in options: " + ok);
          return;
        }
      }
    } else if (k.rfind("_pq_.", 0) == 0) {
      unknown_pq_.push_back(k);  // protocol extensions: we implement none, say so
    } else if (k == "fallback_application_name") {
      fallback_app = v;
    } else if (reg.slot(k) >= 0) {
      if (k == "application_name") have_app = true;
      tracked.emplace_back(k, v);
    } else if (k == "replication") {
      close("replication connection", proto::sqlstate::kFeatureNotSupported,
            "replication connections are not supported yet");
      return;
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
    core::log(core::LogLevel::Log, "{} login attempt: db={} user={} tls=no", log_prefix(), db_name,
              user_name);
  }
  admin = is_admin_db(db_name);
  if (!admin && cfg.find_database(db_name) == nullptr && cfg.fallback_database() == nullptr) {
    close("no such database", proto::sqlstate::kInvalidCatalogName,
          "no such database: " + db_name);
    return;
  }
  begin_auth();
}

void Client::begin_auth() {
  const config::Config& cfg = worker.cfg();
  const auto& st = cfg.settings;
  if (protocol_minor_ > 0 || !unknown_pq_.empty()) {
    // We speak 3.0: tell a newer client before anything else, as Postgres does.
    std::size_t mark = io.out.synth_mark();
    proto::write_negotiate_protocol_version(io.out.synth(), 0, unknown_pq_);
    (void)io.out.commit_synth(mark);
    std::vector<std::string>().swap(unknown_pq_);
  }
  // The admin console lets our own OS user in over the unix socket as "pgbouncer".
  if (admin && unix_socket && net::peer_uid(io.fd) == static_cast<int>(worker.shared().uid) &&
      (user_name == "pgbouncer" || user_name == "sluice")) {
    admin_control = true;
    auth_succeeded();
    return;
  }
  if (admin && !in_list(st.admin_users, user_name) && !in_list(st.stats_users, user_name)) {
    // Still authenticate first so that the answer does not tell which users exist.
  }
  const config::AuthEntry* entry = cfg.find_auth(user_name);
  auth_ = std::make_unique<AuthState>();
  auth_->user_known = entry != nullptr;
  if (entry != nullptr) auth_->stored = entry->secret;

  config::AuthType type = st.auth_type;
  switch (type) {
    case config::AuthType::Any:
      auth_succeeded();
      return;
    case config::AuthType::Trust:
      if (!auth_->user_known && !st.auth_file.empty()) {
        fail_auth();
        return;
      }
      auth_succeeded();
      return;
    case config::AuthType::Plain: auth_->method = AuthState::Method::Cleartext; break;
    case config::AuthType::Md5:
      auth_->method = is_scram_secret(auth_->stored) ? AuthState::Method::Scram
                                                     : AuthState::Method::Md5;
      break;
    case config::AuthType::ScramSha256:
      auth_->method = AuthState::Method::Scram;
      break;
    default:
      close("unsupported auth_type", proto::sqlstate::kFeatureNotSupported,
            "auth_type " + std::string(config::to_string(type)) + " is not supported yet");
      return;
  }
  state = ClientState::Auth;
  std::size_t mark = io.out.synth_mark();
  switch (auth_->method) {
    case AuthState::Method::Cleartext:
      proto::write_auth_request(io.out.synth(), proto::auth::kCleartext);
      break;
    case AuthState::Method::Md5: {
      std::uint64_t r = random_u64();
      std::memcpy(auth_->salt.data(), &r, 4);
      proto::write_auth_request(io.out.synth(), proto::auth::kMd5,
                                std::string_view(reinterpret_cast<char*>(auth_->salt.data()), 4));
      break;
    }
    case AuthState::Method::Scram: {
      namespace a = proto::auth;
      if (auth_->user_known && is_scram_secret(auth_->stored)) {
        if (auto sec = a::parse_scram_secret(auth_->stored)) auth_->scram.emplace(std::move(*sec));
      } else if (auth_->user_known && !a::is_md5_hash(auth_->stored)) {
        auto srv = a::ScramServer::with_password(auth_->stored);
        if (srv) auth_->scram.emplace(std::move(srv.value()));
      }
      if (!auth_->scram) {  // unknown user or an md5-only secret: a convincing failure
        auto m = a::ScramServer::mock(user_name, worker.shared().scram_mock_key, {});
        if (!m) {
          close("internal error", proto::sqlstate::kInternalError, "SCRAM unavailable");
          return;
        }
        auth_->scram.emplace(std::move(m.value()));
        auth_->user_known = false;
      }
      proto::write_auth_sasl(io.out.synth(), {a::kScramSha256});
      break;
    }
  }
  (void)io.out.commit_synth(mark);
  if (!flush_to_client()) return;
  on_auth_input();
}

void Client::on_auth_input() {
  for (;;) {
    if (state != ClientState::Auth) return;
    proto::Header h;
    auto hs = proto::decode_header(io.scan_ptr(), io.unscanned(), kMaxAuthMessage, h);
    if (hs == proto::HeaderStatus::LengthTooSmall || hs == proto::HeaderStatus::LengthTooLarge) {
      close("bad auth packet", proto::sqlstate::kProtocolViolation, "invalid message length");
      return;
    }
    if (hs == proto::HeaderStatus::Ok && io.unscanned() >= h.wire_size()) {
      if (h.type != proto::fe::kPassword) {
        close("bad auth packet", proto::sqlstate::kProtocolViolation,
              "expected password response");
        return;
      }
      std::string_view body(io.scan_ptr() + proto::kHeaderLen, h.body_size());
      io.scan += static_cast<std::uint32_t>(h.wire_size());
      if (!handle_auth_message(body)) return;
      io.consume_scanned();
      continue;
    }
    if (hs == proto::HeaderStatus::Ok && h.wire_size() > io.in.cap - io.in.lo) {
      if (!worker.buffers().reserve(io.in, static_cast<std::uint32_t>(h.wire_size()))) {
        close("out of memory");
        return;
      }
    }
    if (!io.readable) {
      worker.buffers().release_if_empty(io.in);
      return;
    }
    auto r = io.read(worker.buffers());
    if (r.kind == net::IoResult::Kind::Eof || r.kind == net::IoResult::Kind::Error) {
      close("client unexpected eof");
      return;
    }
  }
}

bool Client::handle_auth_message(std::string_view body) {
  namespace a = proto::auth;
  proto::BodyReader rd(body);
  switch (auth_->method) {
    case AuthState::Method::Cleartext: {
      auto pw = rd.cstring();
      if (!pw) {
        close("bad auth packet", proto::sqlstate::kProtocolViolation, "malformed password message");
        return false;
      }
      bool ok = false;
      if (auth_->user_known) {
        const std::string& stored = auth_->stored;
        if (a::is_md5_hash(stored)) {
          auto h = a::md5_password_hash(*pw, user_name);
          ok = h && h.value() == stored;
        } else if (is_scram_secret(stored)) {
          auto sec = a::parse_scram_secret(stored);
          if (sec) {
            auto mine = a::make_scram_secret(*pw, sec->salt, sec->iterations);
            ok = mine && mine.value().stored_key == sec->stored_key &&
                 mine.value().server_key == sec->server_key;
          }
        } else {
          ok = !stored.empty() && stored == *pw;
        }
      }
      if (!ok) {
        fail_auth();
        return false;
      }
      auth_succeeded();
      return false;
    }
    case AuthState::Method::Md5: {
      auto resp = rd.cstring();
      if (!resp) {
        close("bad auth packet", proto::sqlstate::kProtocolViolation, "malformed password message");
        return false;
      }
      if (!auth_->user_known || auth_->stored.empty() ||
          !a::md5_verify(auth_->stored, user_name, auth_->salt, *resp)) {
        fail_auth();
        return false;
      }
      auth_succeeded();
      return false;
    }
    case AuthState::Method::Scram: {
      std::size_t mark = io.out.synth_mark();
      if (!auth_->scram_started) {
        auto mech = rd.cstring();
        auto len = rd.i32();
        if (!mech || !len || *len < 0 || static_cast<std::size_t>(*len) != rd.remaining()) {
          close("bad auth packet", proto::sqlstate::kProtocolViolation,
                "malformed SASLInitialResponse");
          return false;
        }
        if (*mech != a::kScramSha256) {
          close("bad auth packet", proto::sqlstate::kProtocolViolation,
                "client selected an invalid SASL authentication mechanism");
          return false;
        }
        auth_->scram_started = true;
        auto first = auth_->scram->on_client_first(rd.rest());
        if (!first) {
          close("SCRAM failure", proto::sqlstate::kProtocolViolation, first.error());
          return false;
        }
        proto::write_auth_request(io.out.synth(), proto::auth::kSaslContinue, first.value());
        (void)io.out.commit_synth(mark);
        return flush_to_client();
      }
      auto fin = auth_->scram->on_client_final(rd.rest());
      if (!fin) {
        if (auth_->scram->failure() == a::ScramFailure::Protocol) {
          close("SCRAM failure", proto::sqlstate::kProtocolViolation, fin.error());
        } else {
          fail_auth();
        }
        return false;
      }
      if (!auth_->user_known) {
        fail_auth();
        return false;
      }
      proto::write_auth_request(io.out.synth(), proto::auth::kSaslFinal, fin.value());
      (void)io.out.commit_synth(mark);
      if (const auto* keys = auth_->scram->recovered_keys(); keys && is_scram_secret(auth_->stored)) {
        worker.pools->remember_scram_keys(user_name, auth_->stored, *keys);
      }
      auth_succeeded();
      return false;
    }
  }
  return false;
}

void Client::fail_auth(const char* sqlstate, std::string_view message) {
  if (sqlstate == nullptr) {
    close("password authentication failed", proto::sqlstate::kInvalidPassword,
          "password authentication failed for user \"" + user_name + "\"");
  } else {
    close("authentication failed", sqlstate, message);
  }
}

void Client::auth_succeeded() {
  auth_.reset();
  const config::Config& cfg = worker.cfg();
  const auto& st = cfg.settings;
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
  std::string limit = worker.pools->try_add_client(db_name, user_name, admin && admin_control);
  if (!limit.empty()) {
    close("no more connections allowed (" + limit + ")", proto::sqlstate::kTooManyConnections,
          "no more connections allowed (" + limit + ")");
    return;
  }
  counted_in_groups_ = true;
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
    send_welcome(w, pool::ParamValues{});
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
  pool::ParamValues defaults;
  if (worker.pools->welcome(*pool, welcome, defaults)) {
    send_welcome(welcome, defaults);
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
  pool::ParamValues defaults;
  if (!worker.pools->welcome(*pool, welcome, defaults)) {
    close("server parameters unknown", proto::sqlstate::kConnectionFailure,
          "server parameters unknown");
    return;
  }
  send_welcome(welcome, defaults);
  flush_to_client();
}

void Client::send_welcome(const std::vector<std::pair<std::string, std::string>>& welcome,
                          const pool::ParamValues& defaults) {
  auto& reg = pool::ParamRegistry::instance();
  auto& values = pool::ValueTable::instance();
  params_ = defaults;
  for (const auto& [k, v] : startup_) {
    int slot = reg.slot(k);
    if (slot >= 0) params_.v[static_cast<std::size_t>(slot)] = values.intern(v);
  }
  std::size_t mark = io.out.synth_mark();
  std::string& out = io.out.synth();
  std::vector<bool> sent(static_cast<std::size_t>(pool::ParamRegistry::kMaxSlots), false);
  for (const auto& [k, v] : welcome) {
    int slot = reg.slot(k);
    if (slot >= 0 && params_.v[static_cast<std::size_t>(slot)] != 0) {
      proto::write_parameter_status(out, k, values.get(params_.v[static_cast<std::size_t>(slot)]));
      sent[static_cast<std::size_t>(slot)] = true;
    } else {
      proto::write_parameter_status(out, k, v);
    }
  }
  for (int i = 0; i < reg.count(); ++i) {
    if (!sent[static_cast<std::size_t>(i)] && params_.v[static_cast<std::size_t>(i)] != 0) {
      proto::write_parameter_status(out, reg.name(i), values.get(params_.v[static_cast<std::size_t>(i)]));
    }
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
  // Login is over: an idle client holds no buffer.
  io.consume_scanned();
  worker.buffers().release_if_empty(io.in);
}

}  // namespace sluice::session
