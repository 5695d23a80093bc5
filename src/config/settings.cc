// The table of [pgbouncer] settings: names, types, bounds, run-time changeability.
#include "config/settings.h"

#include <algorithm>
#include <array>
#include <limits>
#include <type_traits>
#include <variant>

#include "config/unsupported.h"
#include "config/values.h"

namespace sluice::config {

namespace {

using Field = std::variant<int Settings::*, std::uint32_t Settings::*, bool Settings::*,
                           core::Micros Settings::*, std::string Settings::*,
                           std::vector<std::string> Settings::*, PoolMode Settings::*,
                           AuthType Settings::*, SslMode Settings::*>;

enum class Format : std::uint8_t { Plain, Octal, AddressList };

struct SettingDef {
  std::string_view name;
  Field field;
  bool changeable = true;
  std::int64_t min = 0;  // for numbers; times in microseconds
  std::int64_t max = std::numeric_limits<int>::max();
  Format format = Format::Plain;
  // Numbers above this (but within max) are taken as this, with a warning: values PgBouncer's
  // parser accepts but that mean nothing more on the wire. 0: no cap.
  std::int64_t cap = 0;
};

constexpr bool kFixed = false;  // cannot change at run time
constexpr std::int64_t kTimeMax = std::numeric_limits<core::Micros>::max();
constexpr std::int64_t kUint32Max = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t kInt32Max = std::numeric_limits<std::int32_t>::max();

// Sorted by name, which is also SHOW CONFIG's order.
const std::array kSettings = {
    SettingDef{"admin_users", &Settings::admin_users},
    SettingDef{"affinity_wait", &Settings::affinity_wait, true, 0, kTimeMax},
    SettingDef{"auth_dbname", &Settings::auth_dbname},
    SettingDef{"auth_file", &Settings::auth_file},
    SettingDef{"auth_hba_file", &Settings::auth_hba_file},
    SettingDef{"auth_ident_file", &Settings::auth_ident_file},
    SettingDef{"auth_query", &Settings::auth_query},
    SettingDef{"auth_type", &Settings::auth_type},
    SettingDef{"auth_user", &Settings::auth_user},
    SettingDef{"autodb_idle_timeout", &Settings::autodb_idle_timeout, true, 0, kTimeMax},
    SettingDef{"cancel_rate_limit", &Settings::cancel_rate_limit},
    SettingDef{"cancel_wait_timeout", &Settings::cancel_wait_timeout, true, 0, kTimeMax},
    SettingDef{"client_idle_timeout", &Settings::client_idle_timeout, true, 0, kTimeMax},
    SettingDef{"client_login_timeout", &Settings::client_login_timeout, true, 0, kTimeMax},
    SettingDef{"client_tls13_ciphers", &Settings::client_tls13_ciphers},
    SettingDef{"client_tls_ca_file", &Settings::client_tls_ca_file},
    SettingDef{"client_tls_cert_file", &Settings::client_tls_cert_file},
    SettingDef{"client_tls_ciphers", &Settings::client_tls_ciphers},
    SettingDef{"client_tls_key_file", &Settings::client_tls_key_file},
    SettingDef{"client_tls_protocols", &Settings::client_tls_protocols},
    SettingDef{"client_tls_sslmode", &Settings::client_tls_sslmode},
    SettingDef{"default_pool_size", &Settings::default_pool_size},
    SettingDef{"dns_max_ttl", &Settings::dns_max_ttl, true, 0, kTimeMax},
    SettingDef{"dns_nameserver", &Settings::dns_nameserver},
    SettingDef{"dns_nxdomain_ttl", &Settings::dns_nxdomain_ttl, true, 0, kTimeMax},
    SettingDef{"idle_transaction_timeout", &Settings::idle_transaction_timeout, true, 0, kTimeMax},
    SettingDef{"ignore_startup_parameters", &Settings::ignore_startup_parameters},
    SettingDef{"listen_addr", &Settings::listen_addr, kFixed, 0, 0, Format::AddressList},
    SettingDef{"listen_backlog", &Settings::listen_backlog, kFixed},
    SettingDef{"listen_port", &Settings::listen_port, kFixed, 0, 65535},
    SettingDef{"log_connections", &Settings::log_connections},
    SettingDef{"log_disconnections", &Settings::log_disconnections},
    SettingDef{"log_json", &Settings::log_json},
    SettingDef{"log_pooler_errors", &Settings::log_pooler_errors},
    SettingDef{"log_stats", &Settings::log_stats},
    SettingDef{"logfile", &Settings::logfile, kFixed},
    SettingDef{"max_client_conn", &Settings::max_client_conn},
    SettingDef{"max_db_client_connections", &Settings::max_db_client_connections},
    SettingDef{"max_db_connections", &Settings::max_db_connections},
    // A length word is a signed 32-bit integer: PgBouncer's default, 2147483647, is the most
    // that means anything (PostgreSQL itself takes at most 1 GiB; see proto/frame.h).
    SettingDef{"max_packet_size", &Settings::max_packet_size, true, 1, kUint32Max, Format::Plain,
               kInt32Max},
    SettingDef{"max_pinned_servers", &Settings::max_pinned_servers},
    SettingDef{"max_prepared_statements", &Settings::max_prepared_statements},
    SettingDef{"max_user_client_connections", &Settings::max_user_client_connections},
    SettingDef{"max_user_connections", &Settings::max_user_connections},
    SettingDef{"metrics_listen_addr", &Settings::metrics_listen_addr, kFixed, 0, 0,
               Format::AddressList},
    SettingDef{"metrics_listen_port", &Settings::metrics_listen_port, kFixed, 0, 65535},
    SettingDef{"min_pool_size", &Settings::min_pool_size},
    SettingDef{"pidfile", &Settings::pidfile, kFixed},
    SettingDef{"pinned_idle_timeout", &Settings::pinned_idle_timeout, true, 0, kTimeMax},
    SettingDef{"pkt_buf", &Settings::pkt_buf, kFixed, 512, kUint32Max},
    SettingDef{"pool_mode", &Settings::pool_mode},
    SettingDef{"query_timeout", &Settings::query_timeout, true, 0, kTimeMax},
    SettingDef{"query_wait_timeout", &Settings::query_wait_timeout, true, 0, kTimeMax},
    SettingDef{"query_wait_notify", &Settings::query_wait_notify, true, 0, kTimeMax},
    SettingDef{"reserve_pool_size", &Settings::reserve_pool_size},
    SettingDef{"reserve_pool_timeout", &Settings::reserve_pool_timeout, true, 0, kTimeMax},
    SettingDef{"resolv_conf", &Settings::resolv_conf, kFixed},
    SettingDef{"server_check_delay", &Settings::server_check_delay, true, 0, kTimeMax},
    SettingDef{"server_check_query", &Settings::server_check_query},
    SettingDef{"server_connect_timeout", &Settings::server_connect_timeout, true, 0, kTimeMax},
    SettingDef{"server_idle_timeout", &Settings::server_idle_timeout, true, 0, kTimeMax},
    SettingDef{"server_lifetime", &Settings::server_lifetime, true, 0, kTimeMax},
    SettingDef{"server_login_retry", &Settings::server_login_retry, true, 0, kTimeMax},
    SettingDef{"server_reset_query", &Settings::server_reset_query},
    SettingDef{"server_reset_query_always", &Settings::server_reset_query_always},
    SettingDef{"server_fast_close", &Settings::server_fast_close},
    SettingDef{"server_round_robin", &Settings::server_round_robin},
    SettingDef{"server_tls13_ciphers", &Settings::server_tls13_ciphers},
    SettingDef{"server_tls_ca_file", &Settings::server_tls_ca_file},
    SettingDef{"server_tls_cert_file", &Settings::server_tls_cert_file},
    SettingDef{"server_tls_ciphers", &Settings::server_tls_ciphers},
    SettingDef{"server_tls_key_file", &Settings::server_tls_key_file},
    SettingDef{"server_tls_protocols", &Settings::server_tls_protocols},
    SettingDef{"server_tls_sslmode", &Settings::server_tls_sslmode},
    SettingDef{"so_reuseport", &Settings::so_reuseport, kFixed},
    SettingDef{"stats_period", &Settings::stats_period, true, core::kMicrosPerSecond, kTimeMax},
    SettingDef{"stats_users", &Settings::stats_users},
    SettingDef{"switchover_timeout", &Settings::switchover_timeout, true, 1, kTimeMax},
    SettingDef{"tcp_keepalive", &Settings::tcp_keepalive},
    SettingDef{"tcp_keepcnt", &Settings::tcp_keepcnt},
    SettingDef{"tcp_keepidle", &Settings::tcp_keepidle},
    SettingDef{"tcp_keepintvl", &Settings::tcp_keepintvl},
    SettingDef{"tcp_socket_buffer", &Settings::tcp_socket_buffer},
    SettingDef{"tcp_user_timeout", &Settings::tcp_user_timeout},  // milliseconds
    SettingDef{"track_extra_parameters", &Settings::track_extra_parameters, kFixed},
    SettingDef{"track_session_state", &Settings::track_session_state},
    SettingDef{"transaction_timeout", &Settings::transaction_timeout, true, 0, kTimeMax},
    SettingDef{"unix_socket_dir", &Settings::unix_socket_dir, kFixed},
    SettingDef{"unix_socket_mode", &Settings::unix_socket_mode, kFixed, 0, 07777, Format::Octal},
    SettingDef{"verbose", &Settings::verbose},
    SettingDef{"workers", &Settings::workers, kFixed, 0, 1024},
};

const SettingDef* find_def(std::string_view name) {
  auto it = std::find_if(kSettings.begin(), kSettings.end(),
                         [&](const SettingDef& d) { return d.name == name; });
  return it == kSettings.end() ? nullptr : &*it;
}

bool in_range(const SettingDef& def, std::int64_t v) {
  return v >= def.min && v <= def.max;
}

// Parses `text` into the field of `s` named by def; false (s unchanged) if the text is bad.
bool set_field(Settings& s, const SettingDef& def, std::string_view text) {
  return std::visit(
      [&](auto member) -> bool {
        using T = std::remove_reference_t<decltype(s.*member)>;
        T& dst = s.*member;
        if constexpr (std::is_same_v<T, bool>) {
          auto v = parse_bool(text);
          if (v) dst = *v;
          return v.has_value();
        } else if constexpr (std::is_same_v<T, core::Micros>) {
          auto v = parse_seconds(text);
          if (!v || !in_range(def, *v)) return false;
          dst = *v;
          return true;
        } else if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::uint32_t>) {
          auto v = parse_int(text);
          if (!v || !in_range(def, *v)) return false;
          dst = static_cast<T>(*v);
          return true;
        } else if constexpr (std::is_same_v<T, std::string>) {
          dst = def.format == Format::AddressList ? join_list(split_list(text)) : std::string(text);
          return true;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          dst = split_list(text);
          return true;
        } else if constexpr (std::is_same_v<T, PoolMode>) {
          auto v = parse_pool_mode(text);
          if (v) dst = *v;
          return v.has_value();
        } else if constexpr (std::is_same_v<T, SslMode>) {
          auto v = parse_ssl_mode(text);
          if (v) dst = *v;
          return v.has_value();
        } else {
          static_assert(std::is_same_v<T, AuthType>);
          auto v = parse_auth_type(text);
          if (v) dst = *v;
          return v.has_value();
        }
      },
      def.field);
}

std::string octal(int v) {
  std::string digits;
  auto u = static_cast<unsigned>(v);
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + (u & 7u)));
    u >>= 3;
  } while (u != 0);
  return digits == "0" ? digits : "0" + digits;
}

