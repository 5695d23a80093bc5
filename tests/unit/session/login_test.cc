// session::Login over a real socket pair: raw protocol bytes on one end, the login on the other,
// a real SessionWorker (event loop, buffers, configuration). The host (what Client is to the
// login) is the seam faked here: it records what the login asks of it.
#include "session/login.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proto/auth/md5.h"
#include "proto/auth/scram_client.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/writer.h"
#include "session/session_worker.h"
#include "unit/config/temp_dir.h"
#include "unit/net/socket_pair.h"
#include "unit/session/wire_messages.h"

namespace sluice::session {
namespace {

using net::testing::SocketPair;
using testing::Message;
using testing::split_messages;

void put32(std::string& out, std::uint32_t v) {
  out.resize(out.size() + 4);
  proto::write_be32(out.data() + out.size() - 4, v);
}

// A packet without a type byte (SSLRequest, CancelRequest): length, code, rest.
std::string untyped(std::uint32_t code, std::string_view rest = {}) {
  std::string out;
  put32(out, static_cast<std::uint32_t>(8 + rest.size()));
  put32(out, code);
  out.append(rest);
  return out;
}

// The SQLSTATE of an ErrorResponse body.
std::string sqlstate_of(const std::string& body) {
  std::size_t i = 0;
  while (i < body.size() && body[i] != 0) {
    char code = body[i++];
    std::size_t end = body.find('\0', i);
    if (end == std::string::npos) break;
    if (code == 'C') return body.substr(i, end - i);
    i = end + 1;
  }
  return {};
}

// What Client is to the login: the socket, closing (an ErrorResponse as Client::close sends,
// then the socket closed), and the record of every callback.
class FakeHost final : public LoginHost {
 public:
  FakeHost(SessionWorker& w, SocketPair& pair, bool unix_socket)
      : w_(w), pair_(pair), unix_(unix_socket) {
    io.fd = pair.a();
  }
  ~FakeHost() { w_.buffers().release(io.in); }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  net::Stream& login_stream() override { return io; }
  [[nodiscard]] bool login_unix_socket() const override { return unix_; }
  [[nodiscard]] std::string login_log_prefix() const override { return "C-test:"; }
  bool login_flush() override {
    int err = 0;
    if (io.flush(err) == net::Outbox::Flush::Error) {
      login_close("client unexpected eof", nullptr, {});
      return false;
    }
    return true;
  }
  void login_close(std::string_view reason, const char* sqlstate,
                   std::string_view message) override {
    ++closes;
    close_reason = std::string(reason);
    close_sqlstate = sqlstate != nullptr ? sqlstate : "";
    if (sqlstate != nullptr) {
      std::string out;
      proto::write_error(out,
                         {proto::Severity::Fatal, sqlstate, message.empty() ? reason : message});
      SocketPair::write_all(pair_.a(), out);
    }
    w_.buffers().release(io.in);
    io.out.clear();
    io.fd = -1;
    pair_.close_a();
  }
  void login_named(const std::string& user, const std::string& db, const std::string& app,
                   bool admin) override {
    user_name = user;
    db_name = db;
    application_name = app;
    admin_db = admin;
  }
  void login_authenticating() override { ++authenticating; }
  void login_cancel(std::uint32_t pid, std::uint32_t secret) override {
    ++cancels;
    cancel_pid = pid;
    cancel_secret = secret;
  }
  void login_authenticated(bool peer_admin) override {
    ++authenticated;
    authenticated_as_peer_admin = peer_admin;
  }

  net::Stream io;
  int closes = 0;
  std::string close_reason;
  std::string close_sqlstate;
  std::string user_name;
  std::string db_name;
  std::string application_name;
  bool admin_db = false;
  int authenticating = 0;
  int cancels = 0;
  std::uint32_t cancel_pid = 0;
  std::uint32_t cancel_secret = 0;
  int authenticated = 0;
  bool authenticated_as_peer_admin = false;

 private:
  SessionWorker& w_;
  SocketPair& pair_;
  bool unix_;
};

class LoginTest : public ::testing::Test {
 protected:
  LoginTest() : worker_(0, 4096, shared_) {}

