// The one list of PgBouncer settings sluice accepts but does not act on yet.
#include "config/unsupported.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "config/values.h"

namespace sluice::config {

namespace {

// Sorted by name. Where the neutral value differs from PgBouncer's default, the comment says so.
constexpr std::array kUnsupported = {
    UnsupportedSetting{"application_name_add_host", "0", true},
    UnsupportedSetting{"auth_ldap_options", "", true},
    // Has a field; pam and ldap are parsed but not implemented.
    UnsupportedSetting{"auth_type", "md5,trust,any,plain,scram-sha-256,cert,hba", true},
    UnsupportedSetting{"client_tls_dheparams", "auto", true},
    UnsupportedSetting{"client_tls_ecdhcurve", "auto", true},
    UnsupportedSetting{"conffile", "", true},
    UnsupportedSetting{"disable_pqexec", "0", false},
    UnsupportedSetting{"dns_zone_check_period", "0", true},
    UnsupportedSetting{"job_name", "pgbouncer", false},
    UnsupportedSetting{"peer_id", "0", true},
    UnsupportedSetting{"sbuf_loopcnt", "5", true},
    UnsupportedSetting{"scram_iterations", "4096", true},
    UnsupportedSetting{"service_name", "pgbouncer", false},
    UnsupportedSetting{"suspend_timeout", "10", true},
    UnsupportedSetting{"syslog", "0", true},
    UnsupportedSetting{"syslog_facility", "daemon", true},
    UnsupportedSetting{"syslog_ident", "pgbouncer", true},
    UnsupportedSetting{"tcp_defer_accept", "0", true},  // PgBouncer on Linux: 1
    UnsupportedSetting{"unix_socket_group", "", false},
    UnsupportedSetting{"user", "", false},
};

constexpr std::array<std::string_view, 0> kUnsupportedDatabaseKeys = {};

bool same_number(std::string_view a, std::string_view b) {
  double x = 0;
  double y = 0;
  auto ra = std::from_chars(a.data(), a.data() + a.size(), x);
  auto rb = std::from_chars(b.data(), b.data() + b.size(), y);
  return ra.ec == std::errc() && ra.ptr == a.data() + a.size() && rb.ec == std::errc() &&
         rb.ptr == b.data() + b.size() && x == y;
}

}  // namespace

std::span<const UnsupportedSetting> unsupported_settings() {
  return kUnsupported;
}

const UnsupportedSetting* find_unsupported(std::string_view name) {
  auto it = std::find_if(kUnsupported.begin(), kUnsupported.end(),
                         [&](const UnsupportedSetting& s) { return s.name == name; });
  return it == kUnsupported.end() ? nullptr : &*it;
}

std::string_view neutral_default(const UnsupportedSetting& s) {
  return s.neutral.substr(0, s.neutral.find(','));
}

bool changes_behaviour(const UnsupportedSetting& s, std::string_view value) {
  value = trim(value);
  std::string_view rest = s.neutral;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    if (iequals(item, value) || same_number(item, value)) return false;
    if (comma == std::string_view::npos) return true;
    rest.remove_prefix(comma + 1);
  }
}

bool is_unsupported_database_key(std::string_view key) {
  return std::find(kUnsupportedDatabaseKeys.begin(), kUnsupportedDatabaseKeys.end(), key) !=
         kUnsupportedDatabaseKeys.end();
}

}  // namespace sluice::config
