// Tests for `sluice budget` output: table layout and the report's verdict.
#include "app/budget_report.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::app::budget {
namespace {

TEST(BudgetReport, TableAlignsNumbersRightAndTextLeft) {
  std::string t = render_table({"pool", "max", "note"},
                               {{"appdb/app", "25", "forced user"}, {"db2/x", "5", ""}}, "  ");
  EXPECT_EQ(t,
            "  pool       max  note\n"
            "  appdb/app   25  forced user\n"
            "  db2/x        5\n");
}

TEST(BudgetReport, ServerReportHasFiguresTablesAndVerdict) {
  ServerBudget b;
  b.address = {"127.0.0.1", 5432};
  b.facts.version = "15.4";
  b.facts.max_connections = 100;
  b.facts.superuser_reserved = 3;
  b.facts.login_user = "postgres";
  b.facts.login_superuser = true;
  b.available = 97;
  b.pools = {{"appdb", "appdb", "app", 90, 10, true, true}};
  b.pools_sum = b.sluice_max = 100;
  b.roles = {{"app", 100, 50, 0, false, 2, "active 1, idle 1"}};
  b.databases = {{"appdb", 100, -1, 0, false, 2, "active 1, idle 1"}};
  b.findings = {{Severity::Problem, "too many"}, {Severity::Note, "fyi"}};
  const std::string r = render(b);
  EXPECT_NE(r.find("server 127.0.0.1:5432: PostgreSQL 15.4, checked as \"postgres\" (superuser)"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("not on this server: new in PostgreSQL 16"), std::string::npos) << r;
  EXPECT_NE(r.find("slots for non-superuser roles      97"), std::string::npos) << r;
  EXPECT_NE(r.find("appdb/app             appdb                   90       10  100  forced user"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("2 (active 1, idle 1)"), std::string::npos) << r;
  EXPECT_NE(r.find("problems:\n    - too many\n"), std::string::npos) << r;
  EXPECT_NE(r.find("notes:\n    - fyi\n"), std::string::npos) << r;
  EXPECT_NE(r.find("budget does not hold (1 problem)"), std::string::npos) << r;
}

}  // namespace
}  // namespace sluice::app::budget