  // Installs a configuration: `settings` in [pgbouncer], alice's password "secret" (plain text
  // in the auth file).
  void configure(std::string_view settings) {
    std::string auth = dir_.write("users.txt", "\"alice\" \"secret\"\n");
    std::string text = "[databases]\n* = host=127.0.0.1 port=1\n[pgbouncer]\nauth_file = " + auth +
                       "\n" + std::string(settings) + "\n";
    auto r = config::parse(text, dir_.path());
    ASSERT_TRUE(r.ok()) << r.error();
    shared_.publish_config(*r);
    worker_.sync_config();
  }

  // A login on side `a` of the pair (a TCP client unless `unix_socket`).
  void start(bool unix_socket = false) {
    host_ = std::make_unique<FakeHost>(worker_, pair_, unix_socket);
    login_ = std::make_unique<Login>(worker_, *host_);
  }

  // The client sends `bytes`; the login handles them as after an epoll edge.
  void send(std::string_view bytes) {
    SocketPair::write_all(pair_.b(), bytes);
    host_->io.readable = true;
    login_->on_input();
  }

  std::string startup(std::string_view user, std::string_view db = "app") {
    std::string out;
    proto::write_startup(
        out,
        {{"user", std::string(user)}, {"database", std::string(db)}, {"application_name", "unit"}});
    return out;
  }

  // What the client received so far, as messages.
  std::vector<Message> received() { return split_messages(SocketPair::drain(pair_.b())); }

  // The peer sees the end of the connection.
  bool peer_sees_eof() {
    char c = 0;
    return ::recv(pair_.b(), &c, 1, 0) == 0;
  }

  // The single authentication request the client received: its code, and the rest.
  std::uint32_t auth_request(std::string* rest = nullptr) {
    auto msgs = received();
    EXPECT_EQ(msgs.size(), 1u);
    if (msgs.size() != 1 || msgs[0].type != 'R' || msgs[0].body.size() < 4) {
      ADD_FAILURE() << "no authentication request";
      return ~0u;
    }
    if (rest != nullptr) *rest = msgs[0].body.substr(4);
    return proto::read_be32(msgs[0].body.data());
  }

  // Reads the md5 request and answers it with `password`'s response to its salt.
  void send_md5(std::string_view password) {
    std::string salt;
    ASSERT_EQ(auth_request(&salt), proto::auth::kMd5);
    ASSERT_EQ(salt.size(), 4u);
    proto::auth::Md5Salt s{};
    std::memcpy(s.data(), salt.data(), 4);
    auto resp = proto::auth::md5_client_response(password, "alice", s);
    ASSERT_TRUE(resp);
    std::string pw;
    proto::write_password(pw, resp.value());
    send(pw);
  }

  // After the SASL request: the client's SASLInitialResponse, the server's SASLContinue, the
  // client's SASLResponse.
  void send_scram(proto::auth::ScramClient& client) {
    auto first = client.client_first();
    ASSERT_TRUE(first);
    std::string out;
    proto::write_sasl_initial(out, client.mechanism(), first.value());
    send(out);
    std::string server_first;
    ASSERT_EQ(auth_request(&server_first), proto::auth::kSaslContinue);
    auto final_msg = client.on_server_first(server_first);
    ASSERT_TRUE(final_msg) << final_msg.error();
    out.clear();
    proto::write_sasl_response(out, final_msg.value());
    send(out);
  }

  void expect_error_and_eof(std::string_view sqlstate) {
    auto msgs = received();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type, 'E');
    EXPECT_EQ(sqlstate_of(msgs[0].body), sqlstate);
    EXPECT_TRUE(peer_sees_eof());
    EXPECT_EQ(host_->closes, 1);
    EXPECT_EQ(host_->authenticated, 0);
    EXPECT_TRUE(login_->ended());
  }

