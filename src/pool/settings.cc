// SettingsSet construction, interning and the sync query.
#include "pool/settings.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "pool/params.h"

namespace sluice::pool {
namespace {

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
  }
  return o;
}

std::uint64_t hash_kv(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over name \0 value \0
  auto mix = [&h](std::string_view s) {
    for (char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
    h ^= 0;
    h *= 1099511628211ull;
  };
  for (const auto& [k, v] : kv) {
    mix(k);
    mix(v);
  }
  return h;
}

// Equal sets share one object, so that comparing a client's and a server's is a pointer test.
class Interner {
 public:
  SettingsPtr intern(SettingsSet&& s) {
    std::lock_guard<std::mutex> g(mu_);
    auto range = map_.equal_range(s.hash);
    for (auto it = range.first; it != range.second; ++it) {
      if (SettingsPtr p = it->second.lock(); p && p->kv == s.kv) return p;
    }
    auto p = std::make_shared<const SettingsSet>(std::move(s));
    map_.emplace(p->hash, p);
    if (map_.size() > 8192 && map_.size() % 1024 == 0) {
      for (auto i = map_.begin(); i != map_.end();) {
        i = i->second.expired() ? map_.erase(i) : std::next(i);
      }
    }
    return p;
  }

 private:
  std::mutex mu_;
  std::unordered_multimap<std::uint64_t, std::weak_ptr<const SettingsSet>> map_;
};

Interner& interner() {
  static Interner i;
  return i;
}

}  // namespace

SettingsPtr make_settings(std::vector<std::pair<std::string, std::string>> kv) {
  for (auto& [k, v] : kv)
    k = lower(k);
  std::stable_sort(kv.begin(), kv.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // Later duplicates win.
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& e : kv) {
    if (!out.empty() && out.back().first == e.first) {
      out.back().second = std::move(e.second);
    } else {
      out.push_back(std::move(e));
    }
  }
  if (out.empty()) return nullptr;
  SettingsSet s;
  s.hash = hash_kv(out);
  s.kv = std::move(out);
  return interner().intern(std::move(s));
}

SettingsPtr with_setting(const SettingsPtr& base, std::string_view name, std::string_view value,
                         bool remove) {
  std::vector<std::pair<std::string, std::string>> kv;
  if (base) kv = base->kv;
  std::string n = lower(name);
  kv.erase(std::remove_if(kv.begin(), kv.end(), [&](const auto& e) { return e.first == n; }),
           kv.end());
  if (!remove) kv.emplace_back(std::move(n), std::string(value));
  return make_settings(std::move(kv));
}

bool same_settings(const SettingsPtr& a, const SettingsPtr& b) {
  if (a == b) return true;
  if (!a || !b) return false;
  return a->hash == b->hash && a->kv == b->kv;
}

const std::string* find_setting(const SettingsPtr& s, std::string_view name) {
  if (!s) return nullptr;
  std::string n = lower(name);
  for (const auto& [k, v] : s->kv) {
    if (k == n) return &v;
  }
  return nullptr;
}

bool valid_setting_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string settings_sync_sql(const SettingsPtr& want, const SettingsPtr& have) {
  if (same_settings(want, have)) return {};
  auto same = [](const std::string* a, const std::string* b) {
    return a == nullptr ? b == nullptr : b != nullptr && *a == *b;
  };
  const std::string* want_auth = find_setting(want, kSessionAuthSetting);
  const std::string* want_role = find_setting(want, kRoleSetting);
  const std::string* have_auth = find_setting(have, kSessionAuthSetting);
  const std::string* have_role = find_setting(have, kRoleSetting);
  bool identity = !same(want_auth, have_auth) || !same(want_role, have_role);
  std::string resets;
  if (have) {
    for (const auto& [k, v] : have->kv) {
      if (is_identity_setting(k)) continue;
      if (find_setting(want, k) == nullptr && valid_setting_name(k)) resets += "RESET " + k + ";";
    }
  }
  std::string sets;
  if (want) {
    for (const auto& [k, v] : want->kv) {
      if (is_identity_setting(k)) continue;
      const std::string* cur = find_setting(have, k);
      if (cur != nullptr && *cur == v) continue;
      sets += sets.empty() ? "SELECT " : ", ";
      sets += "pg_catalog.set_config(" + quote_literal(k) + ", " + quote_literal(v) + ", false)";
    }
  }
  // Settings are changed as the login identity, never under a role or session user the server
  // holds (the same one the client wants, too): a superuser login may set what its SET ROLE
  // target may not (lo_compat_privileges), so the identity is left and taken again around them.
  if ((!resets.empty() || !sets.empty()) && (have_auth != nullptr || have_role != nullptr)) {
    identity = true;
  }
  std::string out;
  // Back to the login identity first (RESET SESSION AUTHORIZATION also ends SET ROLE).
  if (identity && have_auth != nullptr) {
    out += "RESET SESSION AUTHORIZATION;";
  } else if (identity && have_role != nullptr) {
    out += "RESET ROLE;";
  }
  out += resets;
  if (!sets.empty()) out += sets + ";";
  if (identity) {
    // Separate statements: the session user must be in place before the role is checked.
    if (want_auth != nullptr) {
      out += "SELECT pg_catalog.set_config('session_authorization', " + quote_literal(*want_auth) +
             ", false);";
    }
    if (want_role != nullptr) {
      out += "SELECT pg_catalog.set_config('role', " + quote_literal(*want_role) + ", false);";
    }
  }
  return out;
}

std::string session_probe_sql(bool settings, bool state, std::string_view login_user,
                              const std::vector<std::string>& custom) {
  std::string sql;
  if (settings) {
    // role and session_authorization are not in pg_settings: read from the session itself.
    sql +=
        "SELECT name, setting FROM pg_catalog.pg_settings WHERE source = 'session' UNION ALL "
        "SELECT 'role', pg_catalog.current_setting('role') WHERE "
        "pg_catalog.current_setting('role') OPERATOR(pg_catalog.<>) 'none' UNION ALL "
        "SELECT 'session_authorization', session_user::pg_catalog.text WHERE session_user "
        "OPERATOR(pg_catalog.<>) " +
        quote_literal(login_user);
    // A placeholder that was RESET reads '': the same as never set, for every client.
    for (const auto& name : custom) {
      std::string get = "pg_catalog.current_setting(" + quote_literal(name) + ", true)";
      sql += " UNION ALL SELECT " + quote_literal(name) + ", " + get + " WHERE " + get +
             " OPERATOR(pg_catalog.<>) ''";
    }
    sql += ";";
  }
  if (state) {
    sql +=
        "SELECT (SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() "
        "AND locktype = 'advisory'), (SELECT count(*) FROM pg_catalog.pg_listening_channels()), "
        "(SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = "
        "pg_catalog.pg_my_temp_schema()) + (SELECT count(*) FROM pg_catalog.pg_proc WHERE "
        "pronamespace = pg_catalog.pg_my_temp_schema()) + (SELECT count(*) FROM "
        "pg_catalog.pg_type WHERE typnamespace = pg_catalog.pg_my_temp_schema() AND typrelid = 0) "
        "+ (SELECT count(*) FROM pg_catalog.pg_statistic_ext WHERE stxnamespace = "
        "pg_catalog.pg_my_temp_schema()) + (SELECT count(*) FROM pg_catalog.pg_operator WHERE "
        "oprnamespace = pg_catalog.pg_my_temp_schema()), (SELECT count(*) FROM "
        "pg_catalog.pg_cursors WHERE is_holdable);";
  }
  return sql;
}

}  // namespace sluice::pool
