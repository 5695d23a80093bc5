// Session state in transaction pooling: what a statement may change, sluice's own queries to
// replay or read it back, pins for state that cannot move (design.md §3).
#include "session/session_tracker.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <utility>

#include "core/log.h"
#include "pool/pool.h"
#include "pool/registries.h"
#include "pool/worker_base.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/frontend.h"
#include "proto/reader.h"
#include "proto/writer.h"

namespace sluice::session {
namespace {

std::string quote_ident(std::string_view s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o.push_back('"');
    o.push_back(c);
  }
  o.push_back('"');
  return o;
}

}  // namespace

void SessionTracker::parameter_status(pool::ServerConn& s, std::string_view name,
                                      std::string_view value) {
  if (tracking_ && (name == "session_authorization" || name == "is_superuser")) {
    // The session user or the role changed, possibly where sluice cannot see it (a function):
    // read the role state back when the transaction is over.
    sess().settings_dirty = true;
  }
  if (s.worker->registries().params.slot(name) < 0) return;
  settings_ = pool::with_setting(settings_, name, value);
  s.settings = pool::with_setting(s.settings, name, value);
}

// The server must know the client's SQL-level prepared statement `name` before EXECUTE or
// DEALLOCATE reaches it: replay the client's PREPARE where it is missing or different.
void SessionTracker::ensure_sql_prepared(TrackerHost& host, pool::ServerConn& s,
                                         const std::string& name) {
  ClientSession& ss = sess();
  if (!s.sql_prepared)
    s.sql_prepared = std::make_unique<std::unordered_map<std::string, std::string>>();
  auto it = ss.sql_prepared.find(name);
  if (it == ss.sql_prepared.end()) {
    // Not this client's: if another client left one of that name here, it must not run it
    // (I2); drop it so that the server answers "does not exist" as it would directly.
    if (s.sql_prepared->erase(name) != 0) host.tracker_inject("DEALLOCATE " + quote_ident(name));
    return;
  }
  auto have = s.sql_prepared->find(name);
  if (have != s.sql_prepared->end() && have->second == it->second) return;
  if (have != s.sql_prepared->end()) host.tracker_inject("DEALLOCATE " + quote_ident(name));
  host.tracker_inject(it->second);
  (*s.sql_prepared)[name] = it->second;
}

SessionTracker::Verdict SessionTracker::apply_effects(TrackerHost& host, pool::ServerConn& s,
                                                      const sql::Effects& e, std::string& refusal) {
  if (e.parse_error) return Verdict::Go;  // the server refuses it itself
  ClientSession& ss = sess();
  if (e.pin_reason != nullptr && !ss.pin_counted) {
    if (!host.tracker_try_pin()) {
      refusal = std::string("too many pinned connections in this pool: cannot keep a server for ") +
                e.pin_reason + " (max_pinned_servers)";
      return Verdict::Refused;
    }
    ss.pin_counted = true;  // held from now; given back if the state does not appear
  }
  note_effects(e);
  std::uint64_t seq = ss.rfq_sent + 1;  // the request these statements belong to
  for (const auto& op : e.prepared_ops) {
    switch (op.op) {
      case sql::Effects::Op::Prepare:
        if (ss.sql_prepared.count(op.name) != 0) {
          // The client has one of that name: the server must have it too, so that it refuses
          // this PREPARE ("already exists") as a direct connection would.
          ensure_sql_prepared(host, s, op.name);
        } else if (s.sql_prepared && s.sql_prepared->count(op.name) != 0) {
          // Left by another client: make room for this one's.
          host.tracker_inject("DEALLOCATE " + quote_ident(op.name));
          s.sql_prepared->erase(op.name);
        }
        break;
      case sql::Effects::Op::Deallocate:
        ensure_sql_prepared(host, s, op.name);
        break;
      default:
        break;
    }
    ss.pending_ops.push_back({seq, op.op, op.name, op.text});
  }
  for (const auto& name : e.executes) {
    ensure_sql_prepared(host, s, name);
    // EXECUTE runs what the PREPARE said (set_config('role', $1, false), say): its effects.
    if (auto it = ss.sql_prepared.find(name); it != ss.sql_prepared.end()) {
      if (auto pe = sql::effects_of(it->second)) note_effects(*pe);
    }
  }
  return Verdict::Go;
}

