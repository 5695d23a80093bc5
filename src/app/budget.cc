// The command-line tools beside the pooler: `sluice budget` and `sluice check`.
#include "app/budget.h"

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "app/budget_model.h"
#include "app/budget_report.h"
#include "app/budget_server.h"
#include "config/config.h"

namespace sluice::app {

namespace {

constexpr int kHolds = 0;
constexpr int kDoesNotHold = 1;
constexpr int kCannotCheck = 2;
constexpr int kDefaultConnectTimeout = 10;  // seconds, with a connection string

constexpr const char* kBudgetHelp =
    "Usage:\n"
    "  sluice budget [OPTION]... CONFIG_FILE\n"
    "  sluice budget [OPTION]... CONNINFO\n"
    "\n"
    "Checks the connection budget. For every server that CONFIG_FILE's [databases] point at,\n"
    "compares what the pools may open (pool_size + reserve_pool_size per database and user,\n"
    "with [users] overrides, max_db_connections and max_user_connections) with what the server\n"
    "holds: max_connections, superuser_reserved_connections, reserved_connections (PostgreSQL\n"
    "16 and later), each role's and database's CONNECTION LIMIT, and the client connections\n"
    "open now (pg_stat_activity by user and state). Problems are said in plain words. With a\n"
    "connection string (\"host=... port=...\" or postgresql://...) instead of a file, reports\n"
    "that server's budget alone.\n"
    "\n"
    "Which pools: a database with user= has one pool; a database without one is counted with\n"
    "a pool for every user of the auth file and [users], an upper bound. The fallback entry *\n"
    "counts a pool per database of the server without an entry of its own. An entry with\n"
    "several hosts counts in full on each. Servers are told apart by host and port as written.\n"
    "\n"
    "Logging in, per server, the first login that works:\n"
    "  1. with -U NAME: NAME only, with its plain-text password from the config or the auth\n"
    "     file if there is one, else libpq's PGPASSWORD or ~/.pgpass;\n"
    "  2. otherwise each user= of the [databases] entries of that server, with the password\n"
    "     sluice would use (the entry's password=, or a plain-text auth file secret; a hashed\n"
    "     secret cannot be used by a client, so PGPASSWORD, ~/.pgpass or trust must do);\n"
    "  3. then libpq's defaults: PGUSER (else the OS user name), PGPASSWORD, ~/.pgpass.\n"
    "The database is -d NAME, else the first entry's database on that server, else postgres.\n"
    "A superuser or a member of pg_read_all_stats sees the state of every session; other\n"
    "roles see other roles' sessions counted, their states unknown.\n"
    "\n"
    "Options:\n"
    "  -U, --user NAME          log in to every server as NAME (a superuser is best)\n"
    "  -d, --dbname NAME        connect to database NAME\n"
    "  -t, --connect-timeout S  seconds to wait for each server (default: the config's\n"
    "                           server_connect_timeout; 10 with a connection string)\n"
    "  -h, --help               show this help, then exit\n"
    "\n"
    "Exit status: 0 the budget holds on every server; 1 it does not hold on at least one;\n"
    "2 it could not be checked (bad usage, invalid config, a server unreachable or refusing\n"
    "the login) and nothing checked was found wrong.\n";

constexpr const char* kCheckHelp =
    "Usage:\n"
    "  sluice check CONFIG_FILE\n"
    "\n"
    "Reads CONFIG_FILE as sluice would at start (with %include and the auth file), prints its\n"
    "warnings, and says whether it is valid. Exit status: 0 valid, 1 invalid (the reason is\n"
    "printed), 2 bad usage.\n";

struct BudgetArgs {
  budget::LoginOptions login;
  int connect_timeout = 0;  // 0: default
  std::string target;
};

// "-U x", "-Ux", "--user x", "--user=x". Returns false when `a` is not this option.
bool option_value(int argc, char** argv, int& i, std::string_view short_name,
                  std::string_view long_name, std::string& value, bool& missing) {
  std::string_view a = argv[i];
  if (a == short_name || a == long_name) {
    if (i + 1 >= argc) {
      missing = true;
      return true;
    }
    value = argv[++i];
    return true;
  }
  if (a.size() > short_name.size() && a.substr(0, short_name.size()) == short_name &&
      short_name.size() == 2) {
    value = std::string(a.substr(2));
    return true;
  }
  if (a.size() > long_name.size() + 1 && a.substr(0, long_name.size()) == long_name &&
      a[long_name.size()] == '=') {
    value = std::string(a.substr(long_name.size() + 1));
    return true;
  }
  return false;
}

bool parse_seconds(const std::string& s, int& out) {
  if (s.empty() || s.size() > 6) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v <= 0) return false;
  out = v;
  return true;
}

// 0 parsed, else the exit status (help or usage error).
int parse_budget_args(int argc, char** argv, BudgetArgs& args, bool& done) {
  done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    std::string value;
    bool missing = false;
    if (a == "-h" || a == "--help") {
      std::fputs(kBudgetHelp, stdout);
      done = true;
      return kHolds;
    }
    if (option_value(argc, argv, i, "-U", "--user", value, missing)) {
      args.login.user = value;
    } else if (option_value(argc, argv, i, "-d", "--dbname", value, missing)) {
      args.login.dbname = value;
    } else if (option_value(argc, argv, i, "-t", "--connect-timeout", value, missing)) {
      if (!missing && !parse_seconds(value, args.connect_timeout)) {
        std::fprintf(stderr, "sluice budget: invalid --connect-timeout: %s\n", value.c_str());
        done = true;
        return kCannotCheck;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "sluice budget: unknown option %s\n", argv[i]);
      done = true;
      return kCannotCheck;
    } else if (args.target.empty()) {
      args.target = std::string(a);
    } else {
      std::fprintf(stderr, "sluice budget: too many arguments\n");
      done = true;
      return kCannotCheck;
    }
    if (missing) {
      std::fprintf(stderr, "sluice budget: %s needs a value\n", argv[i]);
      done = true;
      return kCannotCheck;
    }
  }
  if (args.target.empty()) {
    std::fputs("sluice budget: give a config file or a connection string (see --help)\n", stderr);
    done = true;
    return kCannotCheck;
  }
  return kHolds;
}