  config::testing::TempDir dir_;
  Shared shared_;
  SessionWorker worker_;
  SocketPair pair_;
  std::unique_ptr<FakeHost> host_;
  std::unique_ptr<Login> login_;
};

TEST_F(LoginTest, BadStartupLengthIsRefusedWith08P01AndClosed) {
  configure("auth_type = md5");
  start();
  std::string bad;
  put32(bad, 3);  // shorter than its own header
  put32(bad, 196608);
  send(bad);
  expect_error_and_eof(proto::sqlstate::kProtocolViolation);
  EXPECT_EQ(host_->close_reason, "bad startup packet");
}

TEST_F(LoginTest, StartupPacketInPiecesIsReadWhole) {
  configure("auth_type = md5");
  start();
  std::string s = startup("alice");
  send(s.substr(0, 3));  // not even the length yet
  send(s.substr(3, 10));
  EXPECT_EQ(host_->closes, 0);
  EXPECT_TRUE(received().empty());
  send(s.substr(13));
  EXPECT_EQ(auth_request(), proto::auth::kMd5);
  EXPECT_EQ(host_->user_name, "alice");
  EXPECT_EQ(host_->db_name, "app");
  EXPECT_EQ(host_->application_name, "unit");
  EXPECT_EQ(host_->authenticating, 1);
}

TEST_F(LoginTest, SslRequestWithoutTlsIsAnsweredNAndTheLoginGoesOn) {
  configure("auth_type = plain");
  start();
  send(untyped(proto::kSslRequestCode));
  EXPECT_EQ(SocketPair::drain(pair_.b()), "N");
  EXPECT_EQ(host_->closes, 0);
  send(startup("alice"));
  EXPECT_EQ(auth_request(), proto::auth::kCleartext);
}

TEST_F(LoginTest, GssEncRequestIsAnsweredN) {
  configure("auth_type = plain");
  start();
  send(untyped(proto::kGssEncRequestCode));
  EXPECT_EQ(SocketPair::drain(pair_.b()), "N");
  EXPECT_EQ(host_->closes, 0);
}

TEST_F(LoginTest, SslRequiredRefusesAPlainTcpStartupWith28000) {
  configure("auth_type = plain\nclient_tls_sslmode = require");
  start(/*unix_socket=*/false);
  send(startup("alice"));
  expect_error_and_eof(proto::sqlstate::kInvalidAuthorization);
  EXPECT_EQ(host_->close_reason, "SSL required");
}

TEST_F(LoginTest, SslRequiredDoesNotApplyToTheUnixSocket) {
  configure("auth_type = plain\nclient_tls_sslmode = require");
  start(/*unix_socket=*/true);
  send(startup("alice"));
  EXPECT_EQ(auth_request(), proto::auth::kCleartext);
}

TEST_F(LoginTest, NewerMinorAndPqOptionsAreAnsweredWithNegotiateProtocolVersion) {
  configure("auth_type = plain");
  start();
  std::string s;
  proto::write_startup(s, {{"user", "alice"}, {"_pq_.compression", "on"}});
  s[7] = 2;  // protocol 3.2
  send(s);
  auto msgs = received();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].type, 'v');
  std::string expect;
  put32(expect, 0);  // we speak 3.0
  put32(expect, 1);
  expect += std::string("_pq_.compression\0", 17);
  EXPECT_EQ(msgs[0].body, expect);
  EXPECT_EQ(msgs[1].type, 'R');
  EXPECT_EQ(host_->db_name, "alice");  // the user's name when no database is given
}

TEST_F(LoginTest, OurOwnOsUserGetsTheConsoleOverTheUnixSocket) {
  shared_.uid = ::getuid();
  configure("auth_type = md5");
  start(/*unix_socket=*/true);
  send(startup("pgbouncer", "pgbouncer"));
  EXPECT_EQ(host_->authenticated, 1);
  EXPECT_TRUE(host_->authenticated_as_peer_admin);
  EXPECT_TRUE(host_->admin_db);
  EXPECT_TRUE(received().empty());  // no password asked
}

TEST_F(LoginTest, TheConsoleOverTcpStillNeedsAPassword) {
  shared_.uid = ::getuid();
  configure("auth_type = md5");
  start(/*unix_socket=*/false);
  send(startup("pgbouncer", "pgbouncer"));
  EXPECT_EQ(host_->authenticated, 0);
  EXPECT_TRUE(host_->admin_db);
  EXPECT_EQ(auth_request(), proto::auth::kMd5);
}

TEST_F(LoginTest, CleartextPasswordFromTheAuthFileSucceeds) {
  configure("auth_type = plain");
  start();
  send(startup("alice"));
  ASSERT_EQ(auth_request(), proto::auth::kCleartext);
  std::string pw;
  proto::write_password(pw, "secret");
  send(pw);
  EXPECT_EQ(host_->authenticated, 1);
  EXPECT_FALSE(host_->authenticated_as_peer_admin);
  EXPECT_EQ(host_->closes, 0);
  EXPECT_TRUE(received().empty());  // AuthenticationOk is the host's to send
  auto settings = login_->take_startup_settings();
  ASSERT_EQ(settings.size(), 1u);
  EXPECT_EQ(settings[0].first, "application_name");
  EXPECT_EQ(settings[0].second, "unit");
}

