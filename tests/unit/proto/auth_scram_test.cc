// Tests for SCRAM-SHA-256: RFC 7677 vector, Postgres secrets, client/server exchanges.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/auth/base64.h"
#include "proto/auth/scram.h"
#include "proto/auth/scram_client.h"
#include "proto/auth/scram_server.h"

namespace sluice::proto::auth {
namespace {

// RFC 7677 section 3.
constexpr std::string_view kRfcPassword = "pencil";
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// The verifier Postgres stores for password "foo".
constexpr std::string_view kPgFooSecret =
    "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$RukL0Xo3Ql/2F9FsD7mcQ3GATG2fD3PA71qY1JagGDs=:"
    "BhKUwyyivFm7Tq2jDJVXSVRbRDgTWyBilZKgg6DDuYU=";

ScramSecret rfc_secret() {
  auto s = make_scram_secret(kRfcPassword, *base64_decode(kRfcSalt), 4096);
  EXPECT_TRUE(s.ok());
  return *s;
}

// Runs a whole exchange; returns the error of the first step that failed, or "" on success.
std::string run_exchange(ScramClient& client, ScramServer& server) {
  auto c1 = client.client_first();
  if (!c1) return "client_first: " + c1.error();
  auto s1 = server.on_client_first(*c1);
  if (!s1) return "on_client_first: " + s1.error();
  auto c2 = client.on_server_first(*s1);
  if (!c2) return "on_server_first: " + c2.error();
  auto s2 = server.on_client_final(*c2);
  if (!s2) return "on_client_final: " + s2.error();
  auto done = client.on_server_final(*s2);
  if (!done) return "on_server_final: " + done.error();
  return "";
}

TEST(ScramSecret, PostgresSecretIsTheVerifierOfFoo) {
  auto parsed = parse_scram_secret(kPgFooSecret);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->iterations, 4096);
  EXPECT_EQ(parsed->salt.size(), 16u);
  auto derived = make_scram_secret("foo", parsed->salt, parsed->iterations);
  ASSERT_TRUE(derived.ok()) << derived.error();
  EXPECT_EQ(derived->stored_key, parsed->stored_key);
  EXPECT_EQ(derived->server_key, parsed->server_key);
  EXPECT_EQ(format_scram_secret(*derived), kPgFooSecret);
  EXPECT_EQ(format_scram_secret(*parsed), kPgFooSecret);
}

TEST(ScramSecret, RandomSaltSecretsDiffer) {
  auto a = make_scram_secret("foo");
  auto b = make_scram_secret("foo");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->iterations, kScramDefaultIterations);
  EXPECT_EQ(a->salt.size(), kScramDefaultSaltLen);
  EXPECT_NE(a->salt, b->salt);
  EXPECT_NE(a->stored_key, b->stored_key);
  auto round = parse_scram_secret(format_scram_secret(*a));
  ASSERT_TRUE(round.has_value());
  EXPECT_EQ(round->salt, a->salt);
  EXPECT_EQ(round->stored_key, a->stored_key);
  EXPECT_EQ(round->server_key, a->server_key);
}

TEST(ScramSecret, MalformedSecretsRejected) {
  const std::string key = "RukL0Xo3Ql/2F9FsD7mcQ3GATG2fD3PA71qY1JagGDs=";
  const std::string ok = "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key;
  ASSERT_TRUE(parse_scram_secret(ok).has_value());
  for (const std::string& bad : std::vector<std::string>{
           std::string(""),
           std::string("md5ab8b744ff66bee42dc47bae34ca17959"),
           "SCRAM-SHA-1$4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "scram-sha-256$4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$0:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$-1:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$+4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$04096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$ 4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$10000001:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$99999999999:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           "SCRAM-SHA-256$4096:$" + key + ":" + key,                         // empty salt
           "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg=$" + key + ":" + key,  // bad base64
           "SCRAM-SHA-256$4096$" + key + ":" + key,                          // no salt
           "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==" + key + ":" + key,  // no '$'
           "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + key,       // no ':'
           "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":",       // no server key
           "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key + ":" + key,
           "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key + "$",
           "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$AAAA:" + key,  // short key
           "SCRAM-SHA-256$4096:D76gvGUVj9Z4DNiGoabOBg==$" + key + ":" + key + "AAAA",
           "SCRAM-SHA-256$4096:D76g:vGUVj9Z4DNiGoabOBg==$" + key + ":" + key,
           " " + ok,
           ok + " ",
       }) {
    EXPECT_FALSE(parse_scram_secret(bad).has_value()) << bad;
  }
}