// A Query or Parse whose text is too large to inspect (over Client::kMaxWholeMessage: it
// streams): it may have changed anything, so after its transaction the settings are read back
// and the server probed (what the client set stays the client's, what cannot move pins), and
// the server is not shared again (custom settings and SQL prepared statements are beyond what
// sluice can read back by name): closed when released.
void SessionTracker::mark_uninspected() {
  ClientSession& ss = sess();
  ss.settings_dirty = ss.state_check = ss.uninspected = true;
}

void SessionTracker::note_effects(const sql::Effects& e) {
  ClientSession& ss = sess();
  if (e.settings) ss.settings_dirty = true;
  if (e.state || e.pin_reason != nullptr || e.load) ss.state_check = true;
  for (const auto& name : e.custom_settings) {
    auto& known = ss.custom_settings;
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    if (known.size() >= ClientSession::kMaxCustomSettings) {
      ss.custom_overflow = true;
    } else {
      known.push_back(name);
    }
  }
}

// The transaction state ends up exactly as if the statement had failed on the server.
void SessionTracker::write_refusal(pool::ServerConn& s, char type, std::string_view body,
                                   const std::string& why) {
  std::string sql =
      "DO $sluice$BEGIN RAISE EXCEPTION '" + why + "' USING ERRCODE = '53300'; END$sluice$";
  std::size_t mark = s.io.out.synth_mark();
  if (type == proto::fe::kQuery) {
    proto::write_query(s.io.out.synth(), sql);
  } else {  // Parse: same name and parameter types, the raising text
    auto parse = proto::ParseView::decode(body);  // handle_parse decoded it already
    proto::MessageWriter(s.io.out.synth())
        .begin(proto::fe::kParse)
        .cstring(parse ? parse->name : std::string_view())
        .cstring(sql)
        .bytes(parse ? parse->param_types : std::string_view("\0\0", 2))
        .finish();
  }
  (void)s.io.out.commit_synth(mark);
  if (type == proto::fe::kQuery) ++sess().rfq_sent;
}

void SessionTracker::on_command_tag(pool::ServerConn& s, std::string_view tag) {
  ClientSession& ss = *sess_;
  auto take = [&](sql::Effects::Op want) -> std::optional<ClientSession::PendingOp> {
    while (!ss.pending_ops.empty()) {
      ClientSession::PendingOp op = std::move(ss.pending_ops.front());
      ss.pending_ops.pop_front();
      if (op.op == want) return op;
    }
    return std::nullopt;
  };
  if (tag == "DEALLOCATE ALL" || tag == "DISCARD ALL") {
    // Every prepared statement of this server is gone, protocol-level ones included.
    ss.statements.clear();
    ss.statement_effects.clear();
    ss.sql_prepared.clear();
    if (s.statements) s.statements->clear();
    if (s.sql_prepared) s.sql_prepared->clear();
    (void)take(tag == "DISCARD ALL" ? sql::Effects::Op::DiscardAll
                                    : sql::Effects::Op::DeallocateAll);
  } else if (tag == "PREPARE") {
    if (auto op = take(sql::Effects::Op::Prepare)) {
      ss.sql_prepared[op->name] = op->text;
      if (!s.sql_prepared)
        s.sql_prepared = std::make_unique<std::unordered_map<std::string, std::string>>();
      (*s.sql_prepared)[op->name] = op->text;
    }
  } else if (tag == "DEALLOCATE") {
    if (auto op = take(sql::Effects::Op::Deallocate)) {
      ss.sql_prepared.erase(op->name);
      if (s.sql_prepared) s.sql_prepared->erase(op->name);
    }
  } else if (tag == "LOAD") {
    ss.loaded = true;
    ss.state_check = true;
  }
}

