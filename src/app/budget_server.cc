// Reading one server's connection budget over libpq; only `sluice budget` uses libpq.
#include "app/budget_server.h"

#include <libpq-fe.h>

#include <charconv>
#include <memory>
#include <string_view>
#include <utility>

namespace sluice::app::budget {

namespace {

constexpr const char* kApplicationName = "sluice budget";
constexpr const char* kStatementTimeout = "-c statement_timeout=10000";

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Rows = std::unique_ptr<PGresult, ResultDeleter>;
using Params = std::vector<std::pair<std::string, std::string>>;

// libpq's message on one line: runs of white space (its newlines and tabs) become one space.
std::string one_line(const char* text) {
  std::string out;
  for (const char* p = text != nullptr ? text : ""; *p != '\0'; ++p) {
    const bool space = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
    if (!space) {
      out += *p;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

struct ParamArrays {
  std::vector<const char*> keys, values;
  explicit ParamArrays(const Params& p) {
    for (const auto& [k, v] : p) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
  }
};

Conn connect(const Params& params, bool expand_dbname) {
  ParamArrays a(params);
  return Conn(PQconnectdbParams(a.keys.data(), a.values.data(), expand_dbname ? 1 : 0));
}

bool answers(const Params& params) {
  ParamArrays a(params);
  return PQpingParams(a.keys.data(), a.values.data(), 0) != PQPING_NO_RESPONSE;
}

core::Result<Rows> query(PGconn* c, const char* sql, int columns) {
  Rows r(PQexec(c, sql));
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    return core::Error{"query failed: " + one_line(PQerrorMessage(c))};
  }
  if (PQnfields(r.get()) != columns) return core::Error{"query returned unexpected columns"};
  return r;
}

std::string text(const Rows& r, int row, int col) {
  return PQgetvalue(r.get(), row, col);
}

bool flag(const Rows& r, int row, int col) {
  return text(r, row, col) == "t";
}

int number(const Rows& r, int row, int col, bool& ok) {
  const char* s = PQgetvalue(r.get(), row, col);
  const char* end = s + PQgetlength(r.get(), row, col);
  int v = 0;
  auto [p, ec] = std::from_chars(s, end, v);
  if (ec != std::errc() || p != end) ok = false;
  return v;
}

constexpr const char* kSettingsSql =
    "SELECT split_part(current_setting('server_version'), ' ', 1),"
    " current_setting('server_version_num'),"
    " current_setting('max_connections'),"
    " current_setting('superuser_reserved_connections'),"
    " current_setting('reserved_connections', true),"
    " current_user,"
    " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),"
    " pg_has_role('pg_read_all_stats', 'MEMBER')";

constexpr const char* kRolesSql =
    "SELECT rolname, rolconnlimit, rolsuper, rolcanlogin FROM pg_roles"
    " WHERE rolname !~ '^pg_' ORDER BY rolname";

constexpr const char* kDatabasesSql =
    "SELECT datname, datconnlimit, datallowconn, datistemplate FROM pg_database"
    " ORDER BY datname";

// Client backends; where the login may not see a session's backend_type (another role's, without
// pg_read_all_stats) a session with a database is taken as one.
constexpr const char* kActivitySql =
    "SELECT coalesce(usename, ''), coalesce(datname, ''), coalesce(state, ''), count(*)"
    " FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
    " AND (backend_type = 'client backend' OR (backend_type IS NULL AND datname IS NOT NULL))"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";

core::Result<ServerFacts> read_facts(PGconn* c) {
  ServerFacts f;
  bool ok = true;
  auto s = query(c, kSettingsSql, 8);
  if (!s) return core::Error{s.error()};
  if (PQntuples(s->get()) != 1) return core::Error{"no settings row"};
  f.version = text(*s, 0, 0);
  f.version_num = number(*s, 0, 1, ok);
  f.max_connections = number(*s, 0, 2, ok);
  f.superuser_reserved = number(*s, 0, 3, ok);
  if (!PQgetisnull(s->get(), 0, 4)) f.reserved = number(*s, 0, 4, ok);
  f.login_user = text(*s, 0, 5);
  f.login_superuser = flag(*s, 0, 6);
  f.states_visible = f.login_superuser || flag(*s, 0, 7);

  auto roles = query(c, kRolesSql, 4);
  if (!roles) return core::Error{roles.error()};
  for (int i = 0; i < PQntuples(roles->get()); ++i) {
    f.roles.push_back(
        {text(*roles, i, 0), number(*roles, i, 1, ok), flag(*roles, i, 2), flag(*roles, i, 3)});
  }
  auto dbs = query(c, kDatabasesSql, 4);
  if (!dbs) return core::Error{dbs.error()};
  for (int i = 0; i < PQntuples(dbs->get()); ++i) {
    f.databases.push_back(
        {text(*dbs, i, 0), number(*dbs, i, 1, ok), flag(*dbs, i, 2), flag(*dbs, i, 3)});
  }
  auto act = query(c, kActivitySql, 4);
  if (!act) return core::Error{act.error()};
  for (int i = 0; i < PQntuples(act->get()); ++i) {
    f.activity.push_back(
        {text(*act, i, 0), text(*act, i, 1), text(*act, i, 2), number(*act, i, 3, ok)});
  }
  if (!ok) return core::Error{"the server returned a number sluice cannot read"};
  return f;
}

}  // namespace

core::Result<ServerFacts> read_server(const ServerAddress& address,
                                      const std::vector<Login>& logins, int connect_timeout_s) {
  std::string errors;
  for (const auto& login : logins) {
    Params p = {{"host", address.host},
                {"port", std::to_string(address.port)},
                {"dbname", login.dbname},
                {"connect_timeout", std::to_string(connect_timeout_s)},
                {"application_name", kApplicationName},
                {"options", kStatementTimeout}};
    if (!login.user.empty()) p.emplace_back("user", login.user);
    if (login.password) p.emplace_back("password", *login.password);
    Conn c = connect(p, false);
    if (c && PQstatus(c.get()) == CONNECTION_OK) {
      auto facts = read_facts(c.get());
      if (facts) return facts;
      return core::Error{errors + "as " + PQuser(c.get()) + " (" + login.source +
                         "): " + facts.error()};
    }
    errors += "as " + (login.user.empty() ? std::string("the default user") : login.user) + " (" +
              login.source + "): " + (c ? one_line(PQerrorMessage(c.get())) : "out of memory") +
              "; ";
    if (!answers(p)) break;  // nobody there: other logins will not fare better
  }
  if (errors.size() >= 2) errors.resize(errors.size() - 2);
  return core::Error{"could not log in: " + errors};
}

core::Result<ServerFacts> read_server(const std::string& conninfo, int connect_timeout_s,
                                      ServerAddress& address) {
  // Earlier keywords are defaults: what the connection string says overrides them.
  Params p = {{"connect_timeout", std::to_string(connect_timeout_s)},
              {"application_name", kApplicationName},
              {"options", kStatementTimeout},
              {"dbname", conninfo}};
  Conn c = connect(p, true);
  if (!c) return core::Error{"out of memory"};
  if (PQstatus(c.get()) != CONNECTION_OK) {
    return core::Error{"could not log in: " + one_line(PQerrorMessage(c.get()))};
  }
  const char* host = PQhost(c.get());
  const char* port = PQport(c.get());
  address.host = host != nullptr ? host : "";
  address.port = 5432;
  if (port != nullptr && *port != '\0') {
    std::string_view ps(port);
    auto [end, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), address.port);
    if (ec != std::errc() || end != ps.data() + ps.size()) address.port = 5432;
  }
  return read_facts(c.get());
}

}  // namespace sluice::app::budget
