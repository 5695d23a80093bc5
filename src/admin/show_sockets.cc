// SHOW CLIENTS, SERVERS, SOCKETS, ACTIVE_SOCKETS and LISTS: rows built by each worker from its
// own connections (fanout.h), merged and ordered by id on the admin client's worker.
#include <sys/socket.h>

#include <algorithm>

#include "admin/command.h"
#include "admin/console.h"
#include "admin/fanout.h"
#include "admin/result_set.h"
#include "net/socket.h"

namespace sluice::admin {
namespace {

using T = ResultSet::Type;
using Cell = std::optional<std::string>;

struct Row {
  std::uint64_t id = 0;
  std::vector<Cell> cells;
};

// "1.2.3.4:5678" / "[::1]:5678" -> host, port.
std::pair<std::string, int> split_addr(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return {std::string(text), 0};
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  for (char ch : text.substr(colon + 1)) {
    if (ch < '0' || ch > '9') return {std::string(text), 0};
    port = port * 10 + (ch - '0');
  }
  return {std::string(host), port};
}

std::pair<std::string, int> local_of(int fd, int unix_port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {"", 0};
  if (ss.ss_family == AF_UNIX) return {"unix", unix_port};
  return split_addr(net::format_peer(ss, len));
}

int peer_pid(int fd) {
#ifdef SO_PEERCRED
  ucred cred{};
  socklen_t len = sizeof cred;
  if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) return cred.pid;
#endif
  return 0;
}

std::string i2s(long long v) {
  return std::to_string(v);
}

// The workers' rows as one list, ordered by `less` (stable: ties keep worker order).
template <typename Less>
std::vector<Row> merge_rows(std::vector<std::vector<Row>> parts, Less less) {
  std::vector<Row> all;
  for (auto& p : parts) {
    for (auto& row : p)
      all.push_back(std::move(row));
  }
  std::stable_sort(all.begin(), all.end(), less);
  return all;
}

void socket_columns(ResultSet& rs, bool debug) {
  for (const char* n : {"type", "user", "database", "replication", "state", "addr"})
    rs.column(n);
  rs.column("port", T::Int4);
  rs.column("local_addr");
  rs.column("local_port", T::Int4);
  rs.column("connect_time");
  rs.column("request_time");
  rs.column("wait", T::Int4);
  rs.column("wait_us", T::Int4);
  rs.column("close_needed", T::Int4);
  rs.column("ptr");
  rs.column("link");
  rs.column("remote_pid", T::Int4);
  rs.column("tls");
  rs.column("application_name");
  rs.column("prepared_statements", T::Int4);
  rs.column("id", T::Int8);
  if (debug) {
    for (const char* n : {"recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain",
                          "pkt_avail", "send_avail"}) {
      rs.column(n, T::Int4);
    }
  }
  rs.column("pinned");  // ours, last: why the client holds its server across transactions
}

// PgBouncer's client states; login clients only in SHOW SOCKETS.
std::string_view client_state(const session::Client& c) {
  switch (c.state) {
    case session::ClientState::Startup:
    case session::ClientState::Auth:
      return "login";
    case session::ClientState::LoginWait:
    case session::ClientState::Waiting:
      return "waiting";
    case session::ClientState::Active:
      return c.server != nullptr ? "active" : "idle";
    case session::ClientState::Idle:
      return "idle";
    case session::ClientState::CancelWait:
      return "active_cancel_req";
    case session::ClientState::Closed:
      return {};
  }
  return {};
}

struct Want {
  bool clients = false;
  bool servers = false;
  bool debug = false;        // SOCKETS: extra columns, login clients, cl_/sv_ state prefixes
  bool active_only = false;  // ACTIVE_SOCKETS: connections with buffered bytes
};

void add_debug(std::vector<Cell>& cells, const net::Stream& io) {
  cells.push_back(i2s(io.in.hi));
  cells.push_back(i2s(io.scan));
  cells.push_back(i2s(0));
  cells.push_back(i2s(io.in.lo));
  cells.push_back(i2s(0));
  cells.push_back(i2s(io.in.size()));
  cells.push_back(i2s(io.out.empty() ? 0 : 1));
}

std::vector<Row> worker_rows(session::SessionWorker& w, const Want& want, int listen_port) {
  std::vector<Row> rows;
  core::Micros now = w.loop().now();
  if (want.clients) {
    w.clients.for_each([&](session::Client& c) {
      std::string_view st = client_state(c);
      if (st.empty() || (st == "login" && !want.debug)) return;
      if (want.active_only && !c.io.in.allocated() && c.io.out.empty()) return;
      auto [addr, port] =
          c.unix_socket ? std::pair<std::string, int>{"unix", listen_port} : split_addr(c.peer);
      auto [laddr, lport] = local_of(c.io.fd, listen_port);
      core::Micros wait = 0;
      if (c.state == session::ClientState::Waiting || c.state == session::ClientState::LoginWait) {
        wait = now - c.wait_since;
      } else if (c.request_start != 0) {
        wait = now - c.request_start;
      }
      Row r;
      r.id = c.id;
      r.cells = {std::string("C"),
                 c.user_name.empty() ? std::string("(nouser)") : c.user_name,
                 c.db_name.empty() ? std::string("(nodb)") : c.db_name,
                 std::string("none"),
                 want.debug ? "cl_" + std::string(st) : std::string(st),
                 addr,
                 i2s(port),
                 laddr,
                 i2s(lport),
                 wall_time_text(c.connected_at, now),
                 wall_time_text(c.last_activity, now),
                 i2s(wait / core::kMicrosPerSecond),
                 i2s(wait % core::kMicrosPerSecond),
                 i2s(0),
                 ptr_text(&c),
                 ptr_text(c.server),
                 i2s(c.unix_socket ? peer_pid(c.io.fd) : 0),
                 c.io.tls ? c.io.tls->describe() : std::string(),
                 c.application_name,
                 i2s(0),
                 i2s(static_cast<long long>(c.id))};
      if (want.debug) add_debug(r.cells, c.io);
      r.cells.push_back(c.pin_reason() != nullptr ? std::string(c.pin_reason()) : std::string());
      rows.push_back(std::move(r));
    });
  }
  if (want.servers) {
    core::Micros check_delay = w.cfg().settings.server_check_delay;
    // States, idle times and targets change under the manager lock (hand-offs, releases on
    // other workers): copy them under it, format outside it.
    struct Seen {
      pool::ServerConn* s;
      std::string state;
      core::Micros idle_since;
      bool stale;
    };
    std::vector<Seen> seen;
    w.pools->with_lock([&] {
      w.servers.for_each([&](pool::ServerConn& s) {
        std::string st;
        switch (s.state) {
          case pool::ServerState::Connecting:
          case pool::ServerState::Login:
            st = "new";
            break;
          case pool::ServerState::Internal:
            st = "tested";
            break;
          case pool::ServerState::Idle:
            st = check_delay > 0 && now - s.idle_since >= check_delay ? "used" : "idle";
            break;
          case pool::ServerState::Active:
            st = s.user != nullptr ? "active" : "idle";
            if (s.cancels_in_flight > 0) st = "being_canceled";
            break;
          default:
            return;  // on its way to another worker or closing
        }
        bool stale = s.close_requested || (s.target && s.pool->target &&
                                           s.target->generation != s.pool->target->generation);
        seen.push_back(
            {&s, std::move(st), s.state == pool::ServerState::Idle ? s.idle_since : 0, stale});
      });
    });
    for (const Seen& v : seen) {
      pool::ServerConn& s = *v.s;
      if (want.active_only && !s.io.in.allocated() && s.io.out.empty()) continue;
      auto* client = dynamic_cast<session::Client*>(s.user);
      auto [addr, port] = split_addr(s.addr_text);
      if (!s.unix_path.empty()) addr = "unix";
      auto [laddr, lport] = split_addr(s.local_text);
      Row r;
      r.id = s.id;
      r.cells = {std::string("S"),
                 s.pool->user_name,
                 s.pool->db_name,
                 std::string("none"),
                 want.debug ? "sv_" + v.state : v.state,
                 addr,
                 i2s(port),
                 laddr,
                 i2s(lport),
                 wall_time_text(s.connected_at != 0 ? s.connected_at : s.created_at, now),
                 wall_time_text(v.idle_since != 0 ? v.idle_since : s.connected_at, now),
                 i2s(0),
                 i2s(0),
                 i2s(v.stale ? 1 : 0),
                 ptr_text(&s),
                 ptr_text(client),
                 i2s(s.backend_pid),
                 s.io.tls ? s.io.tls->describe() : std::string(),
                 client != nullptr ? client->application_name : std::string(),
                 i2s(0),
                 i2s(static_cast<long long>(s.id))};
      if (want.debug) add_debug(r.cells, s.io);
      const char* pin = client != nullptr ? client->pin_reason() : nullptr;
      r.cells.push_back(pin != nullptr ? std::string(pin) : std::string());
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

}  // namespace

Status Console::show_sockets(Request& r, std::string_view which) {
  Want want;
  want.clients = which != "servers";
  want.servers = which != "clients";
  want.debug = which == "sockets" || which == "active_sockets";
  want.active_only = which == "active_sockets";
  int listen_port = control_.config()->settings.listen_port;
  auto finish = r.finish;
  fan_out<std::vector<Row>>(
      shared_.workers, r.client.worker,
      [want, listen_port](session::SessionWorker& w) { return worker_rows(w, want, listen_port); },
      [finish, want](std::vector<std::vector<Row>> parts) {
        // Clients before servers (SOCKETS), each by id.
        std::vector<Row> all = merge_rows(std::move(parts), [](const Row& a, const Row& b) {
          bool as = a.cells[0] == "S";
          bool bs = b.cells[0] == "S";
          return as != bs ? bs : a.id < b.id;
        });
        ResultSet rs;
        socket_columns(rs, want.debug);
        for (auto& row : all)
          rs.row(std::move(row.cells));
        std::string out;
        rs.write(out, "SHOW");
        finish(std::move(out), true);
      });
  return Status::Later;
}

// SHOW PINS: every client that keeps its server across transactions, since when and why.
Status Console::show_pins(Request& r) {
  auto finish = r.finish;
  fan_out<std::vector<Row>>(
      shared_.workers, r.client.worker,
      [](session::SessionWorker& w) {
        std::vector<Row> rows;
        core::Micros now = w.loop().now();
        w.clients.for_each([&](session::Client& c) {
          if (c.state == session::ClientState::Closed || c.pin_reason() == nullptr) return;
          Row row;
          row.id = c.id;
          core::Micros since = c.pinned_since();
          row.cells = {i2s(static_cast<long long>(c.id)),
                       c.user_name,
                       c.db_name,
                       wall_time_text(since, now),
                       i2s((now - since) / core::kMicrosPerSecond),
                       std::string(c.pin_reason()),
                       c.server != nullptr ? i2s(static_cast<long long>(c.server->id))
                                           : std::optional<std::string>()};
          rows.push_back(std::move(row));
        });
        return rows;
      },
      [finish](std::vector<std::vector<Row>> parts) {
        std::vector<Row> all =
            merge_rows(std::move(parts), [](const Row& a, const Row& b) { return a.id < b.id; });
        ResultSet rs;
        rs.column("client_id", T::Int8);
        rs.column("user");
        rs.column("database");
        rs.column("since");
        rs.column("seconds", T::Int8);
        rs.column("reason");
        rs.column("server_id", T::Int8);
        for (auto& row : all)
          rs.row(std::move(row.cells));
        std::string out;
        rs.write(out, "SHOW");
        finish(std::move(out), true);
      });
  return Status::Later;
}

Status Console::show_lists(Request& r) {
  struct Counts {
    int clients = 0, login = 0, servers = 0;
  };
  auto cfg = control_.config();
  int databases = 1;  // the console's own
  for (const auto& d : cfg->databases)
    databases += d.name != "*" ? 1 : 0;
  int users = static_cast<int>(shared_.pools->user_stats().size());
  int pools =
      static_cast<int>(shared_.pools->pool_snapshots(r.client.worker.loop().now()).size()) + 1;
  net::Resolver::Counts dns;
  if (shared_.resolver != nullptr) dns = shared_.resolver->counts();
  auto finish = r.finish;
  fan_out<Counts>(
      shared_.workers, r.client.worker,
      [](session::SessionWorker& w) {
        Counts c;
        w.clients.for_each([&](session::Client& cl) {
          ++c.clients;
          if (cl.state == session::ClientState::Startup || cl.state == session::ClientState::Auth) {
            ++c.login;
          }
        });
        w.servers.for_each([&](pool::ServerConn&) { ++c.servers; });
        return c;
      },
      [finish, databases, users, pools, dns](std::vector<Counts> parts) {
        Counts t;
        for (const auto& p : parts) {
          t.clients += p.clients;
          t.login += p.login;
          t.servers += p.servers;
        }
        ResultSet rs;
        rs.column("list");
        rs.column("items", T::Int4);
        auto item = [&](const char* name, int n) {
          rs.row({std::string(name), std::to_string(n)});
        };
        item("databases", databases);
        item("users", users);
        item("peers", 0);
        item("pools", pools);
        item("peer_pools", 0);
        item("free_clients", 0);
        item("used_clients", t.clients);
        item("login_clients", t.login);
        item("free_servers", 0);
        item("used_servers", t.servers);
        item("dns_names", static_cast<int>(dns.names));
        item("dns_zones", 0);  // dns_zone_check_period is not supported
        item("dns_queries", static_cast<int>(dns.queries));
        item("dns_pending", 0);
        std::string out;
        rs.write(out, "SHOW");
        finish(std::move(out), true);
      });
  return Status::Later;
}

}  // namespace sluice::admin
