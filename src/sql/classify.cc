// classify(): walk libpg_query's JSON parse tree for the statements that touch session state.
#include "sql/classify.h"

#include <pg_query.h>

#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "sql/scan.h"

namespace sluice::sql {
namespace {

using json = nlohmann::json;

constexpr int kCursorOptHold = 0x0020;  // CURSOR_OPT_HOLD in Postgres' parsenodes.h

std::string last_name(const json& names) {
  if (!names.is_array() || names.empty()) return {};
  const json& last = names.back();
  if (last.contains("String") && last["String"].contains("sval")) {
    return last["String"]["sval"].get<std::string>();
  }
  return {};
}

// TEMP in the statement, or an explicit pg_temp schema (pg_temp, or pg_temp_N by its own name).
bool temp_rel(const json& rel) {
  if (!rel.is_object()) return false;
  if (rel.value("relpersistence", std::string()) == "t") return true;
  std::string schema = rel.value("schemaname", std::string());
  return schema.rfind("pg_temp", 0) == 0;
}

// A custom setting's name ("app.tenant"): remembered, lower case, for the read-back.
void add_custom_setting(std::string name, Effects& e) {
  if (name.find('.') == std::string::npos) return;
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
  }
  for (const auto& n : e.custom_settings) {
    if (n == name) return;
  }
  e.custom_settings.push_back(std::move(name));
}

// The string literal an argument is, or "".
std::string literal_arg(const json& args, std::size_t i) {
  if (!args.is_array() || args.size() <= i) return {};
  const json& a = args[i];
  if (!a.contains("A_Const")) return {};
  const json& c = a["A_Const"];
  if (!c.contains("sval") || !c["sval"].contains("sval")) return {};
  return c["sval"]["sval"].get<std::string>();
}

// A qualified name list (schema first) in an explicit pg_temp schema.
bool temp_name(const json& names) {
  if (!names.is_array() || names.size() < 2) return false;
  const json& first = names.front();
  if (!first.contains("String") || !first["String"].contains("sval")) return false;
  return first["String"]["sval"].get<std::string>().rfind("pg_temp", 0) == 0;
}

// Objects other than relations that CREATE can put in pg_temp: functions, statistics, types,
// domains, operators, aggregates, collations, conversions. The name field of each statement kind.
const char* temp_object_names(const std::string& kind) {
  if (kind == "CreateFunctionStmt") return "funcname";
  if (kind == "CreateStatsStmt" || kind == "DefineStmt") return "defnames";
  if (kind == "CreateDomainStmt") return "domainname";
  if (kind == "CreateEnumStmt" || kind == "CreateRangeStmt") return "typeName";
  if (kind == "CreateConversionStmt") return "conversion_name";
  return nullptr;
}

// Function calls anywhere in a statement.
void walk_functions(const json& j, Effects& e) {
  if (j.is_object()) {
    auto it = j.find("FuncCall");
    if (it != j.end() && it->is_object()) {
      std::string f = last_name(it->value("funcname", json::array()));
      if (f == "set_config") {
        e.settings = true;
        add_custom_setting(literal_arg(it->value("args", json::array()), 0), e);
      } else if (f == "pg_advisory_lock" || f == "pg_advisory_lock_shared" ||
                 f == "pg_try_advisory_lock" || f == "pg_try_advisory_lock_shared") {
        e.state = true;
        e.pin_reason = "advisory lock";
      } else if (f == "pg_advisory_unlock" || f == "pg_advisory_unlock_shared" ||
                 f == "pg_advisory_unlock_all") {
        e.state = true;
      }
    }
    for (const auto& [k, v] : j.items())
      walk_functions(v, e);
  } else if (j.is_array()) {
    for (const auto& v : j)
      walk_functions(v, e);
  }
}

void classify_statement(const json& stmt, std::string_view text, const json& raw, Effects& e) {
  if (!stmt.is_object() || stmt.empty()) return;
  const std::string& kind = stmt.begin().key();
  const json& n = stmt.begin().value();
  if (kind == "VariableSetStmt") {
    std::string k = n.value("kind", std::string());
    bool local = n.value("is_local", false);
    std::string name = n.value("name", std::string());
    if (k == "VAR_RESET" || k == "VAR_RESET_ALL") {
      e.settings = true;
    } else if (!local && name != "TRANSACTION") {
      e.settings = true;  // SET, SET SESSION, SET ROLE, SET SESSION AUTHORIZATION, ...
      add_custom_setting(name, e);
    }
  } else if (kind == "DiscardStmt") {
    std::string t = n.value("target", std::string());
    if (t == "DISCARD_ALL") {
      e.settings = e.state = e.discard_all = true;
      e.prepared_ops.push_back({Effects::Op::DiscardAll, {}, {}});
    } else if (t == "DISCARD_TEMP") {
      e.state = true;
    }
  } else if (kind == "ListenStmt") {
    e.state = true;
    e.pin_reason = "listen";
  } else if (kind == "UnlistenStmt") {
    e.state = true;
  } else if (kind == "LoadStmt") {
    e.load = true;
    e.pin_reason = "load";
  } else if (kind == "CreateStmt" || kind == "CreateSeqStmt") {
    const json& rel =
        kind == "CreateStmt" ? n.value("relation", json()) : n.value("sequence", json());
    if (temp_rel(rel)) {
      e.state = true;
      e.pin_reason = "temp table";
    }
  } else if (kind == "CreateTableAsStmt") {
    if (n.contains("into") && temp_rel(n["into"].value("rel", json()))) {
      e.state = true;
      e.pin_reason = "temp table";
    }
    // CREATE TABLE ... AS EXECUTE p: the server must have p.
    const json& q = n.value("query", json());
    if (q.is_object() && q.contains("ExecuteStmt")) classify_statement(q, text, raw, e);
  } else if (kind == "ExplainStmt") {
    // EXPLAIN [ANALYZE] runs or plans its statement: EXECUTE needs p on the server; ANALYZE of
    // CREATE TEMP TABLE AS creates the table.
    classify_statement(n.value("query", json()), text, raw, e);
  } else if (kind == "ViewStmt") {
    if (temp_rel(n.value("view", json()))) {
      e.state = true;
      e.pin_reason = "temp table";
    }
  } else if (kind == "SelectStmt") {
    if (n.contains("intoClause") && temp_rel(n["intoClause"].value("rel", json()))) {
      e.state = true;
      e.pin_reason = "temp table";
    }
  } else if (const char* field = temp_object_names(kind); field != nullptr) {
    if (temp_name(n.value(field, json()))) {
      e.state = true;
      e.pin_reason = "temp object";
    }
  } else if (kind == "CompositeTypeStmt") {
    if (temp_rel(n.value("typevar", json()))) {
      e.state = true;
      e.pin_reason = "temp object";
    }
  } else if (kind == "DropStmt") {
    e.state = true;  // may drop a temp table
  } else if (kind == "DeclareCursorStmt") {
    if ((n.value("options", 0) & kCursorOptHold) != 0) {
      e.state = true;
      e.pin_reason = "cursor with hold";
    }
  } else if (kind == "ClosePortalStmt") {
    e.state = true;
  } else if (kind == "DoStmt" || kind == "CallStmt") {
    e.settings = e.state = true;  // procedural code may do anything: look afterwards
  } else if (kind == "PrepareStmt") {
    int loc = raw.value("stmt_location", 0);
    int len = raw.value("stmt_len", 0);
    std::string_view t = text.substr(static_cast<std::size_t>(loc));
    if (len > 0) t = t.substr(0, static_cast<std::size_t>(len));
    e.prepared_ops.push_back(
        {Effects::Op::Prepare, n.value("name", std::string()), std::string(t)});
  } else if (kind == "ExecuteStmt") {
    e.executes.push_back(n.value("name", std::string()));
  } else if (kind == "DeallocateStmt") {
    if (n.contains("name")) {
      e.prepared_ops.push_back({Effects::Op::Deallocate, n["name"].get<std::string>(), {}});
    } else {
      e.deallocate_all = true;
      e.prepared_ops.push_back({Effects::Op::DeallocateAll, {}, {}});
    }
  }
  walk_functions(n, e);
}

class Cache {
 public:
  std::shared_ptr<const Effects> get(std::string_view text) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = map_.find(std::string(text));
    if (it == map_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }
  void put(std::string_view text, std::shared_ptr<const Effects> e) {
    if (text.size() > kMaxKey) return;
    std::lock_guard<std::mutex> g(mu_);
    std::string key(text);
    if (map_.count(key) != 0) return;
    lru_.push_front(key);
    map_.emplace(std::move(key), std::make_pair(std::move(e), lru_.begin()));
    while (map_.size() > kMaxEntries) {
      map_.erase(lru_.back());
      lru_.pop_back();
    }
  }

