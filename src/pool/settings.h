// Session settings a client wants and a server has: immutable sets, shared and compared by
// pointer in the common case; the difference becomes one query.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::pool {

struct SettingsSet {
  std::vector<std::pair<std::string, std::string>> kv;  // lower-case names, sorted
  std::uint64_t hash = 0;
};
// nullptr is the empty set: nothing set in the session.
using SettingsPtr = std::shared_ptr<const SettingsSet>;

// Builds a set (names lower-cased, later duplicates win), shared with an equal set built
// before when the process-wide table has it.
[[nodiscard]] SettingsPtr make_settings(std::vector<std::pair<std::string, std::string>> kv);
// `base` with one name set (value) or removed (nullopt-like: remove = true).
[[nodiscard]] SettingsPtr with_setting(const SettingsPtr& base, std::string_view name,
                                       std::string_view value, bool remove = false);
[[nodiscard]] bool same_settings(const SettingsPtr& a, const SettingsPtr& b);
[[nodiscard]] const std::string* find_setting(const SettingsPtr& s, std::string_view name);

// Role state is kept in the same sets under the names of its two settings. Postgres hides both
// from pg_settings, so the probe reads them itself, and the sync orders them (below).
inline constexpr std::string_view kRoleSetting = "role";
inline constexpr std::string_view kSessionAuthSetting = "session_authorization";
[[nodiscard]] inline bool is_identity_setting(std::string_view lower_name) {
  return lower_name == kRoleSetting || lower_name == kSessionAuthSetting;
}

// One simple-query text that turns a server with `have` into one with `want`: RESET for names
// only `have` holds, set_config(name, value, false) for the rest. Empty if nothing differs.
// When the role state differs, the server first goes back to its login identity (RESET SESSION
// AUTHORIZATION or RESET ROLE), then the settings are made, then SET SESSION AUTHORIZATION, then
// SET ROLE: each step is then allowed exactly when it was for the client.
[[nodiscard]] std::string settings_sync_sql(const SettingsPtr& want, const SettingsPtr& have);

// A GUC name sluice accepts from clients: letters, digits, '_' and '.', not too long.
[[nodiscard]] bool valid_setting_name(std::string_view name);

// What sluice asks a server after a transaction that may have changed session state.
// Result set 1 (if `settings`): name, setting of every session-level setting, plus `role` when a
// role is set and `session_authorization` when the session user is not `login_user` (the user
// the server connection logged in as), plus each of `custom` (custom settings, which pg_settings
// does not show) that has a value other than ''.
// Result set 2 (if `state`): advisory locks, listened channels, temp relations, holdable cursors.
[[nodiscard]] std::string session_probe_sql(bool settings, bool state, std::string_view login_user,
                                            const std::vector<std::string>& custom = {});

}  // namespace sluice::pool
