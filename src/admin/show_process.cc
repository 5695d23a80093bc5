// SHOW dispatch and the process-wide items: HELP, VERSION, CONFIG, STATE, DNS_HOSTS and the
// empty lists of features sluice does not have (PEERS, PEER_POOLS, MEM, DNS_ZONES).
#include "admin/command.h"
#include "admin/console.h"
#include "admin/result_set.h"

namespace sluice::admin {

Status Console::show(Request& r, std::string_view args) {
  std::string_view rest = args;
  std::string item = lower(next_word(rest));
  if (!rest.empty()) {
    write_error(r.out, "invalid command 'SHOW " + std::string(args) + "', use SHOW HELP;");
    return Status::Error;
  }
  if (item == "help") return show_help(r);
  if (item == "version") return show_version(r);
  if (item == "config") return show_config(r);
  if (item == "state") return show_state(r);
  if (item == "pools") return show_pools(r);
  if (item == "databases") return show_databases(r);
  if (item == "users") return show_users(r);
  if (item == "stats" || item == "stats_totals" || item == "stats_averages") {
    return show_stats(r, item);
  }
  if (item == "totals") return show_totals(r);
  if (item == "clients" || item == "servers" || item == "sockets" || item == "active_sockets") {
    return show_sockets(r, item);
  }
  if (item == "lists") return show_lists(r);
  if (item == "pins") return show_pins(r);
  if (item == "dns_hosts") return show_dns_hosts(r);
  if (item == "peers" || item == "peer_pools" || item == "mem" || item == "dns_zones" ||
      item == "fds") {
    return show_empty(r, item);
  }
  write_error(r.out, "invalid command 'SHOW " + std::string(args) + "', use SHOW HELP;");
  return Status::Error;
}

Status Console::show_help(Request& r) {
  write_notice(r.out, "Console usage",
               "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n"
               "\tSHOW SOCKETS|ACTIVE_SOCKETS|LISTS|STATE|PINS\n"
               "\tSHOW DNS_HOSTS|DNS_ZONES\n"
               "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n"
               "\tSET key = arg\n"
               "\tRELOAD\n"
               "\tPAUSE [<db>]\n"
               "\tRESUME [<db>]\n"
               "\tDISABLE <db>\n"
               "\tENABLE <db>\n"
               "\tRECONNECT [<db>]\n"
               "\tKILL [<db>]\n"
               "\tKILL_CLIENT <client_id>\n"
               "\tSUSPEND\n"
               "\tSHUTDOWN\n"
               "\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS\n"
               "\tWAIT_CLOSE [<db>]\n"
               "\tSWITCHOVER <db> TO 'host=... port=...' [TIMEOUT <seconds>]");
  write_complete(r.out, "SHOW");
  return Status::Ok;
}

Status Console::show_version(Request& r) {
  ResultSet rs;
  rs.column("version");
  rs.row({version_string()});
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

Status Console::show_config(Request& r) {
  ResultSet rs;
  for (const char* n : {"key", "value", "default", "changeable"})
    rs.column(n);
  for (const auto& row : config::describe(*control_.config())) {
    rs.row({row.key, row.value, row.default_value, std::string(row.changeable ? "yes" : "no")});
  }
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

Status Console::show_state(Request& r) {
  bool paused = shared_.pools->paused({});
  bool suspended = shared_.pools->suspended();
  ResultSet rs;
  rs.column("key");
  rs.column("value");
  auto yes = [](bool b) { return std::string(b ? "yes" : "no"); };
  rs.row({std::string("active"), yes(!paused && !suspended)});
  rs.row({std::string("paused"), yes(paused)});
  rs.row({std::string("suspended"), yes(suspended)});
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

// The resolver's cache: each name, the seconds until it is looked up again (0: at the next
// connect), its addresses (empty when the lookup failed).
Status Console::show_dns_hosts(Request& r) {
  using T = ResultSet::Type;
  ResultSet rs;
  rs.column("hostname");
  rs.column("ttl", T::Int8);
  rs.column("addrs");
  if (shared_.resolver != nullptr) {
    for (auto& row : shared_.resolver->hosts())
      rs.row({row.host, std::to_string(row.ttl_seconds), row.addrs});
  }
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

Status Console::show_empty(Request& r, std::string_view what) {
  using T = ResultSet::Type;
  ResultSet rs;
  if (what == "peers") {
    rs.column("peer_id", T::Int4);
    rs.column("host");
    rs.column("port", T::Int4);
    rs.column("pool_size", T::Int4);
  } else if (what == "peer_pools") {
    for (const char* n : {"peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req",
                          "sv_active_cancel", "sv_login"}) {
      rs.column(n, T::Int4);
    }
  } else if (what == "mem") {
    rs.column("name");
    for (const char* n : {"size", "used", "free", "memtotal"})
      rs.column(n, T::Int4);
  } else if (what == "dns_zones") {  // dns_zone_check_period is not supported
    rs.column("zonename");
    rs.column("serial", T::Int8);
    rs.column("count", T::Int4);
  } else {  // fds: no socket passing (no online restart)
    rs.column("fd", T::Int4);
    for (const char* n : {"task", "user", "database", "addr"})
      rs.column(n);
    rs.column("port", T::Int4);
    rs.column("cancel", T::Int8);
    rs.column("link", T::Int4);
  }
  rs.write(r.out, "SHOW");
  return Status::Ok;
}

}  // namespace sluice::admin