 private:
  static constexpr std::size_t kMaxEntries = 4096;
  static constexpr std::size_t kMaxKey = 64 * 1024;
  std::mutex mu_;
  std::list<std::string> lru_;
  std::unordered_map<std::string,
                     std::pair<std::shared_ptr<const Effects>, std::list<std::string>::iterator>>
      map_;
};

Cache& cache() {
  static Cache c;
  return c;
}

}  // namespace

std::shared_ptr<const Effects> classify(std::string_view text) {
  auto e = std::make_shared<Effects>();
  std::string z(text);  // libpg_query wants a NUL-terminated string
  PgQueryParseResult r = pg_query_parse(z.c_str());
  if (r.error != nullptr) {
    e->parse_error = true;
    pg_query_free_parse_result(r);
    return e;
  }
  json tree = json::parse(r.parse_tree, nullptr, false);
  pg_query_free_parse_result(r);
  if (tree.is_discarded()) return e;
  for (const auto& raw : tree.value("stmts", json::array())) {
    classify_statement(raw.value("stmt", json::object()), z, raw, *e);
  }
  return e;
}

std::shared_ptr<const Effects> effects_of(std::string_view text) {
  if (!needs_parse(text)) return nullptr;
  return effects_of_parsed(text);
}

std::shared_ptr<const Effects> effects_of_parsed(std::string_view text) {
  if (auto hit = cache().get(text)) return hit->any() ? hit : nullptr;
  auto e = classify(text);
  cache().put(text, e);
  return e->any() ? e : nullptr;
}

}  // namespace sluice::sql
