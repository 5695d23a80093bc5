// Tests for classify.h: what statement text does to session state, through the real parser.
#include "sql/classify.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sql/scan.h"

namespace sluice::sql {
namespace {

using Op = Effects::Op;

std::string trim(std::string s) {
  std::size_t b = s.find_first_not_of(" \t\n");
  std::size_t e = s.find_last_not_of(" \t\n;");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

const char* reason(const Effects& e) {
  return e.pin_reason == nullptr ? "" : e.pin_reason;
}

TEST(Classify, PlainStatementsHaveNoEffects) {
  for (const char* t : {"SELECT 1", "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1",
                        "CREATE TABLE t (a int)", "DECLARE c CURSOR FOR SELECT 1",
                        "SELECT 1 INTO t", "DISCARD PLANS", "BEGIN; SELECT 1; COMMIT"}) {
    auto e = classify(t);
    EXPECT_FALSE(e->any()) << t;
    EXPECT_FALSE(e->parse_error) << t;
    EXPECT_EQ(e->pin_reason, nullptr) << t;
  }
}

TEST(Classify, SetAndResetChangeSettings) {
  for (const char* t :
       {"SET search_path = a", "set application_name to 'x'", "SET SESSION timezone = 'UTC'",
        "RESET search_path", "RESET ALL", "SET ROLE bob", "SET SESSION AUTHORIZATION bob",
        "SELECT set_config('a.b', 'c', false)", "select pg_catalog.set_config('x', 'y', false)",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SELECT 1; SET x.y = 2",
        "SET SESSION ROLE bob", "SET ROLE NONE", "RESET ROLE", "RESET SESSION AUTHORIZATION",
        "SET SESSION AUTHORIZATION DEFAULT", "SELECT set_config('role', 'bob', false)"}) {
    auto e = classify(t);
    EXPECT_TRUE(e->settings) << t;
    EXPECT_FALSE(e->state) << t;
    EXPECT_EQ(e->pin_reason, nullptr) << t;
    EXPECT_TRUE(e->any()) << t;
  }
}

// SET LOCAL and SET TRANSACTION end with the transaction: nothing is left on the server for the
// next client, so there is nothing to read back.
// Role state reaches the read-back through the scan and the parser, in every spelling.
TEST(EffectsOf, RoleStatementsAreSeen) {
  for (const char* t :
       {"SET ROLE bob", "set session role bob", "RESET ROLE", "SET SESSION AUTHORIZATION bob",
        "reset session authorization", "SET SESSION AUTHORIZATION DEFAULT", "SET ROLE NONE",
        "SELECT pg_catalog.set_config('role', 'bob', false)", "SELECT 1; SET ROLE bob",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "DO $$BEGIN SET ROLE bob; END$$", "CALL become('bob')"}) {
    auto e = effects_of(t);
    ASSERT_NE(e, nullptr) << t;
    EXPECT_TRUE(e->settings) << t;
  }
  EXPECT_EQ(effects_of("SET LOCAL ROLE bob"), nullptr);
}

// Custom settings are hidden from pg_settings: their names are collected for the read-back.
TEST(Classify, CustomSettingNames) {
  using V = std::vector<std::string>;
  EXPECT_EQ(classify("SET app.Tenant = 'a'")->custom_settings, V{"app.tenant"});
  EXPECT_EQ(classify("SET SESSION \"App\".x TO 1")->custom_settings, V{"app.x"});
  EXPECT_EQ(classify("SELECT set_config('App.T', $1, false), set_config('b.c', 'v', false), "
                     "set_config('app.t', 'w', false)")
                ->custom_settings,
            (V{"app.t", "b.c"}));
  EXPECT_TRUE(classify("SET work_mem = '1MB'")->custom_settings.empty()) << "not a custom one";
  EXPECT_TRUE(classify("SELECT set_config($1, 'v', false)")->custom_settings.empty());
  EXPECT_TRUE(classify("SELECT set_config($1, 'v', false)")->settings) << "still read back";
  EXPECT_TRUE(classify("SET LOCAL app.t = 1")->custom_settings.empty());
}

TEST(Classify, TransactionScopedSetsDoNot) {
  for (const char* t : {"SET LOCAL search_path = a", "SET LOCAL ROLE bob",
                        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"}) {
    EXPECT_FALSE(classify(t)->settings) << t;
    EXPECT_FALSE(classify(t)->any()) << t;
  }
}

TEST(Classify, AdvisoryLocks) {
  for (const char* f : {"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
                        "pg_try_advisory_lock_shared"}) {
    auto e = classify(std::string("SELECT ") + f + "(42)");
    EXPECT_TRUE(e->state) << f;
    EXPECT_STREQ(reason(*e), "advisory lock") << f;
    auto nested = classify(std::string("SELECT x FROM t WHERE ") + f + "(1, 2) AND true");
    EXPECT_STREQ(reason(*nested), "advisory lock") << f;
  }
  for (const char* f :
       {"pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_xact_lock"}) {
    auto e = classify(std::string("SELECT ") + f + "(42)");
    EXPECT_FALSE(e->any()) << f;
    EXPECT_EQ(e->pin_reason, nullptr) << f;
  }
  for (const char* f :
       {"pg_advisory_unlock(1)", "pg_advisory_unlock_shared(1)", "pg_advisory_unlock_all()"}) {
    auto e = classify(std::string("SELECT ") + f);
    EXPECT_TRUE(e->state) << f << ": may release the last lock, look afterwards";
    EXPECT_EQ(e->pin_reason, nullptr) << f;
  }
}

TEST(Classify, ListenUnlisten) {
  auto l = classify("LISTEN chan");
  EXPECT_TRUE(l->state);
  EXPECT_STREQ(reason(*l), "listen");
  auto u = classify("UNLISTEN chan");
  EXPECT_TRUE(u->state);
  EXPECT_EQ(u->pin_reason, nullptr);
  EXPECT_TRUE(classify("UNLISTEN *")->state);
}

TEST(Classify, TempRelations) {
  for (const char* t : {"CREATE TEMP TABLE t (a int)", "create temporary table t (a int)",
                        "CREATE TEMP TABLE t AS SELECT 1", "CREATE TEMP SEQUENCE s",
                        "CREATE TEMP VIEW v AS SELECT 1", "SELECT 1 AS a INTO TEMP t",
                        "select 1; create local temp table t (a int)"}) {
    auto e = classify(t);
    EXPECT_TRUE(e->state) << t;
    EXPECT_STREQ(reason(*e), "temp table") << t;
  }
  auto d = classify("DROP TABLE t");
  EXPECT_TRUE(d->state) << "may drop a temp table";
  EXPECT_EQ(d->pin_reason, nullptr);
  EXPECT_TRUE(classify("DISCARD TEMP")->state);
}

TEST(Classify, Cursors) {
  auto h = classify("DECLARE c CURSOR WITH HOLD FOR SELECT 1");
  EXPECT_TRUE(h->state);
  EXPECT_STREQ(reason(*h), "cursor with hold");
  auto s = classify("DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT 1");
  EXPECT_STREQ(reason(*s), "cursor with hold");
  auto w = classify("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1");
  EXPECT_FALSE(w->any()) << "closes at transaction end";
  auto c = classify("CLOSE c");
  EXPECT_TRUE(c->state);
  EXPECT_EQ(c->pin_reason, nullptr);
}

TEST(Classify, LoadDoCall) {
  auto l = classify("LOAD 'auto_explain'");
  EXPECT_TRUE(l->load);
  EXPECT_STREQ(reason(*l), "load");
  for (const char* t :
       {"DO $$ BEGIN PERFORM 1; END $$", "DO LANGUAGE plpgsql $$ BEGIN END $$", "CALL p(1)"}) {
    auto e = classify(t);
    EXPECT_TRUE(e->settings) << t;
    EXPECT_TRUE(e->state) << t;
  }
}

TEST(Classify, DiscardAllAndDeallocateAll) {
  auto d = classify("DISCARD ALL");
  EXPECT_TRUE(d->discard_all);
  EXPECT_TRUE(d->settings);
  EXPECT_TRUE(d->state);
  ASSERT_EQ(d->prepared_ops.size(), 1u);
  EXPECT_EQ(d->prepared_ops[0].op, Op::DiscardAll);
  for (const char* t : {"DEALLOCATE ALL", "deallocate prepare all"}) {
    auto a = classify(t);
    EXPECT_TRUE(a->deallocate_all) << t;
    EXPECT_FALSE(a->discard_all) << t;
    ASSERT_EQ(a->prepared_ops.size(), 1u) << t;
    EXPECT_EQ(a->prepared_ops[0].op, Op::DeallocateAll) << t;
  }
}

TEST(Classify, PreparedStatementsInOrder) {
  const std::string text =
      "PREPARE a AS SELECT 1; EXECUTE a; DEALLOCATE a; prepare b (int, text) as select $1, $2;\n"
      "EXECUTE b(1, 'x'); DEALLOCATE ALL; PREPARE \"MixedCase\" AS SELECT 3; DISCARD ALL";
  auto e = classify(text);
  ASSERT_FALSE(e->parse_error);
  ASSERT_EQ(e->prepared_ops.size(), 6u);
  EXPECT_EQ(e->prepared_ops[0].op, Op::Prepare);
  EXPECT_EQ(e->prepared_ops[0].name, "a");
  EXPECT_EQ(trim(e->prepared_ops[0].text), "PREPARE a AS SELECT 1");
  EXPECT_EQ(e->prepared_ops[1].op, Op::Deallocate);
  EXPECT_EQ(e->prepared_ops[1].name, "a");
  EXPECT_EQ(e->prepared_ops[2].op, Op::Prepare);
  EXPECT_EQ(e->prepared_ops[2].name, "b");
  EXPECT_EQ(trim(e->prepared_ops[2].text), "prepare b (int, text) as select $1, $2");
  EXPECT_EQ(e->prepared_ops[3].op, Op::DeallocateAll);
  EXPECT_EQ(e->prepared_ops[4].op, Op::Prepare);
  EXPECT_EQ(e->prepared_ops[4].name, "MixedCase");
  EXPECT_EQ(e->prepared_ops[5].op, Op::DiscardAll);
  EXPECT_EQ(e->executes, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(e->deallocate_all);
  EXPECT_TRUE(e->discard_all);

  // The kept PREPARE text replays as the same statement on another server.
  auto replay = classify(e->prepared_ops[2].text);
  ASSERT_EQ(replay->prepared_ops.size(), 1u);
  EXPECT_EQ(replay->prepared_ops[0].name, "b");

  // Unquoted names fold to lower case, as the server folds them.
  auto folded = classify("PREPARE MyStmt AS SELECT 1; EXECUTE MYSTMT");
  ASSERT_EQ(folded->prepared_ops.size(), 1u);
  EXPECT_EQ(folded->prepared_ops[0].name, "mystmt");
  EXPECT_EQ(folded->executes, std::vector<std::string>{"mystmt"});
}

TEST(Classify, MultiStatementEffectsAccumulate) {
  auto e = classify("SET a.b = 1; LISTEN x; SELECT 1; LOAD 'plpgsql'");
  EXPECT_TRUE(e->settings);
  EXPECT_TRUE(e->state);
  EXPECT_TRUE(e->load);
  EXPECT_NE(e->pin_reason, nullptr);
}

TEST(Classify, SyntaxErrors) {
  for (const char* t : {"SET = ;", "SELEC 1", "PREPARE AS", "select 1; set", "DO"}) {
    auto e = classify(t);
    EXPECT_TRUE(e->parse_error) << t;
    EXPECT_FALSE(e->any()) << t << ": the server refuses it, nothing to track";
    EXPECT_EQ(effects_of(t), nullptr) << t;
  }
}

TEST(EffectsOf, NullForTextThatCannotTouchState) {
  EXPECT_EQ(effects_of("SELECT 1"), nullptr);
  EXPECT_EQ(effects_of("select * from t where id = 42"), nullptr);
  EXPECT_EQ(effects_of(""), nullptr);
  // Scanner false positives cost a parse and still come back empty.
  EXPECT_TRUE(needs_parse("SELECT ';SET x'"));
  EXPECT_EQ(effects_of("SELECT ';SET x'"), nullptr);
  EXPECT_EQ(effects_of("SELECT pg_advisory_xact_lock(1)"), nullptr);
  EXPECT_EQ(effects_of("CREATE TABLE effects_of_plain (a int)"), nullptr);
}

TEST(EffectsOf, ReturnsAndCachesEffects) {
  const std::string t = "SET application_name = 'effects_of_cache_test'";
  auto a = effects_of(t);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->settings);
  auto b = effects_of(std::string(t));  // a different buffer, the same text
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(effects_of_parsed(t).get(), a.get());
  auto lock = effects_of("select pg_advisory_lock(7) /* effects_of_cache_test */");
  ASSERT_NE(lock, nullptr);
  EXPECT_STREQ(reason(*lock), "advisory lock");
  EXPECT_NE(lock.get(), a.get());
  // Text differing in one byte is a different entry: the key is the full text.
  auto c = effects_of("SET application_name = 'effects_of_cache_tesT'");
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c.get(), a.get());
}

// A relation created in schema pg_temp is temporary although the parse tree says relpersistence
// "p": the schema name decides.
TEST(Classify, TableCreatedInPgTempIsATempTable) {
  for (const char* t :
       {"CREATE TABLE pg_temp.t (a int)", "CREATE SEQUENCE pg_temp.s",
        "CREATE VIEW pg_temp.v AS SELECT 1", "CREATE TABLE pg_temp.t AS SELECT 1"}) {
    auto e = classify(t);
    EXPECT_TRUE(e->state) << t;
    EXPECT_STREQ(reason(*e), "temp table") << t;
  }
}

// KNOWN LIMIT (documented in docs/ARCHITECTURE.md): classify() recognises SELECT ... INTO TEMP but
// the cheap scan does not read past a leading SELECT, so effects_of() never parses it. Looking
// for INTO in every SELECT would cost every query; CREATE TEMP TABLE ... AS is the idiom.
TEST(ClassifyBugs, DISABLED_SelectIntoTempReachesClassify) {
  auto e = effects_of("SELECT 1 AS a INTO TEMP effects_of_select_into");
  ASSERT_NE(e, nullptr);
  EXPECT_STREQ(reason(*e), "temp table");
}

// A statement wrapped in EXPLAIN or CREATE TABLE AS counts: EXPLAIN ANALYZE runs it, and
// EXPLAIN / CREATE TABLE AS EXECUTE p need p on the server (PostgreSQL's regression tests
// rowsecurity, partition_prune and prepare do this).
TEST(Classify, WrappedStatements) {
  auto x = classify("EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1");
  EXPECT_STREQ(reason(*x), "temp table");
  auto c = classify("CREATE TABLE t2 AS EXECUTE p");
  EXPECT_EQ(c->executes, std::vector<std::string>{"p"});
  auto t = classify("CREATE TEMPORARY TABLE t3 AS EXECUTE q5(200, 'x') WITH NO DATA");
  EXPECT_EQ(t->executes, std::vector<std::string>{"q5"});
  EXPECT_STREQ(reason(*t), "temp table");
  auto ex = classify("EXPLAIN ANALYZE EXECUTE p");
  EXPECT_EQ(ex->executes, std::vector<std::string>{"p"});
  auto opts = classify("explain (costs off, analyze, timing off) execute ab_q6(1)");
  EXPECT_EQ(opts->executes, std::vector<std::string>{"ab_q6"});
  auto plain = classify("EXPLAIN SELECT 1");
  EXPECT_FALSE(plain->any());
}

// Objects other than tables created in pg_temp live and die with the backend as temp tables do
// (PostgreSQL's regression test stats_ext: CREATE STATISTICS pg_temp.x, then DROP it).
TEST(Classify, TempObjectsOtherThanTables) {
  for (const char* t :
       {"CREATE STATISTICS pg_temp.s ON a, b FROM t",
        "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'select 1'",
        "CREATE OR REPLACE FUNCTION pg_temp_3.f() RETURNS int AS 'select 1' LANGUAGE sql",
        "CREATE DOMAIN pg_temp.d AS int", "CREATE TYPE pg_temp.e AS ENUM ('a')",
        "CREATE TYPE pg_temp.c AS (a int)", "CREATE TYPE pg_temp.r AS RANGE (subtype = int4)",
        "CREATE OPERATOR pg_temp.=== (function = f, leftarg = int, rightarg = int)",
        "CREATE AGGREGATE pg_temp.a(int) (sfunc = int4pl, stype = int)"}) {
    auto e = classify(t);
    EXPECT_TRUE(e->state) << t;
    EXPECT_STREQ(reason(*e), "temp object") << t;
  }
  for (const char* t : {"CREATE STATISTICS s ON a, b FROM t",
                        "CREATE FUNCTION public.f() RETURNS int "
                        "LANGUAGE sql AS 'select 1'",
                        "CREATE DOMAIN d AS int"}) {
    EXPECT_STREQ(reason(*classify(t)), "") << t;
  }
}

// The cheap scan lets EXPLAIN through to the parser, so the above happens for real traffic.
TEST(Classify, ExplainExecuteReachesClassify) {
  auto e = effects_of("EXPLAIN (COSTS OFF) EXECUTE p1(2)");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->executes, std::vector<std::string>{"p1"});
}

}  // namespace
}  // namespace sluice::sql
