// A client's login, from the first byte to authentication: the first packet (SSLRequest and
// TLS, GSSENCRequest, CancelRequest, StartupMessage), the startup parameters, the choice of check
// (auth_type or auth_hba_file), the user's secret (auth file or auth_query) and the password
// exchange. What comes after authentication (limits, the pool, the welcome) is the Client's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/loop.h"
#include "net/stream.h"

namespace sluice::session {

class SessionWorker;
struct AuthState;
struct AuthLookup;

// What a login needs of its connection (Client implements it; unit tests fake it).
class LoginHost {
 public:
  // The client socket, read and written by the login.
  [[nodiscard]] virtual net::Stream& login_stream() = 0;
  [[nodiscard]] virtual bool login_unix_socket() const = 0;
  [[nodiscard]] virtual std::string login_log_prefix() const = 0;
  // Sends what is queued on the stream; false: the connection was closed.
  virtual bool login_flush() = 0;
  // Ends the connection (an ErrorResponse first when `sqlstate` is set). The login is over.
  virtual void login_close(std::string_view reason, const char* sqlstate,
                           std::string_view message) = 0;
  // Who logs in, as far as the startup packet told yet (log lines and SHOW CLIENTS use it).
  virtual void login_named(const std::string& user, const std::string& db,
                           const std::string& application_name, bool admin) = 0;
  // The password exchange (or the auth_query lookup) started: the state SHOW CLIENTS reports.
  virtual void login_authenticating() = 0;
  // The connection is a CancelRequest for the key (pid, secret). The login is over.
  virtual void login_cancel(std::uint32_t pid, std::uint32_t secret) = 0;
  // Authenticated (the check passed; AuthenticationOk is not sent yet). `peer_admin`: the
  // console's own OS user over the unix socket (control rights). The login's part is over;
  // the host may end it from here (end()).
  virtual void login_authenticated(bool peer_admin) = 0;

 protected:
  ~LoginHost() = default;
};

// One client's login. The host owns it, and may end it from inside a callback (close, cancel,
// authenticated): the Login's own call is still on the stack then, so the host must not free it
// at once (Client retires it: freed after the event batch). An ended Login does nothing more.
class Login final : public net::Retirable {
 public:
  Login(SessionWorker& w, LoginHost& host);
  ~Login() override;
  Login(const Login&) = delete;
  Login& operator=(const Login&) = delete;

  // The socket has input (or the login may go on): reads and handles what it can.
  void on_input();
  // The host closed or the login finished: an auth_query lookup still in flight is abandoned;
  // nothing more reaches the host. (The object itself may be freed after the event batch.)
  void end();
  [[nodiscard]] bool ended() const { return phase_ == Phase::Ended; }

  // The settings the client asked for in its startup packet (tracked ones, with
  // application_name), for the welcome; taken once.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> take_startup_settings() {
    return std::move(startup_);
  }

  [[nodiscard]] std::string log_prefix() const { return host_.login_log_prefix(); }

 private:
  enum class Phase : std::uint8_t { Startup, Auth, Authenticated, Ended };
  friend class AuthQuery;  // lookup_done

  // first packet and startup parameters (login.cc)
  void on_startup_input();
  bool read_input(std::uint32_t need);  // false: wait for input (or closed)
  bool handle_first_packet(std::uint32_t len);
  void handle_startup(std::vector<std::pair<std::string, std::string>> params,
                      std::uint32_t version);
  void on_auth_input();
  void close(std::string_view reason, const char* sqlstate = nullptr,
             std::string_view message = {});
  void refuse_startup(std::string_view reason, const char* sqlstate, std::string_view message);
  void succeeded(bool peer_admin = false);

  // TLS toward the client (login_tls.cc)
  [[nodiscard]] bool tls_offered() const;  // an SSLRequest would be answered 'S'
  bool peek_direct_tls();                  // false: wait for input (or closed)
  bool start_tls(bool direct);             // false: closed
  bool step_tls_handshake();               // false: wait for input (or closed)

  // authentication (login_auth.cc; auth_query.cc calls back)
  void begin_auth();
  bool choose_check();
  bool start_lookup();
  void lookup_done(AuthLookup result);
  void run_check();
  void start_password_exchange();
  bool handle_auth_message(std::string_view body);
  void check_certificate();
  void check_peer();
  void refuse(std::string_view log_reason, const char* sqlstate, std::string_view message);
  void fail_auth(const char* sqlstate = nullptr, std::string_view message = {});

  SessionWorker& worker_;
  LoginHost& host_;
  net::Stream& io_;
  std::unique_ptr<AuthState> auth_;  // until authenticated
  std::vector<std::pair<std::string, std::string>> startup_;
  std::vector<std::string> unknown_pq_;  // _pq_.* options we do not implement
  std::string user_;
  std::string db_;
  std::uint32_t protocol_minor_ = 0;  // what the client asked for
  Phase phase_ = Phase::Startup;
  bool admin_ = false;  // the admin console database
};

}  // namespace sluice::session