TEST(ScramSecret, IterationParsing) {
  EXPECT_EQ(parse_scram_iterations("1"), 1);
  EXPECT_EQ(parse_scram_iterations("4096"), 4096);
  EXPECT_EQ(parse_scram_iterations("10000000"), kScramMaxIterations);
  for (const char* bad : {"", "0", "10000001", "99999999", "123456789", "-5", "4096x", "0x10"}) {
    EXPECT_FALSE(parse_scram_iterations(bad).has_value()) << bad;
  }
}

TEST(ScramSaslprep, AsciiUnchangedAndNonAsciiRaw) {
  EXPECT_EQ(scram_saslprep("pencil"), "pencil");
  EXPECT_EQ(scram_saslprep(" a\tb~ "), " a\tb~ ");
  EXPECT_EQ(scram_saslprep("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(scram_saslprep("\xff\xfe"), "\xff\xfe");  // not UTF-8: Postgres uses the bytes too
}

TEST(ScramNonce, RandomPrintableAndDistinct) {
  auto a = scram_nonce();
  auto b = scram_nonce();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 24u);
  EXPECT_TRUE(scram_printable(*a));
  EXPECT_NE(*a, *b);
}

TEST(ScramRfc7677, ClientReproducesTheVector) {
  ScramClient::Options o;
  o.user = "user";
  o.nonce = std::string(kRfcClientNonce);
  auto client = ScramClient::with_password(kRfcPassword, o);
  EXPECT_EQ(client.mechanism(), kScramSha256);
  auto first = client.client_first();
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(*first, kRfcClientFirst);
  auto final_msg = client.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(final_msg.ok()) << final_msg.error();
  EXPECT_EQ(*final_msg, kRfcClientFinal);
  auto done = client.on_server_final(kRfcServerFinal);
  ASSERT_TRUE(done.ok()) << done.error();
  EXPECT_TRUE(client.succeeded());
}

TEST(ScramRfc7677, ServerReproducesTheVector) {
  ScramServer::Options o;
  o.nonce = std::string(kRfcServerNonce);
  ScramServer server(rfc_secret(), o);
  auto first = server.on_client_first(kRfcClientFirst);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(*first, kRfcServerFirst);
  auto final_msg = server.on_client_final(kRfcClientFinal);
  ASSERT_TRUE(final_msg.ok()) << final_msg.error();
  EXPECT_EQ(*final_msg, kRfcServerFinal);
  EXPECT_TRUE(server.succeeded());
  EXPECT_EQ(server.failure(), ScramFailure::None);
}

TEST(ScramRfc7677, RecoveredKeysLogInWithoutThePassword) {
  ScramServer::Options so;
  so.nonce = std::string(kRfcServerNonce);
  ScramServer server(rfc_secret(), so);
  ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
  ASSERT_TRUE(server.on_client_final(kRfcClientFinal).ok());
  const ScramKeys* keys = server.recovered_keys();
  ASSERT_NE(keys, nullptr);
  auto expected = scram_derive_keys(kRfcPassword, *base64_decode(kRfcSalt), 4096);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(keys->client_key, expected->client_key);
  EXPECT_EQ(keys->server_key, expected->server_key);

  // Pass-through: the same keys answer the RFC exchange byte for byte.
  ScramClient::Options co;
  co.user = "user";
  co.nonce = std::string(kRfcClientNonce);
  auto client = ScramClient::with_keys(*keys, co);
  ASSERT_TRUE(client.client_first().ok());
  auto final_msg = client.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(final_msg.ok());
  EXPECT_EQ(*final_msg, kRfcClientFinal);
  EXPECT_TRUE(client.on_server_final(kRfcServerFinal).ok());
}

TEST(ScramExchange, RightPasswordAgainstPostgresSecret) {
  ScramServer server(*parse_scram_secret(kPgFooSecret));
  auto client = ScramClient::with_password("foo");
  EXPECT_EQ(run_exchange(client, server), "");
  EXPECT_TRUE(server.succeeded());
  EXPECT_TRUE(client.succeeded());
  EXPECT_NE(server.recovered_keys(), nullptr);
}

TEST(ScramExchange, WrongPasswordFailsAtTheServer) {
  ScramServer server(*parse_scram_secret(kPgFooSecret));
  auto client = ScramClient::with_password("fooo");
  EXPECT_EQ(run_exchange(client, server), "on_client_final: password authentication failed");
  EXPECT_FALSE(server.succeeded());
  EXPECT_EQ(server.failure(), ScramFailure::Authentication);
  EXPECT_EQ(server.recovered_keys(), nullptr);
}

TEST(ScramExchange, ServerFromPlaintextPassword) {
  auto server = ScramServer::with_password("s3cret, with = signs");
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server->secret().iterations, 4096);
  auto client = ScramClient::with_password("s3cret, with = signs");
  EXPECT_EQ(run_exchange(client, *server), "");

  auto server2 = ScramServer::with_password("right");
  ASSERT_TRUE(server2.ok());
  auto wrong = ScramClient::with_password("wrong");
  EXPECT_NE(run_exchange(wrong, *server2), "");
  EXPECT_EQ(server2->failure(), ScramFailure::Authentication);
}