std::string format_field(const Settings& s, const SettingDef& def) {
  return std::visit(
      [&](auto member) -> std::string {
        using T = std::remove_cv_t<std::remove_reference_t<decltype(s.*member)>>;
        const T& v = s.*member;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "1" : "0";
        } else if constexpr (std::is_same_v<T, core::Micros>) {
          return format_seconds(v);
        } else if constexpr (std::is_same_v<T, int>) {
          return def.format == Format::Octal ? octal(v) : std::to_string(v);
        } else if constexpr (std::is_same_v<T, std::uint32_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return join_list(v);
        } else {
          return std::string(to_string(v));
        }
      },
      def.field);
}

void warn_if_unsupported(Config& cfg, std::string_view name, std::string_view value,
                         std::string_view location) {
  const UnsupportedSetting* u = find_unsupported(name);
  if (u == nullptr || !changes_behaviour(*u, value)) return;
  std::string w = std::string(location) + "unsupported setting ignored: " + std::string(name);
  if (std::find(cfg.warnings.begin(), cfg.warnings.end(), w) == cfg.warnings.end()) {
    cfg.warnings.push_back(std::move(w));
  }
}

// A number above the setting's cap is taken as the cap (see SettingDef::cap).
void apply_cap(Config& cfg, const SettingDef& def, std::string_view location) {
  std::visit(
      [&](auto member) {
        using T = std::remove_reference_t<decltype(cfg.settings.*member)>;
        if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::uint32_t>) {
          T& v = cfg.settings.*member;
          if (static_cast<std::int64_t>(v) <= def.cap) return;
          v = static_cast<T>(def.cap);
          std::string w = std::string(location) + std::string(def.name) + " above " +
                          std::to_string(def.cap) + " is taken as " + std::to_string(def.cap);
          if (std::find(cfg.warnings.begin(), cfg.warnings.end(), w) == cfg.warnings.end()) {
            cfg.warnings.push_back(std::move(w));
          }
        }
      },
      def.field);
}

}  // namespace

