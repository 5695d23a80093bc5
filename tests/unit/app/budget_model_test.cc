// Tests for `sluice budget` arithmetic: servers and logins from a config, pools against limits.
#include "app/budget_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"

namespace sluice::app::budget {
namespace {

std::shared_ptr<config::Config> parse(std::string_view ini,
                                      std::vector<config::AuthEntry> auth = {}) {
  auto r = config::parse(ini, ".");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  auto cfg = r.ok() ? *r : std::make_shared<config::Config>();
  cfg->auth_entries = std::move(auth);
  return cfg;
}

config::AuthEntry plain(std::string user, std::string pw) {
  return {std::move(user), std::move(pw), config::AuthEntry::Kind::Plain};
}

// A PostgreSQL 15 server: max_connections 100, 3 reserved for superusers, the given roles
// (name, connlimit) and databases (name, connlimit).
ServerFacts pg15(std::vector<RoleFacts> roles, std::vector<DatabaseFacts> dbs) {
  ServerFacts f;
  f.version = "15.4";
  f.version_num = 150004;
  f.max_connections = 100;
  f.superuser_reserved = 3;
  f.login_user = "postgres";
  f.login_superuser = true;
  f.roles = std::move(roles);
  f.roles.push_back({"postgres", -1, true, true});
  f.databases = std::move(dbs);
  f.databases.push_back({"postgres", -1, true, false});
  f.databases.push_back({"template1", -1, true, true});
  f.databases.push_back({"template0", -1, false, true});
  return f;
}

int problems(const ServerBudget& b) {
  return static_cast<int>(std::count_if(b.findings.begin(), b.findings.end(), [](const auto& f) {
    return f.severity == Severity::Problem;
  }));
}

bool says(const ServerBudget& b, Severity s, std::string_view needle) {
  return std::any_of(b.findings.begin(), b.findings.end(), [&](const Finding& f) {
    return f.severity == s && f.text.find(needle) != std::string::npos;
  });
}

std::string all_findings(const ServerBudget& b) {
  std::string out;
  for (const auto& f : b.findings) {
    out += (f.severity == Severity::Problem ? "problem: " : "note: ") + f.text + "\n";
  }
  return out;
}

const PoolRow* pool(const ServerBudget& b, std::string_view db, std::string_view user) {
  for (const auto& p : b.pools) {
    if (p.database == db && p.user == user) return &p;
  }
  return nullptr;
}

const LimitRow* row(const std::vector<LimitRow>& rows, std::string_view name) {
  for (const auto& r : rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

ServerBudget evaluate_only_server(const config::Config& cfg, const ServerFacts& f) {
  auto plans = plan_servers(cfg, {});
  EXPECT_EQ(plans.size(), 1u);
  return evaluate(cfg, plans.at(0), f);
}

TEST(BudgetPlan, ServersByHostAndPortInOrderOfMention) {
  auto cfg = parse(
      "[databases]\n"
      "a = host=h1 port=5432\n"
      "b = host=h2,h1 port=5432\n"
      "c = host=h1 port=5433\n"
      "d = port=5434\n"
      "[pgbouncer]\nunix_socket_dir = /run/x\n");
  auto plans = plan_servers(*cfg, {});
  ASSERT_EQ(plans.size(), 4u);
  EXPECT_EQ(plans[0].address.display(), "h1:5432");
  ASSERT_EQ(plans[0].entries.size(), 2u);
  EXPECT_EQ(plans[0].entries[1].name, "b");
  EXPECT_EQ(plans[1].address.display(), "h2:5432");
  EXPECT_EQ(plans[2].address.display(), "h1:5433");
  EXPECT_EQ(plans[3].address.host, "/run/x");
  EXPECT_EQ(plans[3].address.port, 5434);
}

TEST(BudgetPlan, LoginsAreTheForcedUsersThenLibpqDefaults) {
  auto cfg = parse(
      "[databases]\n"
      "a = host=h dbname=real_a user=alice password=apw\n"
      "b = host=h user=bob\n"
      "c = host=h user=carol\n"
      "d = host=h user=alice\n"
      "[pgbouncer]\n",
      {plain("bob", "bpw"), {"carol", "md5" + std::string(32, 'a'), config::AuthEntry::Kind::Md5}});
  auto plans = plan_servers(*cfg, {});
  ASSERT_EQ(plans.size(), 1u);
  const auto& l = plans[0].logins;
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[0].user, "alice");
  EXPECT_EQ(l[0].password, "apw");
  EXPECT_EQ(l[0].dbname, "real_a");
  EXPECT_EQ(l[1].user, "bob");
  EXPECT_EQ(l[1].password, "bpw");
  EXPECT_EQ(l[1].dbname, "b");
  EXPECT_EQ(l[2].user, "carol");
  EXPECT_FALSE(l[2].password.has_value());
  EXPECT_EQ(l[3].user, "");  // PGUSER / the OS user
  EXPECT_EQ(l[3].dbname, "real_a");
  ASSERT_EQ(plans[0].notes.size(), 1u);
  EXPECT_NE(plans[0].notes[0].find("hashed secret for \"carol\""), std::string::npos);
}

TEST(BudgetPlan, CommandLineUserIsTheOnlyLogin) {
  auto cfg = parse("[databases]\n* = host=h\n[pgbouncer]\n", {plain("admin", "secret")});
  auto plans = plan_servers(*cfg, {"admin", ""});
  ASSERT_EQ(plans[0].logins.size(), 1u);
  EXPECT_EQ(plans[0].logins[0].user, "admin");
  EXPECT_EQ(plans[0].logins[0].password, "secret");
  EXPECT_EQ(plans[0].logins[0].dbname, "postgres");
  plans = plan_servers(*cfg, {"admin", "other"});
  EXPECT_EQ(plans[0].logins[0].dbname, "other");
}

TEST(BudgetEvaluate, PoolsThatFitHold) {
  auto cfg = parse(
      "[databases]\n"
      "appdb = host=h user=app pool_size=30 reserve_pool=5\n"
      "db2 = host=h user=app2\n"
      "[pgbouncer]\ndefault_pool_size = 20\nreserve_pool_size = 2\n");
  auto b = evaluate_only_server(*cfg, pg15({{"app", 40, false, true}, {"app2", -1, false, true}},
                                           {{"appdb", -1, true, false}, {"db2", 22, true, false}}));
  EXPECT_TRUE(b.holds()) << all_findings(b);
  EXPECT_EQ(b.available, 97);
  EXPECT_EQ(b.pools_sum, 57);
  EXPECT_EQ(b.sluice_max, 57);
  ASSERT_NE(pool(b, "appdb", "app"), nullptr);
  EXPECT_EQ(pool(b, "appdb", "app")->max(), 35);
  EXPECT_EQ(row(b.roles, "app")->sluice_max, 35);
  EXPECT_EQ(row(b.databases, "db2")->sluice_max, 22);
  EXPECT_TRUE(says(b, Severity::Note, "reserved_connections does not exist on PostgreSQL 15.4"));
}

TEST(BudgetEvaluate, PoolsBeyondTheServerAndLimitsAreProblems) {
  auto cfg = parse(
      "[databases]\n"
      "appdb = host=h user=app pool_size=60\n"
      "db2 = host=h user=app2 pool_size=40\n"
      "[pgbouncer]\n");
  auto b = evaluate_only_server(*cfg, pg15({{"app", 10, false, true}, {"app2", -1, false, true}},
                                           {{"appdb", -1, true, false}, {"db2", 30, true, false}}));
  EXPECT_FALSE(b.holds());
  EXPECT_EQ(problems(b), 3) << all_findings(b);
  EXPECT_TRUE(says(b, Severity::Problem, "together may open 100 connections to h:5432"));
  EXPECT_TRUE(says(b, Severity::Problem, "has 97 for non-superuser roles"));
  EXPECT_TRUE(says(b, Severity::Problem,
                   "role \"app\" has CONNECTION LIMIT 10 but its pools may "
                   "open 60"));
  EXPECT_TRUE(says(b, Severity::Problem, "database \"db2\" has CONNECTION LIMIT 30"));
  EXPECT_EQ(b.findings.front().severity, Severity::Problem);
}

TEST(BudgetEvaluate, UsersSectionOverridesAndConfigCaps) {
  auto cfg = parse(
      "[databases]\n"
      "a1 = host=h dbname=shared user=app pool_size=50\n"
      "a2 = host=h dbname=shared user=app pool_size=50 max_db_connections=10\n"
      "b = host=h user=bob\n"
      "[users]\n"
      "app = max_user_connections=40\n"
      "bob = pool_size=7 reserve_pool_size=1\n"
      "[pgbouncer]\n");
  auto b = evaluate_only_server(*cfg, pg15({{"app", 40, false, true}, {"bob", 8, false, true}},
                                           {{"shared", 45, true, false}, {"b", -1, true, false}}));
  EXPECT_EQ(pool(b, "b", "bob")->pool_size, 7);
  EXPECT_EQ(pool(b, "b", "bob")->reserve_size, 1);
  EXPECT_EQ(b.pools_sum, 108);
  // app: a1 50 + a2 capped to 10 = 60, capped to 40 by max_user_connections; bob 8.
  EXPECT_EQ(row(b.roles, "app")->sluice_max, 40);
  EXPECT_EQ(row(b.roles, "app")->config_limit, 40);
  EXPECT_EQ(b.sluice_max, 48);
  // shared: a1 min(50, 40) + a2 min(min(50, 40), 10) = 50 > 45.
  EXPECT_EQ(row(b.databases, "shared")->sluice_max, 50);
  EXPECT_EQ(row(b.databases, "shared")->config_limit, 10);
  EXPECT_EQ(problems(b), 1) << all_findings(b);
  EXPECT_TRUE(says(b, Severity::Problem, "database \"shared\" has CONNECTION LIMIT 45"));
}

TEST(BudgetEvaluate, SuperuserPoolsAreNotHeldByLimitsButNoted) {
  auto cfg = parse(
      "[databases]\n"
      "appdb = host=h user=postgres pool_size=5\n"
      "[pgbouncer]\n");
  auto f = pg15({}, {{"appdb", 2, true, false}});
  f.roles[0].connlimit = 1;
  auto b = evaluate_only_server(*cfg, f);
  EXPECT_TRUE(b.holds()) << all_findings(b);
  EXPECT_TRUE(says(b, Severity::Note, "role \"postgres\" is a superuser"));
  EXPECT_TRUE(row(b.roles, "postgres")->exempt);
}

TEST(BudgetEvaluate, UnforcedDatabasesCountEveryKnownUserAsAnUpperBound) {
  auto cfg = parse(
      "[databases]\n"
      "appdb = host=h\n"
      "[users]\n"
      "carol = pool_size=1\n"
      "[pgbouncer]\ndefault_pool_size = 10\n",
      {plain("alice", "a"), plain("bob", "b"), plain("nobody", "n")});
  auto b = evaluate_only_server(
      *cfg, pg15({{"alice", -1, false, true}, {"bob", -1, false, true}, {"carol", -1, false, true}},
                 {{"appdb", -1, true, false}}));
  ASSERT_EQ(b.pools.size(), 4u);
  EXPECT_FALSE(pool(b, "appdb", "nobody")->counted);
  EXPECT_EQ(b.pools_sum, 21);
  EXPECT_TRUE(says(b, Severity::Note, "an upper bound"));
  EXPECT_TRUE(says(b, Severity::Note, "not counted): nobody"));
}

TEST(BudgetEvaluate, FallbackEntryCountsDatabasesWithoutTheirOwnEntry) {
  auto cfg = parse(
      "[databases]\n"
      "appdb = host=h user=app\n"
      "* = host=h user=app pool_size=4\n"
      "[pgbouncer]\n");
  auto b = evaluate_only_server(
      *cfg,
      pg15({{"app", -1, false, true}},
           {{"appdb", -1, true, false}, {"other", -1, true, false}, {"closed", -1, false, false}}));
  // appdb 20 (own entry); other and postgres 4 each through *; templates and closed skipped.
  EXPECT_EQ(b.pools.size(), 3u);
  EXPECT_NE(pool(b, "other", "app"), nullptr);
  EXPECT_NE(pool(b, "postgres", "app"), nullptr);
  EXPECT_EQ(b.pools_sum, 28);
}

TEST(BudgetEvaluate, MissingRolesAndDatabasesAreNotCounted) {
  auto cfg = parse(
      "[databases]\n"
      "a = host=h user=ghost\n"
      "b = host=h user=app dbname=gone\n"
      "[pgbouncer]\n");
  auto b = evaluate_only_server(*cfg, pg15({{"app", -1, false, true}}, {{"a", -1, true, false}}));
  EXPECT_EQ(b.pools_sum, 0);
  EXPECT_TRUE(b.holds());
  EXPECT_TRUE(says(b, Severity::Note, "role \"ghost\""));
  EXPECT_TRUE(says(b, Severity::Note, "database \"gone\""));
}

TEST(BudgetEvaluate, NoHeadroomForAnAdmin) {
  auto cfg = parse("[databases]\na = host=h user=app pool_size=1\n[pgbouncer]\n");
  auto f = pg15({{"app", -1, false, true}}, {{"a", -1, true, false}});
  f.superuser_reserved = 0;
  auto b = evaluate_only_server(*cfg, f);
  EXPECT_FALSE(b.holds());
  EXPECT_TRUE(says(b, Severity::Problem, "superuser_reserved_connections is 0"));

  f = pg15({{"app", -1, false, true}}, {{"a", -1, true, false}});
  f.activity = {{"app", "a", "idle", 90}, {"postgres", "a", "active", 8}};
  b = evaluate_only_server(*cfg, f);
  EXPECT_EQ(b.open_now, 98);
  EXPECT_TRUE(says(b, Severity::Problem, "98 client connections are open now, more than the 97"));
  EXPECT_EQ(row(b.roles, "app")->open_now, 90);
  EXPECT_EQ(row(b.roles, "postgres")->states, "active 8");
  EXPECT_EQ(row(b.databases, "a")->states, "active 8, idle 90");
}

TEST(BudgetEvaluate, ReservedConnectionsOfPostgres16Count) {
  auto cfg = parse("[databases]\na = host=h user=app pool_size=90\n[pgbouncer]\n");
  auto f = pg15({{"app", -1, false, true}}, {{"a", -1, true, false}});
  f.version = "16.1";
  f.reserved = 10;
  auto b = evaluate_only_server(*cfg, f);
  EXPECT_EQ(b.available, 87);
  EXPECT_TRUE(says(b, Severity::Problem, "- reserved_connections 10"));
  EXPECT_FALSE(says(b, Severity::Note, "does not exist"));
}

TEST(BudgetEvaluateServer, ReportsLimitsAndActivityOnly) {
  auto f = pg15({{"app", 5, false, true}, {"quiet", -1, false, true}}, {{"a", 3, true, false}});
  f.activity = {{"app", "a", "", 2}};
  f.states_visible = false;
  auto b = evaluate_server({"h", 5432}, f);
  EXPECT_FALSE(b.with_config);
  EXPECT_TRUE(b.holds()) << all_findings(b);
  ASSERT_NE(row(b.roles, "app"), nullptr);
  EXPECT_EQ(row(b.roles, "app")->states, "unknown 2");
  EXPECT_EQ(row(b.roles, "quiet"), nullptr);  // no limit, nothing open
  EXPECT_EQ(row(b.databases, "a")->limit, 3);
  EXPECT_TRUE(says(b, Severity::Note, "may not see other roles' session states"));
}

}  // namespace
}  // namespace sluice::app::budget