TEST(ScramExchange, EmptyAndBinaryPasswords) {
  for (std::string pw : {std::string(""), std::string("\xff\x01 \xc3\xa9", 5)}) {
    auto server = ScramServer::with_password(pw);
    ASSERT_TRUE(server.ok());
    auto client = ScramClient::with_password(pw);
    EXPECT_EQ(run_exchange(client, *server), "");
  }
}

TEST(ScramExchange, UserNameWithSpecialCharactersIsEncoded) {
  ScramClient::Options o;
  o.user = "a,b=c";
  auto client = ScramClient::with_password("foo", o);
  auto first = client.client_first();
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->starts_with("n,,n=a=2Cb=3Dc,r=")) << *first;
  ScramServer server(*parse_scram_secret(kPgFooSecret));
  ASSERT_TRUE(server.on_client_first(*first).ok());
}

TEST(ScramExchange, ClientOnlyFlagAcceptedWhenNotOffered) {
  ScramClient::Options o;
  o.cbind = CbindFlag::ClientOnly;
  auto client = ScramClient::with_password("foo", o);
  EXPECT_EQ(client.mechanism(), kScramSha256);
  ScramServer server(*parse_scram_secret(kPgFooSecret));
  EXPECT_EQ(run_exchange(client, server), "");
}

TEST(ScramExchange, ClientOnlyFlagIsADowngradeWhenOffered) {
  ScramClient::Options o;
  o.cbind = CbindFlag::ClientOnly;
  auto client = ScramClient::with_password("foo", o);
  ScramServer::Options so;
  so.cbind_data = "certificate hash";
  ScramServer server(*parse_scram_secret(kPgFooSecret), so);
  EXPECT_NE(run_exchange(client, server), "");
  EXPECT_EQ(server.failure(), ScramFailure::Protocol);
}

TEST(ScramChannelBinding, TlsServerEndPointMatches) {
  ScramClient::Options o;
  o.cbind = CbindFlag::TlsServerEndPoint;
  o.cbind_data = std::string("\x01\x02hash\x00bytes", 12);
  auto client = ScramClient::with_password("foo", o);
  EXPECT_EQ(client.mechanism(), kScramSha256Plus);
  ScramServer::Options so;
  so.cbind_data = o.cbind_data;
  so.plus_selected = true;
  ScramServer server(*parse_scram_secret(kPgFooSecret), so);
  EXPECT_EQ(run_exchange(client, server), "");
}

TEST(ScramChannelBinding, TlsServerEndPointMismatchFails) {
  ScramClient::Options o;
  o.cbind = CbindFlag::TlsServerEndPoint;
  o.cbind_data = "the certificate the client saw";
  auto client = ScramClient::with_password("foo", o);
  ScramServer::Options so;
  so.cbind_data = "our certificate";
  so.plus_selected = true;
  ScramServer server(*parse_scram_secret(kPgFooSecret), so);
  EXPECT_EQ(run_exchange(client, server), "on_client_final: SCRAM channel binding check failed");
  EXPECT_EQ(server.failure(), ScramFailure::ChannelBinding);
}

