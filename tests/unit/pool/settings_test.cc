// Tests for settings.h: interned settings sets and the one query that syncs a server to a client.
#include "pool/settings.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace sluice::pool {
namespace {

using Kv = std::vector<std::pair<std::string, std::string>>;

TEST(SettingsSet, EmptyIsNull) {
  EXPECT_EQ(make_settings({}), nullptr);
  EXPECT_TRUE(same_settings(nullptr, nullptr));
  EXPECT_EQ(find_setting(nullptr, "a"), nullptr);
}

TEST(SettingsSet, NamesLowerCasedSortedLaterDuplicatesWin) {
  SettingsPtr s = make_settings({{"Search_Path", "x"}, {"DateStyle", "ISO"}, {"search_path", "y"}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->kv, (Kv{{"datestyle", "ISO"}, {"search_path", "y"}}));
  ASSERT_NE(find_setting(s, "SEARCH_PATH"), nullptr);
  EXPECT_EQ(*find_setting(s, "SEARCH_PATH"), "y");
  EXPECT_EQ(*find_setting(s, "datestyle"), "ISO") << "values keep their case";
  EXPECT_EQ(find_setting(s, "timezone"), nullptr);
}

TEST(SettingsSet, EqualSetsAreOneObject) {
  SettingsPtr a = make_settings({{"a", "1"}, {"b", "2"}});
  SettingsPtr b = make_settings({{"B", "2"}, {"a", "1"}});
  EXPECT_EQ(a.get(), b.get());
  EXPECT_TRUE(same_settings(a, b));
  EXPECT_EQ(a->hash, b->hash);

  SettingsPtr c = make_settings({{"a", "1"}, {"b", "3"}});
  EXPECT_NE(a.get(), c.get());
  EXPECT_FALSE(same_settings(a, c));
  EXPECT_FALSE(same_settings(a, nullptr));
  EXPECT_FALSE(same_settings(nullptr, a));
  // Name/value boundaries matter: ("ab", "c") is not ("a", "bc").
  EXPECT_FALSE(same_settings(make_settings({{"ab", "c"}}), make_settings({{"a", "bc"}})));
}

TEST(SettingsSet, WithSettingLeavesTheBaseAlone) {
  SettingsPtr base = make_settings({{"a", "1"}});
  SettingsPtr more = with_setting(base, "B", "2");
  EXPECT_EQ(base->kv, (Kv{{"a", "1"}}));
  EXPECT_EQ(more->kv, (Kv{{"a", "1"}, {"b", "2"}}));

  SettingsPtr changed = with_setting(more, "a", "9");
  EXPECT_EQ(changed->kv, (Kv{{"a", "9"}, {"b", "2"}}));
  EXPECT_EQ(more->kv, (Kv{{"a", "1"}, {"b", "2"}}));

  SettingsPtr removed = with_setting(changed, "A", "", true);
  EXPECT_EQ(removed->kv, (Kv{{"b", "2"}}));
  EXPECT_EQ(with_setting(removed, "b", "", true), nullptr) << "the last one removed: empty";
  EXPECT_EQ(with_setting(nullptr, "x", "", true), nullptr);
  EXPECT_EQ(with_setting(nullptr, "x", "1")->kv, (Kv{{"x", "1"}}));
  // Setting a value the set already has gives back the very same set.
  EXPECT_EQ(with_setting(more, "b", "2").get(), more.get());
}

TEST(SettingsSync, NothingChangedCostsNothing) {
  EXPECT_EQ(settings_sync_sql(nullptr, nullptr), "");
  SettingsPtr s = make_settings({{"application_name", "app"}, {"search_path", "s"}});
  EXPECT_EQ(settings_sync_sql(s, s), "");
  // Built separately (or rebuilt by with_setting) and still the same set: still nothing.
  EXPECT_EQ(
      settings_sync_sql(make_settings({{"search_path", "s"}, {"application_name", "app"}}), s), "");
  EXPECT_EQ(settings_sync_sql(with_setting(s, "search_path", "s"), s), "");
}

TEST(SettingsSync, OnlyTheDifferenceIsSent) {
  SettingsPtr have = make_settings({{"a", "1"}, {"b", "2"}, {"c", "3"}});
  SettingsPtr want = make_settings({{"a", "1"}, {"c", "4"}, {"d", "5"}});
  EXPECT_EQ(settings_sync_sql(want, have),
            "RESET b;SELECT pg_catalog.set_config('c', '4', false), "
            "pg_catalog.set_config('d', '5', false);");
}

TEST(SettingsSync, SettingsChangeAsTheLoginIdentity) {
  // The server already runs as the session user and role the client wants, but a setting
  // differs: it is changed as the login identity (a superuser-only setting would be refused
  // under the role), then the identity is taken again.
  SettingsPtr have = make_settings({{"session_authorization", "u4"}, {"role", "r"}});
  SettingsPtr want = make_settings(
      {{"session_authorization", "u4"}, {"role", "r"}, {"lo_compat_privileges", "on"}});
  EXPECT_EQ(settings_sync_sql(want, have),
            "RESET SESSION AUTHORIZATION;"
            "SELECT pg_catalog.set_config('lo_compat_privileges', 'on', false);"
            "SELECT pg_catalog.set_config('session_authorization', 'u4', false);"
            "SELECT pg_catalog.set_config('role', 'r', false);");
  // A RESET too, and with only a role held.
  EXPECT_EQ(
      settings_sync_sql(make_settings({{"role", "r"}}),
                        make_settings({{"role", "r"}, {"lo_compat_privileges", "on"}})),
      "RESET ROLE;RESET lo_compat_privileges;SELECT pg_catalog.set_config('role', 'r', false);");
  // Same identity and same settings: still nothing.
  EXPECT_EQ(settings_sync_sql(want, want), "");
}

TEST(SettingsSync, FromAndToNothing) {
  SettingsPtr s = make_settings({{"a", "1"}, {"b", "2"}});
  EXPECT_EQ(settings_sync_sql(s, nullptr),
            "SELECT pg_catalog.set_config('a', '1', false), "
            "pg_catalog.set_config('b', '2', false);");
  EXPECT_EQ(settings_sync_sql(nullptr, s), "RESET a;RESET b;");
  EXPECT_EQ(settings_sync_sql(make_settings({{"a", "1"}}), s), "RESET b;");
  EXPECT_EQ(settings_sync_sql(make_settings({{"a", "2"}, {"b", "2"}}), s),
            "SELECT pg_catalog.set_config('a', '2', false);");
}

TEST(SettingsSync, ValuesAndNamesAreQuoted) {
  SettingsPtr want = make_settings({{"application_name", "it's"}, {"x.y", "a\\b"}});
  EXPECT_EQ(settings_sync_sql(want, nullptr),
            "SELECT pg_catalog.set_config('application_name', 'it''s', false), "
            "pg_catalog.set_config('x.y', E'a\\\\b', false);");
  // A name sluice would never accept is still only ever a literal, never SQL text.
  SettingsPtr odd = make_settings({{"a'; drop table t; --", "v"}});
  EXPECT_EQ(settings_sync_sql(odd, nullptr),
            "SELECT pg_catalog.set_config('a''; drop table t; --', 'v', false);");
  // RESET takes a bare name, so an invalid one is never spliced in.
  EXPECT_EQ(settings_sync_sql(nullptr, odd).find("drop"), std::string::npos);
}

TEST(SettingsSync, EmptyValueIsStillAValue) {
  SettingsPtr want = make_settings({{"search_path", ""}});
  EXPECT_EQ(settings_sync_sql(want, nullptr),
            "SELECT pg_catalog.set_config('search_path', '', false);");
  EXPECT_EQ(settings_sync_sql(want, make_settings({{"search_path", "x"}})),
            "SELECT pg_catalog.set_config('search_path', '', false);");
}

TEST(SettingName, Validity) {
  for (const char* ok : {"a", "search_path", "DateStyle", "my_ext.opt_1", "x.y.z"}) {
    EXPECT_TRUE(valid_setting_name(ok)) << ok;
  }
  for (const char* bad : {"", "a b", "a-b", "a;b", "a'b", "a\"b", "a(b)", "é"}) {
    EXPECT_FALSE(valid_setting_name(bad)) << bad;
  }
  EXPECT_TRUE(valid_setting_name(std::string(128, 'a')));
  EXPECT_FALSE(valid_setting_name(std::string(129, 'a')));
  EXPECT_FALSE(valid_setting_name(std::string_view("a\0b", 3)));
}

TEST(SessionProbe, AsksOnlyWhatIsNeeded) {
  EXPECT_EQ(session_probe_sql(false, false, "app"), "");
  std::string s = session_probe_sql(true, false, "app");
  EXPECT_NE(s.find("pg_settings"), std::string::npos);
  EXPECT_EQ(s.find("pg_locks"), std::string::npos);
  std::string t = session_probe_sql(false, true, "app");
  EXPECT_EQ(t.find("pg_settings"), std::string::npos);
  for (const char* part :
       {"pg_locks", "advisory", "pg_listening_channels", "pg_my_temp_schema", "is_holdable"}) {
    EXPECT_NE(t.find(part), std::string::npos) << part;
  }
  EXPECT_EQ(session_probe_sql(true, true, "app"), s + t) << "result set 1 settings, then state";
}

// role and session_authorization are hidden from pg_settings: the settings read-back asks for
// them in the same result set, the session user only when it is not the login user.
TEST(SessionProbe, ReadsTheRoleStateToo) {
  std::string s = session_probe_sql(true, false, "it's");
  EXPECT_NE(s.find("SELECT 'role', pg_catalog.current_setting('role')"), std::string::npos) << s;
  EXPECT_NE(s.find("SELECT 'session_authorization', session_user"), std::string::npos) << s;
  EXPECT_NE(s.find("OPERATOR(pg_catalog.<>) 'it''s';"), std::string::npos)
      << "the login user is a literal: " << s;
  EXPECT_EQ(std::count(s.begin(), s.end(), ';'), 1) << "one statement, one result set: " << s;
}

TEST(SessionProbe, AsksForCustomSettingsByName) {
  std::string s = session_probe_sql(true, false, "app", {"app.tenant", "x.it's"});
  EXPECT_NE(s.find(" UNION ALL SELECT 'app.tenant', pg_catalog.current_setting('app.tenant', "
                   "true) WHERE pg_catalog.current_setting('app.tenant', true) "
                   "OPERATOR(pg_catalog.<>) ''"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("'x.it''s'"), std::string::npos) << "names are literals: " << s;
  EXPECT_EQ(std::count(s.begin(), s.end(), ';'), 1) << "still one result set: " << s;
  EXPECT_EQ(session_probe_sql(false, true, "app", {"app.tenant"}).find("app.tenant"),
            std::string::npos);
}

TEST(SettingsSync, RoleStateAloneIsSetAfterTheSettings) {
  SettingsPtr want = make_settings({{"role", "tenant_a"}, {"work_mem", "8MB"}});
  EXPECT_EQ(settings_sync_sql(want, nullptr),
            "SELECT pg_catalog.set_config('work_mem', '8MB', false);"
            "SELECT pg_catalog.set_config('role', 'tenant_a', false);");
  // Only the role differs: back to the login identity, then the role.
  SettingsPtr have = make_settings({{"role", "tenant_b"}, {"work_mem", "8MB"}});
  EXPECT_EQ(settings_sync_sql(want, have),
            "RESET ROLE;SELECT pg_catalog.set_config('role', 'tenant_a', false);");
  // The next client has none: RESET ROLE before its own settings are made.
  EXPECT_EQ(settings_sync_sql(make_settings({{"search_path", "s"}}), have),
            "RESET ROLE;RESET work_mem;SELECT pg_catalog.set_config('search_path', 's', false);");
  EXPECT_EQ(settings_sync_sql(nullptr, make_settings({{"role", "x"}})), "RESET ROLE;");
  // Same role, other settings: the settings are changed as the login identity, then the role is
  // taken again (SettingsChangeAsTheLoginIdentity).
  EXPECT_EQ(settings_sync_sql(make_settings({{"role", "tenant_b"}}), have),
            "RESET ROLE;RESET work_mem;SELECT pg_catalog.set_config('role', 'tenant_b', false);");
}

TEST(SettingsSync, SessionAuthorizationBeforeRole) {
  SettingsPtr want = make_settings({{"session_authorization", "u1"}, {"role", "r1"}});
  EXPECT_EQ(settings_sync_sql(want, nullptr),
            "SELECT pg_catalog.set_config('session_authorization', 'u1', false);"
            "SELECT pg_catalog.set_config('role', 'r1', false);");
  // Another session user with the same role: SET SESSION AUTHORIZATION ends the role, so the
  // role is set again after it.
  SettingsPtr have = make_settings({{"session_authorization", "u2"}, {"role", "r1"}});
  EXPECT_EQ(settings_sync_sql(want, have),
            "RESET SESSION AUTHORIZATION;"
            "SELECT pg_catalog.set_config('session_authorization', 'u1', false);"
            "SELECT pg_catalog.set_config('role', 'r1', false);");
  // To nothing: one RESET SESSION AUTHORIZATION ends both.
  EXPECT_EQ(settings_sync_sql(nullptr, have), "RESET SESSION AUTHORIZATION;");
  // Values are literals, never SQL text.
  SettingsPtr odd = make_settings({{"role", "a'; drop role x; --"}});
  EXPECT_EQ(settings_sync_sql(odd, nullptr),
            "SELECT pg_catalog.set_config('role', 'a''; drop role x; --', false);");
}

}  // namespace
}  // namespace sluice::pool