TEST_F(LoginTest, Md5PasswordFromTheAuthFileSucceeds) {
  configure("auth_type = md5");
  start();
  send(startup("alice"));
  ASSERT_NO_FATAL_FAILURE(send_md5("secret"));
  EXPECT_EQ(host_->authenticated, 1);
  EXPECT_EQ(host_->closes, 0);
}

TEST_F(LoginTest, ScramPasswordFromTheAuthFileSucceedsAndTheServerProvesItself) {
  configure("auth_type = scram-sha-256");
  start();
  send(startup("alice"));
  std::string mechanisms;
  ASSERT_EQ(auth_request(&mechanisms), proto::auth::kSasl);
  EXPECT_EQ(mechanisms, std::string("SCRAM-SHA-256\0\0", 15));
  auto client = proto::auth::ScramClient::with_password("secret");
  ASSERT_NO_FATAL_FAILURE(send_scram(client));
  EXPECT_EQ(host_->authenticated, 1);
  EXPECT_EQ(host_->closes, 0);
  // SASLFinal is queued: the host sends it with its AuthenticationOk.
  ASSERT_TRUE(host_->login_flush());
  std::string server_final;
  ASSERT_EQ(auth_request(&server_final), proto::auth::kSaslFinal);
  EXPECT_TRUE(client.on_server_final(server_final));
}

TEST_F(LoginTest, WrongMd5PasswordIs28P01) {
  configure("auth_type = md5");
  start();
  send(startup("alice"));
  ASSERT_NO_FATAL_FAILURE(send_md5("wrong"));
  expect_error_and_eof(proto::sqlstate::kInvalidPassword);
}

TEST_F(LoginTest, WrongScramPasswordIs28P01) {
  configure("auth_type = scram-sha-256");
  start();
  send(startup("alice"));
  ASSERT_EQ(auth_request(), proto::auth::kSasl);
  auto client = proto::auth::ScramClient::with_password("wrong");
  ASSERT_NO_FATAL_FAILURE(send_scram(client));
  expect_error_and_eof(proto::sqlstate::kInvalidPassword);
}

TEST_F(LoginTest, UnknownUserGetsTheSameExchangeAndThe28P01) {
  configure("auth_type = plain");
  start();
  send(startup("mallory"));
  ASSERT_EQ(auth_request(), proto::auth::kCleartext);  // no hint that the user is unknown
  std::string pw;
  proto::write_password(pw, "secret");
  send(pw);
  expect_error_and_eof(proto::sqlstate::kInvalidPassword);
}

TEST_F(LoginTest, CancelRequestIsHandedToTheHost) {
  configure("auth_type = md5");
  start();
  std::string rest;
  put32(rest, 0x12345678);
  put32(rest, 0x9abcdef0);
  send(untyped(proto::kCancelRequestCode, rest));
  EXPECT_EQ(host_->cancels, 1);
  EXPECT_EQ(host_->cancel_pid, 0x12345678u);
  EXPECT_EQ(host_->cancel_secret, 0x9abcdef0u);
  EXPECT_EQ(host_->closes, 0);
  EXPECT_TRUE(login_->ended());
  EXPECT_TRUE(SocketPair::drain(pair_.b()).empty());  // a cancel connection gets no answer
}

TEST_F(LoginTest, PasswordMessageOfTheWrongTypeIs08P01) {
  configure("auth_type = plain");
  start();
  send(startup("alice"));
  ASSERT_EQ(auth_request(), proto::auth::kCleartext);
  std::string q;
  proto::write_query(q, "select 1");
  send(q);
  expect_error_and_eof(proto::sqlstate::kProtocolViolation);
}

TEST_F(LoginTest, EndedLoginIgnoresInput) {
  configure("auth_type = plain");
  start();
  send(startup("alice"));
  ASSERT_EQ(auth_request(), proto::auth::kCleartext);
  login_->end();  // the host closed (a timeout, a shutdown)
  std::string pw;
  proto::write_password(pw, "secret");
  send(pw);
  EXPECT_EQ(host_->authenticated, 0);
  EXPECT_EQ(host_->closes, 0);
}

}  // namespace
}  // namespace sluice::session
