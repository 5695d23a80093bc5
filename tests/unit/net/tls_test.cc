// Tests for net::TlsContext / TlsConn and Stream over TLS: handshakes on a socket pair,
// verification, channel-binding data, and reads that must not lose bytes OpenSSL buffered.
#include "net/tls.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/buffer.h"
#include "net/stream.h"
#include "socket_pair.h"

namespace sluice::net {
namespace {

using testing::SocketPair;

// A key and certificate written as PEM files; `issuer` null means self-signed (a CA).
struct Cert {
  EVP_PKEY* key = nullptr;
  X509* x509 = nullptr;
  std::string crt_path;
  std::string key_path;
};

void add_ext(X509* x, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
  X509_EXTENSION* ex = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ex, nullptr);
  X509_add_ext(x, ex, -1);
  X509_EXTENSION_free(ex);
}

class Pki : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ca1_ = make("ca1", "test CA 1", nullptr, true);
    ca2_ = make("ca2", "test CA 2", nullptr, true);
    server_ = make("server", "localhost", &ca1_, false);
    client_ = make("client", "alice", &ca1_, false);
    stranger_ = make("stranger", "alice", &ca2_, false);
  }
  void TearDown() override {
    for (Cert* c : {&ca1_, &ca2_, &server_, &client_, &stranger_}) {
      EVP_PKEY_free(c->key);
      X509_free(c->x509);
    }
    std::filesystem::remove_all(dir_);
  }

  Cert make(const std::string& stem, const char* cn, const Cert* issuer, bool ca) {
    Cert c;
    c.key = EVP_EC_gen("P-256");
    c.x509 = X509_new();
    X509_set_version(c.x509, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.x509), ++serial_);
    X509_gmtime_adj(X509_getm_notBefore(c.x509), -60);
    X509_gmtime_adj(X509_getm_notAfter(c.x509), 3600);
    X509_set_pubkey(c.x509, c.key);
    X509_NAME* name = X509_get_subject_name(c.x509);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509* iss = issuer != nullptr ? issuer->x509 : nullptr;
    X509_set_issuer_name(c.x509, iss != nullptr ? X509_get_subject_name(iss) : name);
    if (ca) {
      add_ext(c.x509, iss, NID_basic_constraints, "critical,CA:TRUE");
      add_ext(c.x509, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
      add_ext(c.x509, iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    }
    X509_sign(c.x509, issuer != nullptr ? issuer->key : c.key, EVP_sha256());
    c.crt_path = dir_ + "/" + stem + ".crt";
    c.key_path = dir_ + "/" + stem + ".key";
    FILE* f = std::fopen(c.crt_path.c_str(), "w");
    PEM_write_X509(f, c.x509);
    std::fclose(f);
    f = std::fopen(c.key_path.c_str(), "w");
    PEM_write_PrivateKey(f, c.key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    return c;
  }

  std::shared_ptr<const TlsContext> server_ctx(const std::string& ca = "") {
    TlsOptions o;
    o.cert_file = server_.crt_path;
    o.key_file = server_.key_path;
    o.ca_file = ca;
    auto r = TlsContext::create(TlsSide::Accept, o);
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? r.value() : nullptr;
  }

  std::shared_ptr<const TlsContext> client_ctx(const std::string& ca, const Cert* cert = nullptr) {
    TlsOptions o;
    o.ca_file = ca;
    if (cert != nullptr) {
      o.cert_file = cert->crt_path;
      o.key_file = cert->key_path;
    }
    auto r = TlsContext::create(TlsSide::Connect, o);
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? r.value() : nullptr;
  }

  std::string dir_;
  long serial_ = 0;
  Cert ca1_, ca2_, server_, client_, stranger_;
};

// Drives both ends until done or failed (one thread, non-blocking socket pair).
bool handshake(TlsConn& a, TlsConn& b) {
  for (int i = 0; i < 200; ++i) {
    auto ra = a.handshake();
    auto rb = b.handshake();
    if (ra == TlsConn::Step::Failed || rb == TlsConn::Step::Failed) return false;
    if (ra == TlsConn::Step::Done && rb == TlsConn::Step::Done) return true;
  }
  return false;
}

TEST_F(Pki, ContextErrorsNameWhatIsWrong) {
  TlsOptions o;
  EXPECT_NE(TlsContext::create(TlsSide::Accept, o).error().find("needs a key file"),
            std::string::npos);
  o.cert_file = dir_ + "/missing.crt";
  o.key_file = server_.key_path;
  EXPECT_NE(TlsContext::create(TlsSide::Accept, o).error().find("cannot load certificate file"),
            std::string::npos);
  o.cert_file = server_.crt_path;
  o.key_file = client_.key_path;
  EXPECT_NE(TlsContext::create(TlsSide::Accept, o).error().find("key values mismatch"),
            std::string::npos)
      << TlsContext::create(TlsSide::Accept, o).error();
  o.key_file = server_.key_path;
  o.protocols = "tlsv9";
  EXPECT_NE(TlsContext::create(TlsSide::Accept, o).error().find("unknown TLS protocol"),
            std::string::npos);
  o.protocols = "secure";
  o.tls13_ciphers = "unknown";
  EXPECT_NE(TlsContext::create(TlsSide::Accept, o).error().find("TLSv1.3 cipher suites"),
            std::string::npos);
  o.tls13_ciphers = "TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256";
  o.ciphers = "not-a-cipher";
  EXPECT_NE(TlsContext::create(TlsSide::Accept, o).error().find("cipher list"), std::string::npos);
  o.ciphers = "all";
  o.ca_file = dir_ + "/missing-ca.crt";
  EXPECT_NE(TlsContext::create(TlsSide::Accept, o).error().find("CA file"), std::string::npos);
  o.ca_file = ca1_.crt_path;
  EXPECT_TRUE(TlsContext::create(TlsSide::Accept, o).ok());
}

TEST_F(Pki, HandshakeVerifiesTheServerAndItsName) {
  SocketPair sp;
  auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
  auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "localhost", true, true);
  ASSERT_TRUE(s.ok() && c.ok());
  ASSERT_TRUE(handshake(*s.value(), *c.value())) << c.value()->error();
  EXPECT_TRUE(c.value()->peer_verified());
  EXPECT_EQ(c.value()->peer_common_name(), "localhost");
  EXPECT_FALSE(s.value()->peer_verified());  // no client certificate asked for
  EXPECT_NE(s.value()->describe().find("TLSv1.3/"), std::string::npos);
}

