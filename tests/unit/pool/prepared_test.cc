// Tests for prepared.h: the statement registry (one per process, each test its own), per-server LRU
// sets, and the bytes of the Parse and Close messages sluice sends for them.
#include "pool/prepared.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace sluice::pool {
namespace {

using namespace std::string_literals;

// A Parse body's tail: int16 count, then int32 oids.
std::string types(std::initializer_list<std::uint32_t> oids) {
  std::string t;
  t.push_back(static_cast<char>(oids.size() >> 8));
  t.push_back(static_cast<char>(oids.size() & 0xff));
  for (std::uint32_t o : oids) {
    for (int s = 24; s >= 0; s -= 8)
      t.push_back(static_cast<char>((o >> s) & 0xff));
  }
  return t;
}

TEST(PreparedRegistry, SameTextAndTypesIsOneStatement) {
  PreparedRegistry reg;
  PreparedPtr a = reg.get("SELECT $1 /* registry same */", types({23}));
  PreparedPtr b = reg.get(std::string("SELECT $1 /* registry same */"), types({23}));
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(a->query, "SELECT $1 /* registry same */");
  EXPECT_EQ(a->param_types, types({23}));
  EXPECT_EQ(a->server_name, "sluice_" + std::to_string(a->id));
  EXPECT_GT(a->id, 0u);
}

TEST(PreparedRegistry, KeyIsTheFullTextAndTypes) {
  PreparedRegistry reg;
  const std::string q = "SELECT $1 /* registry key */";
  PreparedPtr base = reg.get(q, types({23}));
  std::vector<PreparedPtr> others = {
      reg.get(q, types({20})),                               // other type
      reg.get(q, types({})),                                 // no types
      reg.get(q, types({23, 23})),                           // more types
      reg.get(q + " ", types({23})),                         // one byte more text
      reg.get("SELECT $1 /* registry kez */", types({23})),  // one byte different
      reg.get("select $1 /* registry key */", types({23})),  // case matters
  };
  std::vector<std::uint64_t> ids = {base->id};
  for (const auto& o : others) {
    EXPECT_NE(o.get(), base.get());
    for (std::uint64_t id : ids)
      EXPECT_NE(o->id, id);
    ids.push_back(o->id);
  }
  // The text/types boundary is part of the key: moving bytes across it is another statement.
  PreparedPtr x = reg.get("SELECT 1 /* split */", "ab");
  PreparedPtr y = reg.get("SELECT 1 /* split */a", "b");
  EXPECT_NE(x.get(), y.get());
}

TEST(PreparedRegistry, LongTextsDifferingOnlyAtTheEnd) {
  PreparedRegistry reg;
  std::string common(100000, 'x');
  PreparedPtr a = reg.get("SELECT '" + common + "a'", types({}));
  PreparedPtr b = reg.get("SELECT '" + common + "b'", types({}));
  EXPECT_NE(a.get(), b.get());
  EXPECT_NE(a->server_name, b->server_name);
  EXPECT_EQ(a.get(), reg.get("SELECT '" + common + "a'", types({})).get());
}

TEST(PreparedRegistry, StatementLivesWhileSomeoneHoldsIt) {
  PreparedRegistry reg;
  const std::string q = "SELECT 1 /* registry lifetime */";
  std::uint64_t first_id;
  {
    ServerStatements server;
    PreparedPtr p = reg.get(q, types({}));
    first_id = p->id;
    (void)server.add(p, 10);
    p.reset();
    // Only the server's set holds it now: the registry still hands out the same statement.
    EXPECT_EQ(reg.get(q, types({}))->id, first_id);
  }
  // No one holds it: a new statement (new server name) may be made.
  PreparedPtr again = reg.get(q, types({}));
  EXPECT_EQ(again->query, q);
  EXPECT_NE(again->id, first_id);
}

TEST(PreparedRegistry, ConcurrentGetsAgree) {
  PreparedRegistry reg;
  const std::string q = "SELECT $1 /* registry threads */";
  std::vector<PreparedPtr> got(4);
  std::vector<std::thread> ts;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ts.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k)
        got[i] = reg.get(q, types({25}));
    });
  }
  for (auto& t : ts)
    t.join();
  for (const auto& p : got)
    EXPECT_EQ(p.get(), got[0].get());
  EXPECT_GE(reg.size(), 1u);
}

// Two registries (two processes, or two tests) share nothing: the same text is a statement of
// each, numbered by each.
TEST(PreparedRegistry, TwoRegistriesShareNothing) {
  PreparedRegistry a;
  PreparedRegistry b;
  PreparedPtr in_a = a.get("SELECT 1 /* two registries */", types({}));
  PreparedPtr in_a2 = a.get("SELECT 2 /* two registries */", types({}));
  PreparedPtr in_b = b.get("SELECT 1 /* two registries */", types({}));
  EXPECT_NE(in_a.get(), in_b.get());
  EXPECT_EQ(in_a->id, 1u);
  EXPECT_EQ(in_a2->id, 2u);
  EXPECT_EQ(in_b->id, 1u);  // b numbers from 1: a's statements are not in it
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(b.size(), 1u);
}

