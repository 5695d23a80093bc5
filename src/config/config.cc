// Configuration snapshots: load and parse pgbouncer.ini, validate, SET at run time, lookups.
#include "config/config.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <variant>

#include "config/auth_file.h"
#include "config/entries.h"
#include "config/hba.h"
#include "config/ini.h"
#include "config/settings.h"
#include "config/values.h"

namespace sluice::config {

namespace {

constexpr std::array<std::pair<PoolMode, std::string_view>, 3> kPoolModes = {{
    {PoolMode::Session, "session"},
    {PoolMode::Transaction, "transaction"},
    {PoolMode::Statement, "statement"},
}};

constexpr std::array<std::pair<AuthType, std::string_view>, 9> kAuthTypes = {{
    {AuthType::Trust, "trust"},
    {AuthType::Any, "any"},
    {AuthType::Plain, "plain"},
    {AuthType::Md5, "md5"},
    {AuthType::ScramSha256, "scram-sha-256"},
    {AuthType::Cert, "cert"},
    {AuthType::Hba, "hba"},
    {AuthType::Pam, "pam"},
    {AuthType::Ldap, "ldap"},
}};

constexpr std::array<std::pair<SslMode, std::string_view>, 6> kSslModes = {{
    {SslMode::Disable, "disable"},
    {SslMode::Allow, "allow"},
    {SslMode::Prefer, "prefer"},
    {SslMode::Require, "require"},
    {SslMode::VerifyCa, "verify-ca"},
    {SslMode::VerifyFull, "verify-full"},
}};

enum class Section : std::uint8_t { None, Main, Databases, Users, Peers, Unknown };

// Auth types that check a password against the auth file: without it nobody can log in.
bool needs_auth_file(AuthType t) {
  return t == AuthType::Plain || t == AuthType::Md5 || t == AuthType::ScramSha256;
}

void add_warning(Config& cfg, std::string text) {
  if (std::find(cfg.warnings.begin(), cfg.warnings.end(), text) == cfg.warnings.end()) {
    cfg.warnings.push_back(std::move(text));
  }
}

template <typename Entry>
void put_named(std::vector<Entry>& list, Entry entry, std::string_view what, const IniItem& item,
               std::vector<std::string>& warnings) {
  auto it =
      std::find_if(list.begin(), list.end(), [&](const Entry& e) { return e.name == entry.name; });
  if (it == list.end()) {
    list.push_back(std::move(entry));
    return;
  }
  warnings.push_back(item.where() + ": " + std::string(what) + " '" + entry.name +
                     "' is defined again; the later entry is used");
  *it = std::move(entry);
}

// Fills cfg from the lines of the file; `top` names the file for whole-file messages.
core::Result<std::monostate> build(Config& cfg, const std::vector<IniItem>& items,
                                   const std::string& top) {
  Section section = Section::None;
  bool got_main = false;
  bool warned_peers = false;
  for (const IniItem& item : items) {
    if (item.kind == IniItem::Kind::Section) {
      if (item.name == "pgbouncer" || item.name == "sluice") {
        section = Section::Main;
        got_main = true;
      } else if (item.name == "databases") {
        section = Section::Databases;
      } else if (item.name == "users") {
        section = Section::Users;
      } else if (item.name == "peers") {
        section = Section::Peers;
      } else {
        section = Section::Unknown;
        cfg.warnings.push_back(item.where() + ": unknown section [" + item.name + "] ignored");
      }
      continue;
    }
    const std::string at = item.where() + ": ";
    switch (section) {
      case Section::None:
        return core::Error{at + "'" + item.name + "' appears before any [section]"};
      case Section::Main: {
        const std::string key = to_lower(item.name);
        switch (apply_setting(cfg, key, item.value, at)) {
          case SettingStatus::Ok:
            break;
          case SettingStatus::Unknown:
            cfg.warnings.push_back(at + "unknown setting: " + key);
            break;
          case SettingStatus::Invalid:
            return core::Error{at + "invalid value for " + key + ": '" + item.value + "'"};
        }
        break;
      }
      case Section::Databases: {
        std::vector<std::string> notes;
        auto db = parse_database_entry(item.name, item.value, notes);
        if (!db.ok()) return core::Error{at + db.error()};
        for (auto& note : notes)
          cfg.warnings.push_back(at + note);
        put_named(cfg.databases, std::move(*db), "database", item, cfg.warnings);
        break;
      }
      case Section::Users: {
        auto user = parse_user_entry(item.name, item.value);
        if (!user.ok()) return core::Error{at + user.error()};
        put_named(cfg.users, std::move(*user), "user", item, cfg.warnings);
        break;
      }
      case Section::Peers:
        if (!warned_peers) {
          cfg.warnings.push_back(at + "peers not supported: [peers] entries ignored");
          warned_peers = true;
        }
        break;
      case Section::Unknown:
        break;
    }
  }
  if (!got_main) return core::Error{top + ": no [pgbouncer] section"};
  return std::monostate{};
}

// Reads auth_file (relative to the config's directory) into cfg.auth_entries.
core::Result<std::monostate> load_auth_file(Config& cfg) {
  const Settings& s = cfg.settings;
  cfg.auth_entries.clear();
  if (s.auth_file.empty()) {
    if (needs_auth_file(s.auth_type) && s.auth_user.empty()) {
      add_warning(cfg, "auth_file is not set: no user can log in with auth_type " +
                           std::string(to_string(s.auth_type)));
    }
    return std::monostate{};
  }
  std::filesystem::path path(s.auth_file);
  if (path.is_relative()) path = std::filesystem::path(cfg.base_dir) / path;
  auto text = read_text_file(path.string());
  if (!text.ok()) {
    if (needs_auth_file(s.auth_type)) return core::Error{"auth_file: " + text.error()};
    add_warning(cfg, "auth_file: " + text.error());
    return std::monostate{};
  }
  auto entries = parse_auth_text(*text, path.string());
  if (!entries.ok()) return core::Error{entries.error()};
  cfg.auth_entries = std::move(*entries);
  return std::monostate{};
}

// A relative path names a file next to the config file; PgBouncer reads it relative to its
// working directory, so that is tried when the first does not exist.
std::string resolve_path(const Config& cfg, const std::string& file) {
  std::filesystem::path path(file);
  if (!path.is_relative()) return path.string();
  std::filesystem::path near = std::filesystem::path(cfg.base_dir) / path;
  std::error_code ec;
  if (std::filesystem::exists(near, ec) || !std::filesystem::exists(path, ec)) return near.string();
  return path.string();
}

// Reads auth_hba_file and auth_ident_file. Problems are warnings: an unreadable or malformed
// HBA file refuses every login (fail closed) instead of stopping a reload.
void load_hba_files(Config& cfg) {
  const Settings& s = cfg.settings;
  cfg.hba.reset();
  cfg.ident.reset();
  if (!s.auth_ident_file.empty()) {
    std::string path = resolve_path(cfg, s.auth_ident_file);
    auto text = read_text_file(path);
    if (!text.ok()) {
      add_warning(cfg, "auth_ident_file: " + text.error());
    } else {
      std::vector<std::string> problems;
      cfg.ident = std::make_shared<const IdentMap>(IdentMap::parse(*text, problems));
      for (auto& p : problems)
        add_warning(cfg, path + ": " + p);
    }
  }
  if (s.auth_hba_file.empty()) {
    if (s.auth_type == AuthType::Hba) {
      add_warning(cfg, "auth_type hba without auth_hba_file: every login is refused");
    }
    return;
  }
  std::string path = resolve_path(cfg, s.auth_hba_file);
  auto text = read_text_file(path);
  if (!text.ok()) {
    cfg.hba = std::make_shared<const HbaRules>(
        HbaRules::refuse_all("auth_hba_file: " + text.error() + ": every login is refused"));
  } else {
    std::string dir = std::filesystem::path(path).parent_path().string();
    auto load_list = [&dir](std::string_view name) -> core::Result<std::string> {
      std::filesystem::path p{std::string(name)};
      if (p.is_relative()) p = std::filesystem::path(dir) / p;
      return read_text_file(p.string());
    };
    cfg.hba = std::make_shared<const HbaRules>(HbaRules::parse(*text, path, load_list));
  }
  if (s.auth_type == AuthType::Hba) {
    for (const auto& p : cfg.hba->problems())
      add_warning(cfg, p);
  }
}

bool is_reserved_db(std::string_view name) {
  return name == "pgbouncer" || name == "sluice";
}

core::Result<std::monostate> check_auth_settings(const Config& cfg) {
  if (is_reserved_db(cfg.settings.auth_dbname)) {
    return core::Error{"cannot use the reserved \"" + cfg.settings.auth_dbname +
                       "\" database as an auth_dbname"};
  }
  return std::monostate{};
}

core::Result<std::shared_ptr<Config>> finish(std::shared_ptr<Config> cfg,
                                             const std::vector<IniItem>& items,
                                             const std::string& top) {
  auto built = build(*cfg, items, top);
  if (!built.ok()) return core::Error{built.error()};
  auto auth = load_auth_file(*cfg);
  if (!auth.ok()) return core::Error{auth.error()};
  auto checked = check_auth_settings(*cfg);
  if (!checked.ok()) return core::Error{checked.error()};
  load_hba_files(*cfg);
  return cfg;
}

// A value as the console sends it: 'text' with '' for a quote, or a bare word.
std::string unquote_sql(std::string_view v) {
  v = trim(v);
  if (v.size() < 2 || v.front() != '\'' || v.back() != '\'') return std::string(v);
  std::string out;
  v = v.substr(1, v.size() - 2);
  for (std::size_t i = 0; i < v.size(); ++i) {
    out += v[i];
    if (v[i] == '\'' && i + 1 < v.size() && v[i + 1] == '\'') ++i;
  }
  return out;
}

}  // namespace

std::string_view to_string(PoolMode m) {
  for (const auto& [mode, name] : kPoolModes) {
    if (mode == m) return name;
  }
  return "unknown";
}

std::optional<PoolMode> parse_pool_mode(std::string_view s) {
  for (const auto& [mode, name] : kPoolModes) {
    if (iequals(s, name)) return mode;
  }
  return std::nullopt;
}

std::string_view to_string(AuthType t) {
  for (const auto& [type, name] : kAuthTypes) {
    if (type == t) return name;
  }
  return "unknown";
}

std::optional<AuthType> parse_auth_type(std::string_view s) {
  for (const auto& [type, name] : kAuthTypes) {
    if (iequals(s, name)) return type;
  }
  return std::nullopt;
}

std::string_view to_string(SslMode m) {
  for (const auto& [mode, name] : kSslModes) {
    if (mode == m) return name;
  }
  return "unknown";
}

std::optional<SslMode> parse_ssl_mode(std::string_view s) {
  for (const auto& [mode, name] : kSslModes) {
    if (iequals(s, name)) return mode;
  }
  return std::nullopt;
}

const DatabaseConfig* Config::find_database(std::string_view name) const {
  for (const auto& db : databases) {
    if (db.name == name) return &db;
  }
  return nullptr;
}

const DatabaseConfig* Config::fallback_database() const {
  return find_database("*");
}

const UserConfig* Config::find_user(std::string_view name) const {
  for (const auto& u : users) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

const AuthEntry* Config::find_auth(std::string_view user) const {
  for (const auto& e : auth_entries) {
    if (e.user == user) return &e;
  }
  return nullptr;
}

core::Result<ConfigPtr> load(const std::string& path) {
  auto items = read_ini_file(path);
  if (!items.ok()) return core::Error{items.error()};
  auto cfg = std::make_shared<Config>();
  cfg->path = path;
  std::error_code ec;
  auto dir = std::filesystem::absolute(path, ec).parent_path();
  cfg->base_dir = ec ? std::filesystem::path(path).parent_path().string() : dir.string();
  if (cfg->base_dir.empty()) cfg->base_dir = ".";
  auto done = finish(std::move(cfg), *items, path);
  if (!done.ok()) return core::Error{done.error()};
  return ConfigPtr(std::move(*done));
}

core::Result<std::shared_ptr<Config>> parse(std::string_view text, const std::string& base_dir) {
  const std::string name = "<config>";
  auto items = read_ini_text(text, name, base_dir);
  if (!items.ok()) return core::Error{items.error()};
  auto cfg = std::make_shared<Config>();
  cfg->base_dir = base_dir.empty() ? "." : base_dir;
  return finish(std::move(cfg), *items, name);
}

core::Result<ConfigPtr> with_setting(const Config& base, std::string_view name,
                                     std::string_view value) {
  const std::string key = to_lower(trim(name));
  if (!is_known_setting(key)) return core::Error{"unknown setting " + key};
  if (!is_changeable(key)) return core::Error{"cannot change " + key + " at run time"};
  const std::string text = unquote_sql(value);
  auto cfg = std::make_shared<Config>(base);
  if (apply_setting(*cfg, key, text, "") != SettingStatus::Ok) {
    return core::Error{"invalid value for " + key + ": '" + text + "'"};
  }
  if (key == "auth_file" || key == "auth_type") {
    auto auth = load_auth_file(*cfg);
    if (!auth.ok()) return core::Error{auth.error()};
  }
  auto checked = check_auth_settings(*cfg);
  if (!checked.ok()) return core::Error{checked.error()};
  if (key == "auth_hba_file" || key == "auth_ident_file" || key == "auth_type") {
    load_hba_files(*cfg);
  }
  return ConfigPtr(std::move(cfg));
}

}  // namespace sluice::config