TEST_F(Pki, WrongCaOrWrongNameFails) {
  {
    SocketPair sp;
    auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
    auto c = TlsConn::connect(client_ctx(ca2_.crt_path), sp.b(), "localhost", true, false);
    EXPECT_FALSE(handshake(*s.value(), *c.value()));
    EXPECT_NE(c.value()->error().find("certificate verify failed"), std::string::npos)
        << c.value()->error();
  }
  {
    SocketPair sp;
    auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
    auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "db.example.com", true, true);
    EXPECT_FALSE(handshake(*s.value(), *c.value()));
    EXPECT_NE(c.value()->error().find("certificate verify failed"), std::string::npos);
  }
  {  // An IP address is checked against the IP SANs.
    SocketPair sp;
    auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
    auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "127.0.0.1", true, true);
    EXPECT_TRUE(handshake(*s.value(), *c.value())) << c.value()->error();
  }
  {  // Without verification any certificate will do.
    SocketPair sp;
    auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
    auto c = TlsConn::connect(client_ctx(ca2_.crt_path), sp.b(), "elsewhere", false, false);
    EXPECT_TRUE(handshake(*s.value(), *c.value()));
  }
}

TEST_F(Pki, ClientCertificates) {
  {  // Requested and sent: verified, CN available.
    SocketPair sp;
    auto s = TlsConn::accept(server_ctx(ca1_.crt_path), sp.a(), true, true);
    auto c = TlsConn::connect(client_ctx(ca1_.crt_path, &client_), sp.b(), "localhost", true, true);
    ASSERT_TRUE(handshake(*s.value(), *c.value())) << s.value()->error();
    EXPECT_TRUE(s.value()->peer_verified());
    EXPECT_EQ(s.value()->peer_common_name(), "alice");
  }
  {  // Required and missing.
    SocketPair sp;
    auto s = TlsConn::accept(server_ctx(ca1_.crt_path), sp.a(), true, true);
    auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "localhost", true, true);
    EXPECT_FALSE(handshake(*s.value(), *c.value()));
  }
  {  // Optional and missing: fine, nothing verified.
    SocketPair sp;
    auto s = TlsConn::accept(server_ctx(ca1_.crt_path), sp.a(), true, false);
    auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "localhost", true, true);
    ASSERT_TRUE(handshake(*s.value(), *c.value()));
    EXPECT_FALSE(s.value()->peer_verified());
    EXPECT_EQ(s.value()->peer_common_name(), "");
  }
  {  // Optional but from another CA: refused.
    SocketPair sp;
    auto s = TlsConn::accept(server_ctx(ca1_.crt_path), sp.a(), true, false);
    auto c =
        TlsConn::connect(client_ctx(ca1_.crt_path, &stranger_), sp.b(), "localhost", true, true);
    EXPECT_FALSE(handshake(*s.value(), *c.value()));
  }
}

