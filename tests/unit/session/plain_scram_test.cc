// PlainScramSecrets: one derivation per user and password; a changed password is a new secret.
#include "session/plain_scram.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "proto/auth/scram.h"
#include "proto/auth/scram_server.h"

namespace sluice::session {
namespace {

namespace a = proto::auth;

TEST(PlainScramSecrets, DerivesOncePerUserAndPassword) {
  PlainScramSecrets c;
  auto s1 = c.get("alice", "pw1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->iterations, a::kScramDefaultIterations);
  EXPECT_EQ(s1->salt.size(), a::kScramDefaultSaltLen);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(c.get("alice", "pw1"), s1);  // the same object: the same salt every attempt
  EXPECT_EQ(c.derivations(), 1u);
  // It opens with the right password only.
  auto mine = a::make_scram_secret("pw1", s1->salt, s1->iterations);
  ASSERT_TRUE(mine);
  EXPECT_TRUE(a::scram_key_equal(mine.value().stored_key, s1->stored_key));
}

// Two caches (the app's and a test's) share nothing: each derives its own secret, with its own
// salt, and forgetting in one leaves the other.
TEST(PlainScramSecrets, TwoCachesShareNothing) {
  PlainScramSecrets c1;
  PlainScramSecrets c2;
  auto s1 = c1.get("alice", "pw1");
  EXPECT_EQ(c2.find("alice", "pw1"), nullptr);
  auto s2 = c2.get("alice", "pw1");
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s2, nullptr);
  EXPECT_NE(s1, s2);
  EXPECT_NE(s1->salt, s2->salt);
  EXPECT_EQ(c1.derivations(), 1u);
  EXPECT_EQ(c2.derivations(), 1u);
  c2.retain({});
  EXPECT_EQ(c2.size(), 0u);
  EXPECT_EQ(c1.find("alice", "pw1"), s1);
}

TEST(PlainScramSecrets, ChangedPasswordIsANewSecret) {
  PlainScramSecrets c;
  auto s1 = c.get("alice", "pw1");
  auto s2 = c.get("alice", "pw2");
  ASSERT_NE(s2, nullptr);
  EXPECT_NE(s1, s2);
  EXPECT_EQ(c.find("alice", "pw1"), nullptr);
  EXPECT_EQ(c.find("alice", "pw2"), s2);
  EXPECT_EQ(c.derivations(), 2u);
}

TEST(PlainScramSecrets, RetainForgetsChangedAndRemovedUsers) {
  PlainScramSecrets c;
  (void)c.get("alice", "pw");
  (void)c.get("bob", "pw");
  auto carol = c.get("carol", "pw");
  c.retain({{"alice", "new"}, {"carol", "pw"}});
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.find("carol", "pw"), carol);  // unchanged: kept, salt stable across reloads
  EXPECT_EQ(c.find("alice", "pw"), nullptr);
  EXPECT_EQ(c.find("bob", "pw"), nullptr);
}

TEST(PlainScramSecrets, ConcurrentFirstAttemptsAgreeOnOneSecret) {
  PlainScramSecrets c;
  std::vector<PlainScramSecrets::SecretPtr> got(4);
  std::vector<std::thread> ts;
  for (std::size_t i = 0; i < got.size(); ++i)
    ts.emplace_back([&c, &got, i] { got[i] = c.get("dave", "pw"); });
  for (auto& t : ts)
    t.join();
  for (const auto& g : got)
    EXPECT_EQ(g, c.find("dave", "pw"));
}

// Unknown users get a mock exchange whose salt is as stable as a known user's, with the same
// iteration count and salt length.
TEST(PlainScramSecrets, MockLooksLikeAKnownUser) {
  PlainScramSecrets c;
  auto known = c.get("alice", "pw");
  auto m1 = a::ScramServer::mock("mallory", "process key", {});
  auto m2 = a::ScramServer::mock("mallory", "process key", {});
  auto other_key = a::ScramServer::mock("mallory", "another process", {});
  ASSERT_TRUE(m1 && m2 && other_key);
  EXPECT_EQ(m1.value().secret().salt, m2.value().secret().salt);
  EXPECT_NE(m1.value().secret().salt, other_key.value().secret().salt);
  EXPECT_EQ(m1.value().secret().iterations, known->iterations);
  EXPECT_EQ(m1.value().secret().salt.size(), known->salt.size());
}

}  // namespace
}  // namespace sluice::session
