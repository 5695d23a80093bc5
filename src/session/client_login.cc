// Client login, the client's part: the names the login read, what follows authentication
// (database checks, connection limits, the pool), the welcome. The login itself is session::Login.
#include <strings.h>
#include <sys/random.h>

#include "core/log.h"
#include "proto/codes.h"
#include "proto/writer.h"
#include "session/client.h"

namespace sluice::session {
namespace {

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

void Client::login_named(const std::string& user, const std::string& db, const std::string& app,
                         bool admin_db) {
  user_name = user;
  db_name = db;
  application_name = app;
  admin = admin_db;
  compute_limits();
}

void Client::end_login() {
  if (!login_) return;
  login_->end();
  worker.loop().retire(login_.release());
}

void Client::login_authenticated(bool peer_admin) {
  if (peer_admin) admin_control = true;
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
  std::vector<std::pair<std::string, std::string>> startup;
  if (login_) startup = login_->take_startup_settings();
  std::vector<std::pair<std::string, std::string>> want;
  for (const auto& [k, v] : startup) {
    bool is_default = false;
    for (const auto& [wk, wv] : welcome) {
      if (same_name(wk, k) && wv == v) is_default = true;
    }
    if (!is_default) want.emplace_back(k, v);
  }
  tracker_.set_settings(pool::make_settings(std::move(want)));
  std::size_t mark = io.out.synth_mark();
  std::string& out = io.out.synth();
  for (const auto& [k, v] : welcome) {
    const std::string* mine = pool::find_setting(tracker_.settings(), k);
    proto::write_parameter_status(out, k, mine != nullptr ? *mine : v);
  }
  const auto& reg = worker.registries().params;
  for (const auto& [k, v] : startup) {  // reported settings the server did not announce
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
  end_login();
  last_activity = worker.loop().now();
  // Login is over: an idle client holds no buffer, unless the client sent more with its
  // last login message (or while it waited): no new edge will announce those bytes, so they
  // are handled once this event is done (on_deferred).
  io.consume_scanned();
  worker.buffers().release_if_empty(io.in);
  if (io.unscanned() > 0 || io.readable) worker.loop().defer(*this);
}

}  // namespace sluice::session
