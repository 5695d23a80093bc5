// auth_query: a client's secret looked up on the server through the auth_user's own pool.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "net/loop.h"
#include "pool/pool.h"
#include "pool/server_conn.h"

namespace sluice::session {

class Login;
class SessionWorker;

// What the lookup found.
struct AuthLookup {
  enum class Kind : std::uint8_t {
    Found,        // a row: `secret` (nullopt when the query returned NULL: no password)
    NotFound,     // no row
    QueryFailed,  // the query failed or returned something unusable (logged, with why)
    LoginFailed,  // the auth_user could not log in: `error_body` is the server's refusal
  };
  Kind kind = Kind::NotFound;
  std::optional<std::string> secret;
  std::string error_body;
};

// One lookup. It waits in the auth pool like a client (never blocking the worker), runs
// Parse/Bind/Execute/Close/Sync with the user name as $1 (so no quoting is involved), gives
// the server back and reports to the client on the client's worker. The client may go away at
// any point (abandon); the object then finishes quietly and retires itself.
class AuthQuery final : public pool::Waiter,
                        public pool::ServerUser,
                        public net::Deferrable,
                        public net::Retirable {
 public:
  static AuthQuery* start(SessionWorker& w, pool::Pool& auth_pool, std::string sql,
                          std::string user, Login& login);
  // The login ended (the client is closing): no report; the server is closed if the query is still
  // running.
  void abandon();

  void on_assignment() override;
  void on_login_failed(std::string error_body) override;
  void on_server_io(std::uint32_t events) override;
  void on_deferred() override;
  ~AuthQuery() override;  // drops the pool reference start()'s caller took (get_pool)

 private:
  AuthQuery(SessionWorker& w, pool::Pool& p, std::string sql, std::string user, Login& l);
  void link(pool::ServerConn& s);
  void read_server();
  bool handle_frame(char type, std::string_view body);  // false: ReadyForQuery seen
  void finish(AuthLookup result, bool server_clean);

  SessionWorker& w_;
  pool::Pool& pool_;
  std::string sql_;
  std::string user_;
  Login* login_;
  pool::ServerConn* server_ = nullptr;
  bool pending_assignment_ = false;
  bool finished_ = false;
  // what came back
  int rows_ = 0;
  int columns_ = 0;
  std::optional<std::string> secret_;
  std::string error_;
  char tx_status_ = 0;
};

}  // namespace sluice::session