TEST_F(Pki, EndpointHashIsSha256OfTheCertificate) {
  auto ctx = server_ctx();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_EQ(X509_digest(server_.x509, EVP_sha256(), md, &len), 1);
  EXPECT_EQ(ctx->endpoint_hash(), std::string(reinterpret_cast<char*>(md), len));
  SocketPair sp;
  auto s = TlsConn::accept(ctx, sp.a(), false, false);
  EXPECT_EQ(s.value()->cbind_data(), ctx->endpoint_hash());
}

TEST_F(Pki, ProtocolVersionsAreEnforced) {
  TlsOptions o;
  o.cert_file = server_.crt_path;
  o.key_file = server_.key_path;
  o.protocols = "tlsv1.3";
  auto only13 = TlsContext::create(TlsSide::Accept, o);
  ASSERT_TRUE(only13.ok()) << only13.error();
  TlsOptions co;
  co.protocols = "tlsv1.2";
  auto only12 = TlsContext::create(TlsSide::Connect, co);
  ASSERT_TRUE(only12.ok());
  SocketPair sp;
  auto s = TlsConn::accept(only13.value(), sp.a(), false, false);
  auto c = TlsConn::connect(only12.value(), sp.b(), "localhost", false, false);
  EXPECT_FALSE(handshake(*s.value(), *c.value()));
}

// The case edge-triggered loops get wrong: several records arrive at once, OpenSSL reads them
// into its buffer, and a reader that stops at the first short read never gets another epoll
// edge for the rest. Stream::read must keep `readable` until everything is out.
TEST_F(Pki, StreamReadDrainsWhatOpenSslBuffered) {
  SocketPair sp;
  auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
  auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "localhost", true, true);
  ASSERT_TRUE(handshake(*s.value(), *c.value()));
  std::string sent;
  for (int i = 0; i < 6; ++i) {
    std::string rec(3000, static_cast<char>('a' + i));
    auto r = c.value()->write(rec.data(), rec.size());
    ASSERT_EQ(r.kind, IoResult::Kind::Data);
    ASSERT_EQ(r.n, rec.size());
    sent += rec;
  }
  core::BufferPool pool(4096);
  Stream st;
  st.fd = sp.a();
  st.tls = std::move(s.value());
  st.readable = true;  // one edge for all of it
  std::string got;
  while (st.readable) {
    IoResult r = st.read(pool);
    if (r.kind == IoResult::Kind::Data) {
      got.append(st.in.begin(), st.in.size());
      st.in.consume(st.in.size());
    } else {
      ASSERT_EQ(r.kind, IoResult::Kind::WouldBlock);
    }
  }
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_EQ(got, sent);
  pool.release(st.in);
  st.fd = -1;
}

