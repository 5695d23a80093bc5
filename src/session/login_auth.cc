// Login authentication: auth_type or the matching hba rule, auth_file or auth_query secrets,
// password/md5/SCRAM(-PLUS) exchanges, certificates and peer credentials.
#include <pwd.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <cstring>

#include "config/hba.h"
#include "core/log.h"
#include "pool/registries.h"
#include "proto/auth/md5.h"
#include "proto/auth/scram.h"
#include "proto/backend.h"
#include "proto/codes.h"
#include "proto/reader.h"
#include "proto/writer.h"
#include "session/auth_query.h"
#include "session/auth_state.h"
#include "session/login.h"
#include "session/plain_scram.h"
#include "session/session_worker.h"

namespace sluice::session {
namespace {

using Check = AuthState::Check;

bool is_admin_db(std::string_view db) {
  return db == "pgbouncer" || db == "sluice";
}

bool is_scram_secret(std::string_view s) {
  return s.rfind("SCRAM-SHA-256$", 0) == 0;
}

std::uint32_t random_u32() {
  std::uint32_t v = 0;
  std::size_t got = 0;
  while (got < sizeof v) {
    ssize_t r = getrandom(reinterpret_cast<char*>(&v) + got, sizeof v - got, 0);
    if (r > 0) got += static_cast<std::size_t>(r);
  }
  return v;
}

Check from_hba(config::HbaMethod m) {
  switch (m) {
    case config::HbaMethod::Trust:
      return Check::Trust;
    case config::HbaMethod::Password:
      return Check::Password;
    case config::HbaMethod::Md5:
      return Check::Md5;
    case config::HbaMethod::ScramSha256:
      return Check::Scram;
    case config::HbaMethod::Cert:
      return Check::Cert;
    case config::HbaMethod::Peer:
      return Check::Peer;
    case config::HbaMethod::Reject:
      break;
  }
  return Check::Trust;  // not reached: reject is handled before
}

// The OS user name of a uid.
std::string os_user_name(int uid) {
  if (uid < 0) return {};
  passwd pw{};
  passwd* out = nullptr;
  char buf[4096];
  if (getpwuid_r(static_cast<uid_t>(uid), &pw, buf, sizeof buf, &out) != 0 || out == nullptr) {
    return {};
  }
  return pw.pw_name;
}

}  // namespace

// Logs who was refused and why (for the operator), tells the client only what Postgres would.
void Login::refuse(std::string_view log_reason, const char* sqlstate, std::string_view message) {
  if (worker_.cfg().settings.log_pooler_errors && log_reason != message) {
    core::log(core::LogLevel::Log, "{} login refused: {}", log_prefix(), log_reason);
  }
  close(message, sqlstate, message);
}

void Login::begin_auth() {
  const config::Config& cfg = worker_.cfg();
  if (protocol_minor_ > 0 || !unknown_pq_.empty()) {
    // We speak 3.0: tell a newer client before anything else, as Postgres does.
    std::size_t mark = io_.out.synth_mark();
    proto::write_negotiate_protocol_version(io_.out.synth(), 0, unknown_pq_);
    (void)io_.out.commit_synth(mark);
    std::vector<std::string>().swap(unknown_pq_);
  }
  // The admin console lets our own OS user in over the unix socket as "pgbouncer".
  if (admin_ && host_.login_unix_socket() &&
      net::peer_uid(io_.fd) == static_cast<int>(worker_.shared().uid) &&
      (user_ == "pgbouncer" || user_ == "sluice")) {
    succeeded(/*peer_admin=*/true);
    return;
  }
  if (!auth_) auth_ = std::make_unique<AuthState>();
  if (!choose_check()) return;
  // Methods that check a password need the user's secret; trust needs the user to exist.
  Check c = auth_->check;
  if (c == Check::Trust || c == Check::Password || c == Check::Md5 || c == Check::Scram) {
    if (const config::AuthEntry* entry = cfg.find_auth(user_)) {
      auth_->user_known = true;
      auth_->stored = entry->secret;
    } else if (start_lookup()) {
      return;  // continues in lookup_done (or the client was closed)
    }
  }
  run_check();
}

// auth_type, or the first matching rule of auth_hba_file. False: refused (closed).
bool Login::choose_check() {
  const config::Config& cfg = worker_.cfg();
  switch (cfg.settings.auth_type) {
    case config::AuthType::Any:
      auth_->check = Check::Any;
      return true;
    case config::AuthType::Trust:
      auth_->check = Check::Trust;
      return true;
    case config::AuthType::Plain:
      auth_->check = Check::Password;
      return true;
    case config::AuthType::Md5:
      auth_->check = Check::Md5;
      return true;
    case config::AuthType::ScramSha256:
      auth_->check = Check::Scram;
      return true;
    case config::AuthType::Cert:
      auth_->check = Check::Cert;
      return true;
    case config::AuthType::Hba:
      break;
    default:
      close("unsupported auth_type", proto::sqlstate::kFeatureNotSupported,
            "auth_type " + std::string(config::to_string(cfg.settings.auth_type)) +
                " is not supported");
      return false;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (!host_.login_unix_socket()) getpeername(io_.fd, reinterpret_cast<sockaddr*>(&ss), &len);
  config::HbaClient who;
  who.unix_socket = host_.login_unix_socket();
  who.tls = io_.tls != nullptr;
  who.addr = host_.login_unix_socket() ? nullptr : &ss;
  who.database = db_;
  who.user = user_;
  const config::HbaRule* rule = cfg.hba ? cfg.hba->match(who) : nullptr;
  std::string host = host_.login_unix_socket() ? std::string("[local]") : net::format_addr_host(ss);
  std::string tls = io_.tls ? "SSL on" : "SSL off";
  if (rule == nullptr) {
    std::string msg = host_.login_unix_socket()
                          ? "no pg_hba.conf entry for host \"[local]\", user \"" + user_ +
                                "\", database \"" + db_ + "\""
                          : "no pg_hba.conf entry for host \"" + host + "\", user \"" + user_ +
                                "\", database \"" + db_ + "\", " + tls;
    refuse(cfg.hba == nullptr  ? "auth_hba_file is not loaded"
           : cfg.hba->broken() ? "auth_hba_file has errors: every login is refused"
                               : "no rule in auth_hba_file matches",
           proto::sqlstate::kInvalidAuthorization, msg);
    return false;
  }
  if (rule->method == config::HbaMethod::Reject) {
    std::string msg = host_.login_unix_socket()
                          ? "pg_hba.conf rejects connection for host \"[local]\", user \"" + user_ +
                                "\", database \"" + db_ + "\""
                          : "pg_hba.conf rejects connection for host \"" + host + "\", user \"" +
                                user_ + "\", database \"" + db_ + "\", " + tls;
    refuse("rejected by " + cfg.hba->file_name() + " line " + std::to_string(rule->line),
           proto::sqlstate::kInvalidAuthorization, msg);
    return false;
  }
  auth_->check = from_hba(rule->method);
  auth_->hba_line = rule->line;
  auth_->map = rule->map;
  return true;
}

// Starts auth_query for a user missing from the auth file when an auth_user applies. False:
// no lookup applies (the user is unknown). True: started, or the client was closed.
bool Login::start_lookup() {
  const config::Config& cfg = worker_.cfg();
  const auto& st = cfg.settings;
  // The client's database entry (the "*" entry for names not listed, the console included)
  // may override auth_user, auth_dbname and auth_query; for the console, a global auth_dbname
  // wins over the "*" entry's.
  const config::DatabaseConfig* d = admin_ ? nullptr : cfg.find_database(db_);
  if (d == nullptr) d = cfg.fallback_database();
  if (d == nullptr && !admin_) return false;  // no such database: reported after authentication
  std::string auth_user = d != nullptr && d->auth_user ? *d->auth_user : st.auth_user;
  if (auth_user.empty()) return false;
  std::string auth_db = d != nullptr && d->auth_dbname ? *d->auth_dbname : st.auth_dbname;
  if (admin_ && !st.auth_dbname.empty()) auth_db = st.auth_dbname;
  if (auth_db.empty()) {
    if (admin_) return false;
    auth_db = db_;
  }
  if (is_admin_db(auth_db)) {
    core::log(core::LogLevel::Warning,
              "{} cannot use the reserved \"{}\" database as an auth_dbname", log_prefix(),
              auth_db);
    close("bouncer config error", proto::sqlstate::kProtocolViolation, "bouncer config error");
    return true;
  }
  const config::DatabaseConfig* ad = cfg.find_database(auth_db);
  if (ad == nullptr) ad = cfg.fallback_database();
  if (ad == nullptr) {
    core::log(core::LogLevel::Warning, "{} authentication database \"{}\" is not configured",
              log_prefix(), auth_db);
    close("bouncer config error", proto::sqlstate::kProtocolViolation, "bouncer config error");
    return true;
  }
  if (worker_.pools->database_disabled(auth_db)) {
    std::string msg = "authentication database \"" + auth_db + "\" is disabled";
    close(msg, proto::sqlstate::kConnectionFailure, msg);
    return true;
  }
  std::string sql = d != nullptr && d->auth_query ? *d->auth_query : st.auth_query;
  pool::Pool* p = worker_.pools->get_pool(*ad, auth_db, auth_user, worker_);
  phase_ = Phase::Auth;
  host_.login_authenticating();  // timed by client_login_timeout while the lookup runs
  auth_->lookup = AuthQuery::start(worker_, *p, std::move(sql), user_, *this);
  return true;
}

void Login::lookup_done(AuthLookup r) {
  if (!auth_) return;
  auth_->lookup = nullptr;
  switch (r.kind) {
    case AuthLookup::Kind::Found:
      auth_->user_known = true;
      auth_->stored = r.secret ? *r.secret : std::string();
      // The pools of this user log in to servers with it (SCRAM: with the client's proof).
      if (r.secret && !r.secret->empty()) {
        worker_.registries().learned.remember(user_, *r.secret);
      } else {
        worker_.registries().learned.forget(user_);
      }
      run_check();
      return;
    case AuthLookup::Kind::NotFound:
      // As PgBouncer: auth_query users get no mock exchange.
      close("no such user", proto::sqlstate::kInvalidAuthorization, "no such user");
      return;
    case AuthLookup::Kind::QueryFailed:
      close("bouncer config error", proto::sqlstate::kProtocolViolation, "bouncer config error");
      return;
    case AuthLookup::Kind::LoginFailed: {
      auto e = proto::ErrorView::decode(r.error_body);
      std::string msg = e && !e->message.empty() ? std::string(e->message) : "server login failed";
      std::string code = e && !e->sqlstate.empty() ? std::string(e->sqlstate) : "08P01";
      close(msg, code.c_str(), msg);
      return;
    }
  }
}

void Login::run_check() {
  const config::Config& cfg = worker_.cfg();
  switch (auth_->check) {
    case Check::Any:
      succeeded();
      return;
    case Check::Trust:
      // The user must exist when there is an auth file (an auth_query miss closed already).
      if (!auth_->user_known && !cfg.settings.auth_file.empty()) {
        close("\"trust\" authentication failed", proto::sqlstate::kInvalidAuthorization,
              "\"trust\" authentication failed");
        return;
      }
      succeeded();
      return;
    case Check::Cert:
      check_certificate();
      return;
    case Check::Peer:
      check_peer();
      return;
    case Check::Password:
    case Check::Md5:
    case Check::Scram:
      start_password_exchange();
      return;
  }
}

void Login::check_certificate() {
  if (!io_.tls) {
    refuse("cert authentication needs TLS", proto::sqlstate::kInvalidAuthorization,
           "TLS connection required");
    return;
  }
  if (!io_.tls->peer_verified()) {
    refuse("no verified client certificate", proto::sqlstate::kInvalidAuthorization,
           "TLS client certificate required");
    return;
  }
  std::string cn = io_.tls->peer_common_name();
  const config::Config& cfg = worker_.cfg();
  bool ok = false;
  std::string why;
  if (!auth_->map.empty()) {
    ok = !cn.empty() && cfg.ident && cfg.ident->allows(auth_->map, cn, user_);
    if (!ok) why = "ident map: " + auth_->map + " does not have a match";
  } else {
    ok = !cn.empty() && cn == user_;
    if (!ok) why = "TLS certificate name mismatch";
  }
  if (!ok) {
    refuse(why, proto::sqlstate::kInvalidAuthorization,
           "certificate authentication failed for user \"" + user_ + "\"");
    return;
  }
  succeeded();
}

void Login::check_peer() {
  if (!host_.login_unix_socket()) {
    refuse("peer authentication needs a unix socket", proto::sqlstate::kInvalidAuthorization,
           "peer authentication failed for user \"" + user_ + "\"");
    return;
  }
  std::string os_user = os_user_name(net::peer_uid(io_.fd));
  const config::Config& cfg = worker_.cfg();
  bool ok = false;
  std::string why;
  if (!auth_->map.empty()) {
    ok = !os_user.empty() && cfg.ident && cfg.ident->allows(auth_->map, os_user, user_);
    if (!ok) why = "ident map " + auth_->map + " cannot be matched";
  } else {
    ok = !os_user.empty() && os_user == user_;
    if (!ok) why = "OS user does not match";
  }
  if (!ok) {
    refuse(why, proto::sqlstate::kInvalidAuthorization,
           "peer authentication failed for user \"" + user_ + "\"");
    return;
  }
  succeeded();
}

void Login::start_password_exchange() {
  namespace a = proto::auth;
  const std::string& stored = auth_->stored;
  // An empty secret opens nothing (a NULL from auth_query, an empty auth file entry).
  if (auth_->user_known && stored.empty()) auth_->user_known = false;
  switch (auth_->check) {
    case Check::Password:
      auth_->method = AuthState::Method::Cleartext;
      break;
    case Check::Md5:
      auth_->method = is_scram_secret(stored) ? AuthState::Method::Scram : AuthState::Method::Md5;
      break;
    default:
      auth_->method = AuthState::Method::Scram;
      break;
  }
  phase_ = Phase::Auth;
  host_.login_authenticating();
  std::size_t mark = io_.out.synth_mark();
  switch (auth_->method) {
    case AuthState::Method::Cleartext:
      proto::write_auth_request(io_.out.synth(), proto::auth::kCleartext);
      break;
    case AuthState::Method::Md5: {
      std::uint32_t r = random_u32();
      std::memcpy(auth_->salt.data(), &r, 4);
      proto::write_auth_request(io_.out.synth(), proto::auth::kMd5,
                                std::string_view(reinterpret_cast<char*>(auth_->salt.data()), 4));
      break;
    }
    case AuthState::Method::Scram:
      // Channel binding is offered whenever the connection is TLS with a certificate that
      // has a tls-server-end-point hash; the server object is built once the client chose.
      auth_->scram_plus_offered = io_.tls && !io_.tls->cbind_data().empty();
      if (auth_->scram_plus_offered) {
        proto::write_auth_sasl(io_.out.synth(), {a::kScramSha256Plus, a::kScramSha256});
      } else {
        proto::write_auth_sasl(io_.out.synth(), {a::kScramSha256});
      }
      break;
  }
  (void)io_.out.commit_synth(mark);
  if (!host_.login_flush()) return;
  on_auth_input();
}

bool Login::handle_auth_message(std::string_view body) {
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
          auto h = a::md5_password_hash(*pw, user_);
          ok = h && h.value() == stored;
        } else if (is_scram_secret(stored)) {
          auto sec = a::parse_scram_secret(stored);
          if (sec) {
            auto mine = a::make_scram_secret(*pw, sec->salt, sec->iterations);
            ok = mine && a::scram_key_equal(mine.value().stored_key, sec->stored_key) &&
                 a::scram_key_equal(mine.value().server_key, sec->server_key);
          }
        } else {
          ok = !stored.empty() && stored == *pw;
        }
      }
      if (!ok) {
        fail_auth();
        return false;
      }
      succeeded();
      return false;
    }
    case AuthState::Method::Md5: {
      auto resp = rd.cstring();
      if (!resp) {
        close("bad auth packet", proto::sqlstate::kProtocolViolation, "malformed password message");
        return false;
      }
      if (!auth_->user_known || auth_->stored.empty() ||
          !a::md5_verify(auth_->stored, user_, auth_->salt, *resp)) {
        fail_auth();
        return false;
      }
      succeeded();
      return false;
    }
    case AuthState::Method::Scram: {
      std::size_t mark = io_.out.synth_mark();
      if (!auth_->scram_started) {
        auto mech = rd.cstring();
        auto len = rd.i32();
        if (!mech || !len || *len < 0 || static_cast<std::size_t>(*len) != rd.remaining()) {
          close("bad auth packet", proto::sqlstate::kProtocolViolation,
                "malformed SASLInitialResponse");
          return false;
        }
        bool plus = auth_->scram_plus_offered && *mech == a::kScramSha256Plus;
        if (*mech != a::kScramSha256 && !plus) {
          close("bad auth packet", proto::sqlstate::kProtocolViolation,
                "client selected an invalid SASL authentication mechanism");
          return false;
        }
        a::ScramServer::Options opts;
        if (auth_->scram_plus_offered) opts.cbind_data = io_.tls->cbind_data();
        opts.plus_selected = plus;
        const std::string& stored = auth_->stored;
        if (auth_->user_known && is_scram_secret(stored)) {
          if (auto sec = a::parse_scram_secret(stored)) auth_->scram.emplace(std::move(*sec), opts);
        } else if (auth_->user_known && !a::is_md5_hash(stored)) {
          // Derived once per user and password (plain_scram.h): same salt every attempt.
          if (auto sec = worker_.shared().plain_scram.get(user_, stored)) {
            auth_->scram.emplace(*sec, opts);
          }
        }
        if (!auth_->scram) {  // unknown user or an md5-only secret: a convincing failure
          auto m = a::ScramServer::mock(user_, worker_.shared().scram_mock_key, opts);
          if (!m) {
            close("internal error", proto::sqlstate::kInternalError, "SCRAM unavailable");
            return false;
          }
          auth_->scram.emplace(std::move(m.value()));
          auth_->user_known = false;
        }
        auth_->scram_started = true;
        auto first = auth_->scram->on_client_first(rd.rest());
        if (!first) {
          if (auth_->scram->failure() == a::ScramFailure::ChannelBinding) {
            close("channel binding failed", proto::sqlstate::kInvalidAuthorization, first.error());
          } else {
            close("SCRAM failure", proto::sqlstate::kProtocolViolation, first.error());
          }
          return false;
        }
        proto::write_auth_request(io_.out.synth(), proto::auth::kSaslContinue, first.value());
        (void)io_.out.commit_synth(mark);
        return host_.login_flush();
      }
      auto fin = auth_->scram->on_client_final(rd.rest());
      if (!fin) {
        switch (auth_->scram->failure()) {
          case a::ScramFailure::Protocol:
            close("SCRAM failure", proto::sqlstate::kProtocolViolation, fin.error());
            break;
          case a::ScramFailure::ChannelBinding:
            close("channel binding failed", proto::sqlstate::kInvalidAuthorization, fin.error());
            break;
          default:
            fail_auth(proto::sqlstate::kInvalidPassword, "SASL authentication failed");
            break;
        }
        return false;
      }
      if (!auth_->user_known) {
        fail_auth(proto::sqlstate::kInvalidPassword, "SASL authentication failed");
        return false;
      }
      proto::write_auth_request(io_.out.synth(), proto::auth::kSaslFinal, fin.value());
      (void)io_.out.commit_synth(mark);
      if (const auto* keys = auth_->scram->recovered_keys();
          keys && is_scram_secret(auth_->stored)) {
        worker_.pools->remember_scram_keys(user_, auth_->stored, *keys);
      }
      succeeded();
      return false;
    }
  }
  return false;
}

void Login::fail_auth(const char* sqlstate, std::string_view message) {
  if (sqlstate == nullptr) {
    close("password authentication failed", proto::sqlstate::kInvalidPassword,
          "password authentication failed for user \"" + user_ + "\"");
  } else {
    close(message, sqlstate, message);
  }
}

}  // namespace sluice::session