void SessionTracker::request_done() {
  ClientSession& ss = *sess_;
  ++ss.rfq_done;
  while (!ss.pending_ops.empty() && ss.pending_ops.front().rfq_seq <= ss.rfq_done) {
    ss.pending_ops.pop_front();  // their request ended before their tag: failed
  }
}

void SessionTracker::start_probe(pool::ServerConn& s) {
  ClientSession& ss = *sess_;
  // Custom settings are asked for by name: those the client named, and those it has (startup
  // options, earlier read-backs).
  std::vector<std::string> custom;
  if (ss.settings_dirty) custom = ss.custom_settings;
  if (ss.settings_dirty && settings_) {
    for (const auto& [k, v] : settings_->kv) {
      if (k.find('.') != std::string::npos &&
          std::find(custom.begin(), custom.end(), k) == custom.end()) {
        custom.push_back(k);
      }
    }
  }
  std::string sql =
      pool::session_probe_sql(ss.settings_dirty, ss.state_check, s.target->user, custom);
  probing_ = true;
  s.internal_deadline = s.worker->loop().now() + s.internal_query_bound();
  ss.probe_settings.clear();
  ss.probe_columns = 0;
  ss.probe_failed = false;
  ss.probe_has_state = false;
  ss.probe_reason = nullptr;
  std::size_t mark = s.io.out.synth_mark();
  proto::write_query(s.io.out.synth(), sql);
  (void)s.io.out.commit_synth(mark);
}

bool SessionTracker::probe_frame(TrackerHost& host, pool::ServerConn& s, char type,
                                 std::string_view body) {
  ClientSession& ss = *sess_;
  proto::BodyReader r(body);
  switch (type) {
    case proto::be::kRowDescription: {
      auto n = r.u16();
      ss.probe_columns = n ? *n : 0;
      break;
    }
    case proto::be::kDataRow: {
      auto n = r.u16();
      if (!n) break;
      std::vector<std::string_view> cols;
      for (std::uint16_t i = 0; i < *n; ++i) {
        auto len = r.i32();
        if (!len) return false;
        if (*len < 0) {
          cols.emplace_back();
          continue;
        }
        auto v = r.bytes(static_cast<std::size_t>(*len));
        if (!v) return false;
        cols.push_back(*v);
      }
      if (ss.probe_columns == 2 && cols.size() == 2) {
        ss.probe_settings.emplace_back(std::string(cols[0]), std::string(cols[1]));
      } else if (ss.probe_columns == 4 && cols.size() == 4) {
        static const char* const kReasons[] = {"advisory lock", "listen", "temp table",
                                               "cursor with hold"};
        for (std::size_t i = 0; i < 4; ++i) {
          if (std::atoll(std::string(cols[i]).c_str()) > 0) {
            ss.probe_has_state = true;
            if (ss.probe_reason == nullptr) ss.probe_reason = kReasons[i];
          }
        }
      }
      break;
    }
    case proto::be::kErrorResponse:
      ss.probe_failed = true;
      break;
    default:
      break;
  }
  if (type != proto::be::kReadyForQuery) return false;
  probing_ = false;
  finish_probe(host, s);
  return true;
}