TEST_F(Pki, OutboxFlushesThroughTlsInRecordsAndResumesAfterBlocking) {
  SocketPair sp;
  SocketPair::set_sndbuf(sp.b(), 4096);
  auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
  auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "localhost", true, true);
  ASSERT_TRUE(handshake(*s.value(), *c.value()));
  Stream out;
  out.fd = sp.b();
  out.tls = std::move(c.value());
  std::string expect;
  std::string big(100000, 'x');
  for (int i = 0; i < 5; ++i) {
    std::string small = "msg" + std::to_string(i);
    out.out.add_synth(small);
    expect += small;
  }
  out.out.add_synth(big);
  expect += big;
  std::string got;
  char buf[65536];
  for (int round = 0; round < 1000 && got.size() < expect.size(); ++round) {
    int err = 0;
    auto f = out.flush(err);
    ASSERT_NE(f, Outbox::Flush::Error) << err;
    for (;;) {
      auto r = s.value()->read(buf, sizeof buf);
      if (r.kind != IoResult::Kind::Data) break;
      got.append(buf, r.n);
    }
  }
  EXPECT_TRUE(out.out.empty());
  EXPECT_EQ(got, expect);
  out.fd = -1;
}

TEST_F(Pki, AlpnPostgresql) {
  SocketPair sp;
  auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
  auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "localhost", true, true);
  ASSERT_TRUE(handshake(*s.value(), *c.value()));
  EXPECT_FALSE(s.value()->alpn_postgresql());  // the connect side offers no ALPN
}

TEST_F(Pki, EofAndPeerClose) {
  SocketPair sp;
  auto s = TlsConn::accept(server_ctx(), sp.a(), false, false);
  auto c = TlsConn::connect(client_ctx(ca1_.crt_path), sp.b(), "localhost", true, true);
  ASSERT_TRUE(handshake(*s.value(), *c.value()));
  c.value()->shutdown();
  char b[16];
  EXPECT_EQ(s.value()->read(b, sizeof b).kind, IoResult::Kind::Eof);
  sp.close_b();
  SocketPair sp2;
  auto s2 = TlsConn::accept(server_ctx(), sp2.a(), false, false);
  auto c2 = TlsConn::connect(client_ctx(ca1_.crt_path), sp2.b(), "localhost", true, true);
  ASSERT_TRUE(handshake(*s2.value(), *c2.value()));
  sp2.close_b();  // no close_notify
  EXPECT_EQ(s2.value()->read(b, sizeof b).kind, IoResult::Kind::Eof);
}

TEST_F(Pki, TlsStoreHoldsOneContextPerSide) {
  TlsStore store;
  EXPECT_EQ(store.get(TlsSide::Accept), nullptr);
  auto ctx = server_ctx();
  store.set(TlsSide::Accept, ctx);
  EXPECT_EQ(store.get(TlsSide::Accept), ctx);
  EXPECT_EQ(store.get(TlsSide::Connect), nullptr);
  store.set(TlsSide::Accept, nullptr);
  EXPECT_EQ(store.get(TlsSide::Accept), nullptr);
}

// Two stores (the app's and a test's) share nothing.
TEST_F(Pki, TwoTlsStoresShareNothing) {
  TlsStore a;
  TlsStore b;
  auto accept = server_ctx();
  auto connect = client_ctx(ca1_.crt_path);
  a.set(TlsSide::Accept, accept);
  b.set(TlsSide::Connect, connect);
  EXPECT_EQ(a.get(TlsSide::Accept), accept);
  EXPECT_EQ(a.get(TlsSide::Connect), nullptr);
  EXPECT_EQ(b.get(TlsSide::Accept), nullptr);
  EXPECT_EQ(b.get(TlsSide::Connect), connect);
}

}  // namespace
}  // namespace sluice::net
