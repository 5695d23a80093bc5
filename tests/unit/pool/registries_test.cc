// ParamRegistry and LearnedSecrets: what each holds, and that two instances (the app's, a
// test's) share nothing.
#include "pool/registries.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pool/learned_secrets.h"
#include "pool/params.h"

namespace sluice::pool {
namespace {

TEST(ParamRegistry, BuiltinsThenConfiguredExtras) {
  ParamRegistry r;
  EXPECT_EQ(r.count(), 5);
  EXPECT_EQ(r.slot("client_encoding"), 0);
  EXPECT_EQ(r.slot("datestyle"), 1);  // case-insensitive
  EXPECT_EQ(r.slot("search_path"), -1);
  r.configure({"search_path", "TimeZone"});  // a built-in again is not a second slot
  EXPECT_EQ(r.count(), 6);
  EXPECT_EQ(r.slot("SEARCH_PATH"), 5);
  EXPECT_EQ(r.name(5), "search_path");
}

TEST(ParamRegistry, ExtrasStopAtTheSlotLimit) {
  ParamRegistry r;
  r.configure({"a1", "a2", "a3", "a4", "a5"});
  EXPECT_EQ(r.count(), ParamRegistry::kMaxSlots);
  EXPECT_EQ(r.slot("a3"), 7);
  EXPECT_EQ(r.slot("a4"), -1);
}

TEST(ParamRegistry, TwoRegistriesShareNothing) {
  ParamRegistry a;
  ParamRegistry b;
  a.configure({"search_path"});
  EXPECT_EQ(a.slot("search_path"), 5);
  EXPECT_EQ(b.slot("search_path"), -1);
  EXPECT_EQ(b.count(), 5);
  b.configure({"work_mem"});
  EXPECT_EQ(b.slot("work_mem"), 5);
  EXPECT_EQ(a.slot("work_mem"), -1);
}

TEST(LearnedSecrets, RememberReplaceForget) {
  LearnedSecrets s;
  EXPECT_FALSE(s.find("alice"));
  s.remember("alice", "md5aaaa");
  EXPECT_EQ(s.find("alice"), "md5aaaa");
  s.remember("alice", "md5bbbb");  // auth_query ran again: the newer answer wins
  EXPECT_EQ(s.find("alice"), "md5bbbb");
  s.forget("alice");
  EXPECT_FALSE(s.find("alice"));
}

TEST(LearnedSecrets, TwoInstancesShareNothing) {
  LearnedSecrets a;
  LearnedSecrets b;
  a.remember("alice", "md5aaaa");
  EXPECT_FALSE(b.find("alice"));
  b.remember("alice", "md5bbbb");
  b.forget("alice");
  EXPECT_EQ(a.find("alice"), "md5aaaa");
}

// The app's set: each member is its own object per Registries.
TEST(Registries, TwoSetsShareNothing) {
  Registries a;
  Registries b;
  a.params.configure({"search_path"});
  a.learned.remember("alice", "md5aaaa");
  (void)a.prepared.get("SELECT 1", std::string("\0\0", 2));
  EXPECT_EQ(b.params.slot("search_path"), -1);
  EXPECT_FALSE(b.learned.find("alice"));
  EXPECT_EQ(b.prepared.size(), 0u);
  EXPECT_EQ(b.tls.get(net::TlsSide::Accept), nullptr);
}

}  // namespace
}  // namespace sluice::pool