TEST(ScramChannelBinding, PlusRequiresMatchingMechanismAndOffer) {
  const auto secret = *parse_scram_secret(kPgFooSecret);
  // "p" while channel binding is not offered.
  {
    ScramServer::Options so;
    so.plus_selected = true;
    ScramServer server(secret, so);
    EXPECT_FALSE(server.on_client_first("p=tls-server-end-point,,n=,r=abc").ok());
    EXPECT_EQ(server.failure(), ScramFailure::Protocol);
  }
  // "p" with the mechanism SCRAM-SHA-256.
  {
    ScramServer::Options so;
    so.cbind_data = "hash";
    ScramServer server(secret, so);
    EXPECT_FALSE(server.on_client_first("p=tls-server-end-point,,n=,r=abc").ok());
  }
  // SCRAM-SHA-256-PLUS named, but "n" in the message.
  {
    ScramServer::Options so;
    so.cbind_data = "hash";
    so.plus_selected = true;
    ScramServer server(secret, so);
    EXPECT_FALSE(server.on_client_first("n,,n=,r=abc").ok());
  }
  // A channel-binding type other than tls-server-end-point.
  {
    ScramServer::Options so;
    so.cbind_data = "hash";
    so.plus_selected = true;
    ScramServer server(secret, so);
    EXPECT_FALSE(server.on_client_first("p=tls-unique,,n=,r=abc").ok());
    ScramServer ok(secret, so);
    EXPECT_TRUE(ok.on_client_first("p=tls-server-end-point,,n=,r=abc").ok());
  }
  // The client asks for "p" without data.
  {
    ScramClient::Options o;
    o.cbind = CbindFlag::TlsServerEndPoint;
    auto client = ScramClient::with_password("foo", o);
    EXPECT_FALSE(client.client_first().ok());
  }
}

TEST(ScramMock, DoomedExchangeLooksRealAndFails) {
  auto a = ScramServer::mock("nobody", "process key", {});
  auto b = ScramServer::mock("nobody", "process key", {});
  auto c = ScramServer::mock("someone", "process key", {});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->secret().salt, b->secret().salt);  // stable per user
  EXPECT_NE(a->secret().salt, c->secret().salt);
  EXPECT_EQ(a->secret().salt.size(), kScramDefaultSaltLen);
  auto client = ScramClient::with_password("anything");
  EXPECT_EQ(run_exchange(client, *a), "on_client_final: password authentication failed");
  EXPECT_EQ(a->failure(), ScramFailure::Authentication);
}

TEST(ScramOrder, OutOfOrderCallsFailAndStick) {
  ScramServer server(*parse_scram_secret(kPgFooSecret));
  EXPECT_FALSE(server.on_client_final("c=biws,r=abc,p=AAAA").ok());
  EXPECT_EQ(server.failure(), ScramFailure::Protocol);
  EXPECT_FALSE(server.on_client_first("n,,n=,r=abc").ok());  // failed for good

  ScramServer twice(*parse_scram_secret(kPgFooSecret));
  ASSERT_TRUE(twice.on_client_first("n,,n=,r=abc").ok());
  EXPECT_FALSE(twice.on_client_first("n,,n=,r=abc").ok());

  auto client = ScramClient::with_password("foo");
  EXPECT_FALSE(client.on_server_first("r=abc,s=QUJD,i=4096").ok());
  EXPECT_FALSE(client.client_first().ok());
  auto client2 = ScramClient::with_password("foo");
  ASSERT_TRUE(client2.client_first().ok());
  EXPECT_FALSE(client2.on_server_final(kRfcServerFinal).ok());
}