void SessionTracker::finish_probe(TrackerHost& host, pool::ServerConn& s) {
  ClientSession& ss = *sess_;
  bool failed = ss.probe_failed;
  if (failed) {
    // What the server holds is unknown (a role, settings, locks): it serves nobody else, and
    // this client, whose session is that unknown state, ends after its request's answer.
    core::log(core::LogLevel::Warning, "{} session probe failed: S-{} is closed",
              host.tracker_log_prefix(), s.id);
    s.close_requested = true;
  } else {
    if (ss.settings_dirty && ss.custom_overflow) {
      core::log(core::LogLevel::Warning,
                "{} more custom settings than sluice reads back: S-{} is closed when released",
                host.tracker_log_prefix(), s.id);
      s.close_requested = true;
    }
    if (ss.uninspected) {
      core::log(core::LogLevel::Log,
                "{} ran a statement too large to inspect: S-{} is closed when released",
                host.tracker_log_prefix(), s.id);
      s.close_requested = true;
    }
    if (ss.settings_dirty) {
      settings_ = pool::make_settings(std::move(ss.probe_settings));
      s.settings = settings_;
    }
    if (ss.state_check) {
      bool has = ss.probe_has_state || ss.loaded;
      const char* reason = ss.loaded ? "load" : ss.probe_reason;
      if (has) {
        if (ss.pin_reason == nullptr) {
          if (!ss.pin_counted && !host.tracker_try_pin()) {
            host.tracker_close(
                "pin limit reached", proto::sqlstate::kTooManyConnections,
                std::string("too many pinned connections in this pool (") + reason + ")");
            return;
          }
          ss.pin_counted = true;
          ss.pinned_since = s.worker->loop().now();
          core::log(core::LogLevel::Log, "{} pinned to S-{}: {}", host.tracker_log_prefix(), s.id,
                    reason);
        }
        ss.pin_reason = reason;
      } else {
        if (ss.pin_reason != nullptr) {
          core::log(core::LogLevel::Log, "{} unpinned from S-{}", host.tracker_log_prefix(), s.id);
        }
        ss.pin_reason = nullptr;
        if (ss.pin_counted) {
          host.tracker_unpin();
          ss.pin_counted = false;
        }
      }
    }
  }
  ss.probe_settings.clear();
  ss.settings_dirty = ss.state_check = ss.uninspected = false;
  if (held_rfq_ != 0) {
    host.tracker_send_ready(held_rfq_);
    held_rfq_ = 0;
  }
  if (failed) {
    host.tracker_close("session state could not be read back", proto::sqlstate::kConnectionFailure,
                       "sluice could not read the session state back from the server");
  }
}

void SessionTracker::release_pin(TrackerHost& host) {
  if (sess_ != nullptr && sess_->pin_counted) {
    host.tracker_unpin();
    sess_->pin_counted = false;
  }
}

void SessionTracker::reset_on_close(TrackerHost& host, pool::ServerConn& s,
                                    std::vector<std::string>& sqls) {
  if (!sess_) return;
  ClientSession& ss = *sess_;
  if ((ss.settings_dirty && s.requests.tx_status() == 'I') || ss.uninspected) {
    // A read-back is owed and will not happen: what the server holds (a role) is not known.
    s.close_requested = true;
  }
  if (ss.pin_reason != nullptr || ss.pin_counted) {
    sqls.emplace_back("DISCARD ALL");  // locks, LISTEN, temp tables, cursors, settings
    s.forget_session_state();
  }
  if (ss.pin_counted) {
    host.tracker_unpin();
    ss.pin_counted = false;
  }
  ss.pin_reason = nullptr;
}

// In transaction pooling the reset runs after every transaction, and what sluice believes the
// server holds must follow it. DISCARD ALL leaves nothing; a reset that changes some settings
// (RESET ALL keeps the role, say) is completed so that nothing is left either; one that touches
// no session state changes nothing sluice tracks.
std::vector<std::string> SessionTracker::reset_sqls(pool::ServerConn& s,
                                                    const std::string& reset_query) const {
  std::vector<std::string> sqls{reset_query};
  if (!tracking_) return sqls;
  auto e = sql::effects_of(reset_query);
  if (!e) return sqls;
  if (e->discard_all) {
    s.forget_session_state();
    return sqls;
  }
  if (e->deallocate_all) {
    if (s.statements) s.statements->clear();
    if (s.sql_prepared) s.sql_prepared->clear();
  }
  if (e->settings) {
    sqls.emplace_back("RESET ALL");
    sqls.emplace_back("RESET SESSION AUTHORIZATION");
    sqls.emplace_back("RESET ROLE");
    s.settings.reset();
  }
  return sqls;
}

}  // namespace sluice::session