bool looks_like_conninfo(const std::string& s) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(s, ec)) return false;
  return s.find('=') != std::string::npos || s.rfind("postgres://", 0) == 0 ||
         s.rfind("postgresql://", 0) == 0;
}

int budget_of_server(const BudgetArgs& args) {
  budget::ServerAddress address;
  const int timeout = args.connect_timeout > 0 ? args.connect_timeout : kDefaultConnectTimeout;
  auto facts = budget::read_server(args.target, timeout, address);
  if (!facts) {
    std::fprintf(stderr, "sluice budget: cannot check: %s\n", facts.error().c_str());
    return kCannotCheck;
  }
  budget::ServerBudget b = budget::evaluate_server(address, *facts);
  std::fputs(budget::render(b).c_str(), stdout);
  return b.holds() ? kHolds : kDoesNotHold;
}

int budget_of_config(const BudgetArgs& args) {
  auto loaded = config::load(args.target);
  if (!loaded) {
    std::fprintf(stderr, "sluice budget: cannot check: %s\n", loaded.error().c_str());
    return kCannotCheck;
  }
  const config::Config& cfg = *loaded.value();
  for (const auto& w : cfg.warnings)
    std::fprintf(stderr, "warning: %s\n", w.c_str());
  auto plans = budget::plan_servers(cfg, args.login);
  if (plans.empty()) {
    std::fprintf(stderr, "sluice budget: cannot check: %s has no [databases] entries\n",
                 args.target.c_str());
    return kCannotCheck;
  }
  int timeout = args.connect_timeout;
  if (timeout <= 0) {
    const core::Micros t = cfg.settings.server_connect_timeout;
    timeout = t > 0 ? static_cast<int>((t + core::kMicrosPerSecond - 1) / core::kMicrosPerSecond)
                    : kDefaultConnectTimeout;
  }
  int failed = 0, unchecked = 0;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    const budget::ServerPlan& plan = plans[i];
    if (i > 0) std::fputs("\n", stdout);
    auto facts = budget::read_server(plan.address, plan.logins, timeout);
    if (!facts) {
      std::printf("server %s: cannot check: %s\n", plan.address.display().c_str(),
                  facts.error().c_str());
      for (const auto& n : plan.notes)
        std::printf("    - %s\n", n.c_str());
      ++unchecked;
      continue;
    }
    budget::ServerBudget b = budget::evaluate(cfg, plan, *facts);
    for (const auto& n : plan.notes)
      b.findings.push_back({budget::Severity::Note, n});
    std::fputs(budget::render(b).c_str(), stdout);
    if (!b.holds()) ++failed;
  }
  const std::size_t n = plans.size();
  std::printf("\n");
  if (failed > 0) {
    std::printf("budget does not hold on %d of %zu server%s\n", failed, n, n == 1 ? "" : "s");
  } else if (unchecked > 0) {
    std::printf("budget could not be checked on %d of %zu server%s\n", unchecked, n,
                n == 1 ? "" : "s");
  } else {
    std::printf("budget holds on %s\n",
                n == 1 ? "the server" : ("all " + std::to_string(n) + " servers").c_str());
  }
  if (failed > 0) return kDoesNotHold;
  return unchecked > 0 ? kCannotCheck : kHolds;
}

}  // namespace

int budget_main(int argc, char** argv) {
  BudgetArgs args;
  bool done = false;
  int rc = parse_budget_args(argc, argv, args, done);
  if (done) return rc;
  return looks_like_conninfo(args.target) ? budget_of_server(args) : budget_of_config(args);
}

int check_main(int argc, char** argv) {
  if (argc == 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
    std::fputs(kCheckHelp, stdout);
    return 0;
  }
  if (argc != 2 || argv[1][0] == '\0' || (argv[1][0] == '-' && argv[1][1] != '\0')) {
    std::fputs(kCheckHelp, stderr);
    return 2;
  }
  const std::string path = argv[1];
  auto r = config::load(path);
  if (!r) {
    std::fprintf(stderr, "sluice check: %s\n", r.error().c_str());
    std::printf("%s: configuration is not valid\n", path.c_str());
    return 1;
  }
  const config::Config& cfg = *r.value();
  for (const auto& w : cfg.warnings)
    std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::printf(
      "%s: configuration is valid (%zu database%s, %zu [users] entr%s, %zu auth file "
      "user%s, %zu warning%s)\n",
      path.c_str(), cfg.databases.size(), cfg.databases.size() == 1 ? "" : "s", cfg.users.size(),
      cfg.users.size() == 1 ? "y" : "ies", cfg.auth_entries.size(),
      cfg.auth_entries.size() == 1 ? "" : "s", cfg.warnings.size(),
      cfg.warnings.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace sluice::app