TEST(ScramServerFinal, ClientRejectsWrongSignatureAndErrors) {
  ScramClient::Options o;
  o.user = "user";
  o.nonce = std::string(kRfcClientNonce);
  {
    auto client = ScramClient::with_password(kRfcPassword, o);
    ASSERT_TRUE(client.client_first().ok());
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).ok());
    EXPECT_FALSE(client.on_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").ok());
    EXPECT_FALSE(client.succeeded());
  }
  {
    auto client = ScramClient::with_password(kRfcPassword, o);
    ASSERT_TRUE(client.client_first().ok());
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).ok());
    auto r = client.on_server_final("e=invalid-proof");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("invalid-proof"), std::string::npos);
  }
  {
    // A server that does not know the password cannot produce the signature.
    auto client = ScramClient::with_password("wrong", o);
    ASSERT_TRUE(client.client_first().ok());
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).ok());
    EXPECT_FALSE(client.on_server_final(kRfcServerFinal).ok());
  }
}

TEST(ScramServerFirst, ClientChecksNonceAndParameters) {
  ScramClient::Options o;
  o.nonce = "abc";
  auto expect_reject = [&](std::string_view server_first) {
    auto client = ScramClient::with_password("foo", o);
    EXPECT_TRUE(client.client_first().ok());
    EXPECT_FALSE(client.on_server_first(server_first).ok()) << server_first;
  };
  expect_reject("r=abc,s=QUJD,i=4096");      // server added nothing
  expect_reject("r=abX,s=QUJD,i=4096");      // not our nonce
  expect_reject("r=xabcdef,s=QUJD,i=4096");  // ours, but not as a prefix
  expect_reject("r=ab,s=QUJD,i=4096");       // shorter than ours
  expect_reject("r=abcdef,s=,i=4096");       // empty salt
  expect_reject("r=abcdef,s=QUJ,i=4096");    // bad base64
  expect_reject("r=abcdef,s=QUJD,i=0");      // iterations
  expect_reject("r=abcdef,s=QUJD,i=10000001");
  expect_reject("r=abcdef,s=QUJD,i=-1");
  expect_reject("r=abcdef,s=QUJD,i=4096,x=1");  // libpq rejects extensions too
  auto client = ScramClient::with_password("foo", o);
  ASSERT_TRUE(client.client_first().ok());
  EXPECT_TRUE(client.on_server_first("r=abcdef,s=QUJD,i=1").ok());
}

TEST(ScramServerFinalChecks, ServerRejectsBadClientFinal) {
  const auto secret = rfc_secret();
  ScramServer::Options so;
  so.nonce = std::string(kRfcServerNonce);
  const std::string nonce = std::string(kRfcClientNonce) + std::string(kRfcServerNonce);
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  struct Case {
    std::string client_final;
    ScramFailure why;
  };
  const std::vector<Case> cases = {
      {"c=eSws,r=" + nonce + "," + proof, ScramFailure::Protocol},      // "y,," but sent "n,,"
      {"c=cCws,r=" + nonce + "," + proof, ScramFailure::Protocol},      // "p,,"
      {"c=biwsYQ==,r=" + nonce + "," + proof, ScramFailure::Protocol},  // not base64 of a header
      {"c=biws,r=" + std::string(kRfcClientNonce) + "," + proof, ScramFailure::Protocol},
      {"c=biws,r=" + nonce + "x," + proof, ScramFailure::Protocol},
      {"c=biws,r=" + nonce + ",p=AAAA", ScramFailure::Protocol},
      {"c=biws,r=" + nonce + ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
       ScramFailure::Authentication},
      // An extension changes the AuthMessage, so the RFC proof no longer fits.
      {"c=biws,r=" + nonce + ",x=1," + proof, ScramFailure::Authentication},
  };
  for (const auto& c : cases) {
    ScramServer server(secret, so);
    ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
    EXPECT_FALSE(server.on_client_final(c.client_final).ok()) << c.client_final;
    EXPECT_EQ(server.failure(), c.why) << c.client_final;
    EXPECT_FALSE(server.succeeded());
    EXPECT_EQ(server.recovered_keys(), nullptr);
  }
}

TEST(ScramServerFirstChecks, ServerRejectsBadClientFirst) {
  for (const char* bad :
       {"", "n,,", "n,,n=,r=", "n,a=x,n=,r=abc", "n,,m=1,n=,r=abc", "n,,n=,r=a b", "q,,n=,r=abc"}) {
    ScramServer server(rfc_secret());
    EXPECT_FALSE(server.on_client_first(bad).ok()) << bad;
    EXPECT_EQ(server.failure(), ScramFailure::Protocol);
  }
}

}  // namespace
}  // namespace sluice::proto::auth
