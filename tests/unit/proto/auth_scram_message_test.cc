// Tests for the SCRAM message parsers: each field accepted in its valid forms, rejected otherwise.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/auth/scram_message.h"

namespace sluice::proto::auth {
namespace {

const std::string kProof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";  // 32 bytes

TEST(ScramClientFirst, ParsesPostgresForm) {
  auto m = parse_client_first("n,,n=,r=fyko+d2lbbFgONRv9qkxdawL");
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->flag, CbindFlag::NotSupported);
  EXPECT_EQ(m->gs2_header, "n,,");
  EXPECT_EQ(m->bare, "n=,r=fyko+d2lbbFgONRv9qkxdawL");
  EXPECT_EQ(m->user, "");
  EXPECT_EQ(m->nonce, "fyko+d2lbbFgONRv9qkxdawL");
}

TEST(ScramClientFirst, ParsesFlagsUserAndExtensions) {
  auto y = parse_client_first("y,,n=user,r=abc");
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->flag, CbindFlag::ClientOnly);
  EXPECT_EQ(y->gs2_header, "y,,");
  EXPECT_EQ(y->user, "user");

  auto p = parse_client_first("p=tls-server-end-point,,n=,r=abc");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->flag, CbindFlag::TlsServerEndPoint);
  EXPECT_EQ(p->cbind_name, "tls-server-end-point");
  EXPECT_EQ(p->gs2_header, "p=tls-server-end-point,,");

  auto ext = parse_client_first("n,,n=a=2Cb=3D,r=abc,x=anything=goes,Z=1");
  ASSERT_TRUE(ext.ok()) << ext.error();
  EXPECT_EQ(ext->user, "a=2Cb=3D");
  EXPECT_EQ(ext->nonce, "abc");
  EXPECT_EQ(ext->bare, "n=a=2Cb=3D,r=abc,x=anything=goes,Z=1");
}

TEST(ScramClientFirst, RejectsEveryMalformedField) {
  for (const char* bad : {
           "",                        // empty
           "n",                       // no header end
           "n,",                      //
           "n,,",                     // no bare part
           "x,,n=,r=abc",             // unknown flag
           "N,,n=,r=abc",             //
           "nn,,n=,r=abc",            //
           "y,n=,r=abc",              // single comma
           "p,,n=,r=abc",             // "p" without "="
           "p=,,n=,r=abc",            // empty cb-name
           "p=tls server,,n=,r=abc",  // invalid cb-name characters
           "p=tls-server-end-point",  // unterminated
           "n,a=admin,n=,r=abc",      // authzid (not supported by Postgres)
           "n,x,n=,r=abc",            // junk instead of authzid
           "n,,m=ext,n=,r=abc",       // mandatory extension
           "n,,r=abc",                // user missing
           "n,,n=,",                  // nonce missing
           "n,,n=",                   //
           "n,,n=,r=",                // empty nonce
           "n,,n=,x=abc",             // wrong attribute
           "n,,r=abc,n=",             // wrong order
           "n,,n=a=2,r=abc",          // bad saslname escape
           "n,,n=a=,r=abc",           //
           "n,,n=a=3d,r=abc",         // escapes are uppercase
           "n,,n=,r=ab c",            // non-printable nonce
           "n,,n=,r=ab\x7f",          //
           "n,,n=,r=ab\xc3\xa9",      //
           "n,,n=,r=abc,",            // trailing comma
           "n,,n=,r=abc,x=",          // empty extension value
           "n,,n=,r=abc,1=x",         // extension name not a letter
           "n,,n=,r=abc,xy=1",        //
           "n,,n=,r=abc,=1",          //
       }) {
    EXPECT_FALSE(parse_client_first(bad).ok()) << bad;
  }
  EXPECT_FALSE(parse_client_first(std::string_view("n,,n=,r=a\0c", 11)).ok());
  EXPECT_FALSE(parse_client_first("n,,n=,r=" + std::string(kScramMaxMessageLen, 'a')).ok());
}