class ServerStatementsTest : public ::testing::Test {
 protected:
  PreparedRegistry reg;
  PreparedPtr stmt(int n) {
    return reg.get("SELECT " + std::to_string(n) + " /* server lru */", types({}));
  }
  static std::vector<std::uint64_t> ids(const std::list<PreparedPtr>& l) {
    std::vector<std::uint64_t> v;
    for (const auto& p : l)
      v.push_back(p->id);
    return v;
  }
  ServerStatements s_;
};

TEST_F(ServerStatementsTest, EvictsLeastRecentlyUsedAtTheCap) {
  std::vector<PreparedPtr> st;
  for (int i = 0; i < 6; ++i)
    st.push_back(stmt(i));
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(s_.add(st[i], 3).empty());
  EXPECT_EQ(s_.size(), 3u);
  EXPECT_EQ(ids(s_.add(st[3], 3)), std::vector<std::uint64_t>{st[0]->id});
  EXPECT_FALSE(s_.has(st[0]->id));
  EXPECT_TRUE(s_.has(st[3]->id));

  s_.touch(st[1]->id);  // now 2 is the oldest
  EXPECT_EQ(ids(s_.add(st[4], 3)), std::vector<std::uint64_t>{st[2]->id});
  EXPECT_TRUE(s_.has(st[1]->id));
  s_.touch(st[4]->id);  // the newest already: no change
  s_.touch(999999999);  // unknown: ignored
  EXPECT_EQ(ids(s_.add(st[5], 3)), std::vector<std::uint64_t>{st[3]->id});
  EXPECT_EQ(s_.size(), 3u);
}

TEST_F(ServerStatementsTest, LowerCapEvictsSeveralOldestFirst) {
  std::vector<PreparedPtr> st;
  for (int i = 10; i < 15; ++i)
    st.push_back(stmt(i));
  for (int i = 0; i < 4; ++i)
    (void)s_.add(st[i], 10);
  EXPECT_EQ(ids(s_.add(st[4], 2)), (std::vector<std::uint64_t>{st[0]->id, st[1]->id, st[2]->id}));
  EXPECT_EQ(s_.size(), 2u);
  EXPECT_TRUE(s_.has(st[4]->id));
  EXPECT_TRUE(s_.has(st[3]->id));
  // Cap 1 keeps only the statement just added.
  EXPECT_EQ(ids(s_.add(stmt(15), 1)), (std::vector<std::uint64_t>{st[3]->id, st[4]->id}));
  EXPECT_EQ(s_.size(), 1u);
}

TEST_F(ServerStatementsTest, ZeroCapMeansNoLimit) {
  for (int i = 20; i < 120; ++i)
    EXPECT_TRUE(s_.add(stmt(i), 0).empty());
  EXPECT_EQ(s_.size(), 100u);
}

TEST_F(ServerStatementsTest, RemoveClearAndStale) {
  PreparedPtr a = stmt(200), b = stmt(201);
  (void)s_.add(a, 5);
  (void)s_.add(b, 5);
  s_.remove(a->id);
  EXPECT_FALSE(s_.has(a->id));
  EXPECT_EQ(s_.size(), 1u);
  s_.remove(a->id);  // twice: harmless
  EXPECT_EQ(s_.size(), 1u);

  s_.mark_stale(b->id);
  EXPECT_FALSE(s_.has(b->id)) << "a stale statement must be prepared again";
  EXPECT_EQ(s_.size(), 0u);
  EXPECT_TRUE(s_.take_stale(b->id));
  EXPECT_FALSE(s_.take_stale(b->id)) << "taken once";
  EXPECT_FALSE(s_.take_stale(a->id));

  (void)s_.add(a, 5);
  s_.mark_stale(b->id);
  s_.clear();
  EXPECT_EQ(s_.size(), 0u);
  EXPECT_FALSE(s_.has(a->id));
  EXPECT_FALSE(s_.take_stale(b->id)) << "clear forgets stale ones too";
  // Usable after clear.
  EXPECT_TRUE(s_.add(a, 1).empty());
  EXPECT_TRUE(s_.has(a->id));
}

TEST(PreparedWire, ParseBytes) {
  PreparedStatement s;
  s.id = 7;
  s.server_name = "sluice_7";
  s.query = "SELECT $1";
  s.param_types = types({23});
  std::string out = "prefix";
  write_parse(out, s);
  // 'P', int32 length (self + body), name\0, query\0, int16 count, int32 oid.
  const std::string body = "sluice_7\0SELECT $1\0\0\x01\0\0\0\x17"s;
  EXPECT_EQ(out, "prefix"s + "P\0\0\0"s + static_cast<char>(4 + body.size()) + body);
  EXPECT_EQ(body.size(), 25u);

  std::string none;
  s.param_types = types({});
  write_parse(none, s);
  EXPECT_EQ(none, "P\0\0\0\x19sluice_7\0SELECT $1\0\0\0"s);
}

TEST(PreparedWire, CloseStatementBytes) {
  std::string out;
  write_close_statement(out, "sluice_12");
  EXPECT_EQ(out, "C\0\0\0\x0fSsluice_12\0"s);
  write_close_statement(out, "sluice_3");
  EXPECT_EQ(out, "C\0\0\0\x0fSsluice_12\0"s + "C\0\0\0\x0eSsluice_3\0"s) << "appends";
}

}  // namespace
}  // namespace sluice::pool