SettingStatus apply_setting(Config& cfg, std::string_view name, std::string_view value,
                            std::string_view location) {
  if (const SettingDef* def = find_def(name)) {
    if (!set_field(cfg.settings, *def, value)) return SettingStatus::Invalid;
    if (def->cap != 0) apply_cap(cfg, *def, location);
  } else if (find_unsupported(name) != nullptr) {
    cfg.unsupported_values.insert_or_assign(std::string(name), std::string(value));
  } else {
    return SettingStatus::Unknown;
  }
  warn_if_unsupported(cfg, name, value, location);
  return SettingStatus::Ok;
}

bool is_known_setting(std::string_view name) {
  return find_def(name) != nullptr || find_unsupported(name) != nullptr;
}

bool is_changeable(std::string_view name) {
  if (const SettingDef* def = find_def(name)) return def->changeable;
  if (const UnsupportedSetting* u = find_unsupported(name)) return u->changeable;
  return false;
}

std::vector<SettingRow> describe(const Config& cfg) {
  static const Settings kDefaults{};
  std::vector<SettingRow> rows;
  rows.reserve(kSettings.size() + unsupported_settings().size());
  for (const SettingDef& def : kSettings) {
    rows.push_back(SettingRow{std::string(def.name), format_field(cfg.settings, def),
                              format_field(kDefaults, def), def.changeable});
  }
  for (const UnsupportedSetting& u : unsupported_settings()) {
    if (find_def(u.name) != nullptr) continue;
    const std::string def_value(neutral_default(u));
    auto it = cfg.unsupported_values.find(u.name);
    rows.push_back(SettingRow{std::string(u.name),
                              it == cfg.unsupported_values.end() ? def_value : it->second,
                              def_value, u.changeable});
  }
  std::sort(rows.begin(), rows.end(),
            [](const SettingRow& a, const SettingRow& b) { return a.key < b.key; });
  return rows;
}

}  // namespace sluice::config