TEST(ScramServerFirst, ParsesAndRejects) {
  auto m = parse_server_first("r=abcdef,s=QUJD,i=4096");
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->nonce, "abcdef");
  EXPECT_EQ(m->salt, "ABC");
  EXPECT_EQ(m->iterations, 4096);
  for (const char* bad : {
           "",
           "m=x,r=abcdef,s=QUJD,i=4096",  // mandatory extension
           "r=,s=QUJD,i=4096",            // empty nonce
           "r=ab cd,s=QUJD,i=4096",       // non-printable nonce
           "s=QUJD,r=abcdef,i=4096",      // order
           "r=abcdef,i=4096",             // salt missing
           "r=abcdef,s=,i=4096",          // empty salt
           "r=abcdef,s=QUJ,i=4096",       // bad base64
           "r=abcdef,s=QUJD",             // iterations missing
           "r=abcdef,s=QUJD,i=",          //
           "r=abcdef,s=QUJD,i=0",         //
           "r=abcdef,s=QUJD,i=04096",     //
           "r=abcdef,s=QUJD,i=4096 ",     //
           "r=abcdef,s=QUJD,i=4e3",       //
           "r=abcdef,s=QUJD,i=99999999",  //
           "r=abcdef,s=QUJD,i=4096,",     // trailing comma
           "r=abcdef,s=QUJD,i=4096,e=x",  // extension
           "r=abcdef,,s=QUJD,i=4096",     // empty attribute
       }) {
    EXPECT_FALSE(parse_server_first(bad).ok()) << bad;
  }
}

TEST(ScramClientFinal, ParsesProofAndWithoutProof) {
  const std::string msg = "c=biws,r=abcdef,p=" + kProof;
  auto m = parse_client_final(msg);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->cbind_input, "n,,");
  EXPECT_EQ(m->nonce, "abcdef");
  EXPECT_EQ(m->without_proof, "c=biws,r=abcdef");
  EXPECT_EQ(m->proof[0], 0x74);

  const std::string with_ext = "c=biws,r=abcdef,x=1,y=2,p=" + kProof;  // views point into it
  auto ext = parse_client_final(with_ext);
  ASSERT_TRUE(ext.ok()) << ext.error();
  EXPECT_EQ(ext->without_proof, "c=biws,r=abcdef,x=1,y=2");
}

TEST(ScramClientFinal, RejectsEveryMalformedField) {
  for (const std::string& bad : std::vector<std::string>{
           std::string(""),
           "r=abcdef,p=" + kProof,                   // c missing
           "c=,r=abcdef,p=" + kProof,                // empty c
           "c=biw,r=abcdef,p=" + kProof,             // bad base64
           "c=biws,p=" + kProof,                     // r missing
           "c=biws,r=,p=" + kProof,                  // empty nonce
           "c=biws,r=ab cd,p=" + kProof,             // non-printable nonce
           "c=biws,r=abcdef",                        // p missing
           "c=biws,r=abcdef,",                       //
           "c=biws,r=abcdef,p=",                     // empty proof
           "c=biws,r=abcdef,p=QUJD",                 // short proof
           "c=biws,r=abcdef,p=" + kProof + "QUJD",   // long proof
           "c=biws,r=abcdef,p=" + kProof.substr(1),  // bad base64
           "c=biws,r=abcdef,p=" + kProof + ",x=1",   // garbage after proof
           "c=biws,r=abcdef,p=" + kProof + ",",      //
           "c=biws,r=abcdef,x=,p=" + kProof,         // empty extension
           "c=biws,r=abcdef,1=2,p=" + kProof,        // bad extension name
           "c=biws,p=" + kProof + ",r=abcdef",       // order
           "r=abcdef,c=biws,p=" + kProof,            //
       }) {
    EXPECT_FALSE(parse_client_final(bad).ok()) << bad;
  }
}

TEST(ScramServerFinal, ParsesVerifierAndError) {
  const std::string verifier = "v=" + kProof;
  auto v = parse_server_final(verifier);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->error.empty());
  EXPECT_EQ(v->verifier[0], 0x74);
  auto e = parse_server_final("e=invalid-proof");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->error, "invalid-proof");
  for (const std::string& bad : std::vector<std::string>{
           std::string(""),
           std::string("v="),
           std::string("e="),
           std::string("v=QUJD"),
           "v=" + kProof + ",x=1",
           "x=" + kProof,
           "V=" + kProof,
           std::string("e=a,b=c"),
       }) {
    EXPECT_FALSE(parse_server_final(bad).ok()) << bad;
  }
}

TEST(ScramSaslname, Encodes) {
  EXPECT_EQ(scram_encode_saslname(""), "");
  EXPECT_EQ(scram_encode_saslname("bob"), "bob");
  EXPECT_EQ(scram_encode_saslname("a,b=c"), "a=2Cb=3Dc");
}

TEST(ScramGs2Header, PerFlag) {
  EXPECT_EQ(gs2_header(CbindFlag::NotSupported), "n,,");
  EXPECT_EQ(gs2_header(CbindFlag::ClientOnly), "y,,");
  EXPECT_EQ(gs2_header(CbindFlag::TlsServerEndPoint), "p=tls-server-end-point,,");
}

}  // namespace
}  // namespace sluice::proto::auth
