// Protocol-level named prepared statements in transaction pooling: client names map to the
// process-wide registry; servers get them under their registry names, prepared on demand.
#include "core/log.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/frontend.h"
#include "proto/reader.h"
#include "proto/writer.h"
#include "session/client.h"
#include "sql/classify.h"
#include "sql/scan.h"

namespace sluice::session {
namespace {

// A rewrite queues a synthetic run and a forwarded run at most; room for both, plus a Close
// and a Parse that may go first (they merge into the synthetic run).
constexpr int kSegsForRewrite = 3;

std::string parse_complete() {
  std::string m;
  proto::MessageWriter(m).begin(proto::be::kParseComplete).finish();
  return m;
}

std::string close_complete() {
  std::string m;
  proto::MessageWriter(m).begin(proto::be::kCloseComplete).finish();
  return m;
}

}  // namespace

void Client::queue_synth(std::string message) {
  ClientSession& ss = sess();
  std::uint32_t id = ss.next_synth++;
  ss.synth.emplace_back(id, std::move(message));
  note_request(*server, 'P', RequestAction::Synth, id);
  emit_synth();
}

// Made-up answers whose turn has come go to the client, in order with forwarded ones.
void Client::emit_synth() {
  std::uint32_t tag = 0;
  while (server != nullptr && server->requests.pop_synth(tag)) {
    auto& q = sess().synth;
    while (!q.empty() && q.front().first != tag)
      q.pop_front();  // skipped by an error
    if (q.empty()) continue;
    io.out.add_synth(q.front().second);
    q.pop_front();
  }
}

// Makes sure the linked server has `st` prepared, queueing Close for evicted statements and
// the Parse. `how`: Forward when the client asked for this Parse, Swallow when sluice adds it.
bool Client::ensure_server_statement(const pool::PreparedPtr& st, RequestAction how) {
  pool::ServerConn& s = *server;
  if (!s.statements) s.statements = std::make_unique<pool::ServerStatements>();
  if (s.statements->has(st->id)) {
    s.statements->touch(st->id);
    return true;
  }
  std::size_t mark = s.io.out.synth_mark();
  bool stale = s.statements->take_stale(st->id);
  auto evicted = s.statements->add(st, worker.cfg().settings.max_prepared_statements);
  std::string& out = s.io.out.synth();
  if (stale) {  // the old plan is still there under this name
    pool::write_close_statement(out, st->server_name);
    note_request(s, proto::fe::kClose, RequestAction::Internal);
  }
  for (const auto& v : evicted) {
    pool::write_close_statement(out, v->server_name);
    note_request(s, proto::fe::kClose, RequestAction::Internal);
  }
  pool::write_parse(out, *st);
  note_request(s, proto::fe::kParse, how, static_cast<std::uint32_t>(st->id));
  (void)s.io.out.commit_synth(mark);
  (*counters_).server_parses.add(1);
  return !request_overflow_;
}

Client::Step Client::handle_parse(std::string_view body, std::uint32_t wire) {
  auto parse = proto::ParseView::decode(body);
  if (!parse) {
    close("malformed Parse", proto::sqlstate::kProtocolViolation, "malformed Parse message");
    return Step::Stop;
  }
  std::string_view name = parse->name;
  std::string_view query = parse->query;
  std::string_view types = parse->param_types;
  std::shared_ptr<const sql::Effects> effects;
  if (tracker_.tracking() && sql::needs_parse(query)) {
    if (auto e = sql::effects_of_parsed(query)) {
      effects = e;
      std::string why;
      if (tracker_.apply_effects(*this, *server, *e, why) == SessionTracker::Verdict::Refused) {
        return send_refusal(proto::fe::kParse, body, wire, why);
      }
    }
  }
  if (name.empty() || !tracker_.prepared()) return Step::Plain;
  if (server->io.out.free_segs() < kSegsForRewrite) return Step::Blocked;
  ClientSession& ss = sess();
  if (ss.statements.count(name) != 0) {
    core::log(core::LogLevel::Warning, "{} prepared statement '{}' was already prepared",
              log_prefix(), name);
    close("prepared statement was already prepared", "42P05",
          "prepared statement \"" + std::string(name) + "\" already exists");
    return Step::Stop;
  }
  pool::PreparedPtr st = worker.registries().prepared.get(query, types);
  ss.statements.emplace(std::string(name), st);
  if (effects) ss.statement_effects.emplace(std::string(name), std::move(effects));
  pool::PoolCounters& pc = (*counters_);
  pc.client_parses.add(1);
  pc.received.add(wire);
  if (request_start == 0 && server->requests.idle()) request_start = worker.loop().now();
  io.scan += wire;
  if (server->statements && server->statements->has(st->id)) {
    server->statements->touch(st->id);
    queue_synth(parse_complete());  // already prepared there: answer in the server's place
  } else {
    ensure_server_statement(st, RequestAction::Forward);
  }
  return Step::Next;
}

// The client's statement of that name. Naming one it never prepared ends the client with
// Postgres' 26000: the rest of its batch cannot be made sense of.
pool::PreparedPtr Client::client_statement(std::string_view name) {
  auto& statements = sess().statements;
  if (auto it = statements.find(name); it != statements.end()) return it->second;
  core::log(core::LogLevel::Warning, "{} prepared statement did not exist", log_prefix());
  close("prepared statement did not exist", "26000",
        "prepared statement \"" + std::string(name) + "\" does not exist");
  return nullptr;
}

// `body` is the Bind's body as far as it is buffered: all of it, or (a Bind over the whole-read
// cap) at least its two names; the rest of it then streams behind the renamed start.
Client::Step Client::handle_bind(std::string_view body, std::uint32_t wire) {
  auto names = proto::BindNames::decode(body);
  if (!names) {
    close("malformed Bind", proto::sqlstate::kProtocolViolation, "malformed Bind message");
    return Step::Stop;
  }
  std::string_view portal = names->portal;
  std::string_view name = names->statement;
  if (name.empty() || !tracker_.prepared()) return Step::Plain;
  if (server->io.out.free_segs() < kSegsForRewrite) return Step::Blocked;
  pool::PreparedPtr st = client_statement(name);
  if (!st) return Step::Stop;
  if (!sess().statement_effects.empty()) {  // executing a statement that may change state again
    auto it = sess().statement_effects.find(name);
    if (it != sess().statement_effects.end()) tracker_.note_effects(*it->second);
  }
  pool::ServerConn& srv = *server;
  // A batch that starts here, outside a transaction, can be sent again after a re-prepare.
  bool fresh_batch = srv.requests.idle() && srv.requests.tx_status() == 'I';
  if (!ensure_server_statement(st, RequestAction::Swallow)) return Step::Plain;  // queue full
  std::string_view rest = body.substr(names->size());
  auto consumed = static_cast<std::uint32_t>(proto::kHeaderLen + body.size());
  std::uint32_t rest_len = wire - proto::kHeaderLen - static_cast<std::uint32_t>(names->size());
  // Bind under the server's name: a new header and names, then the client's own bytes.
  pool::ServerConn& s = *server;
  std::size_t mark = s.io.out.synth_mark();
  proto::MessageWriter w(s.io.out.synth());
  w.begin(proto::fe::kBind).cstring(portal).cstring(st->server_name);
  std::string& out = s.io.out.synth();
  proto::write_be32(out.data() + mark + 1,
                    static_cast<std::uint32_t>(out.size() - mark - 1 + rest_len));
  auto& retry = sess().retry;
  if (fresh_batch && consumed == wire && rest.size() < ClientSession::kMaxRetryBytes) {
    retry.reset();
    retry.capturing = true;
    retry.statement = st;
    retry.bytes.assign(out, mark, std::string::npos);
    retry.bytes.append(rest);
    retry.types = "B";
  } else {
    retry.reset();  // only a batch that is this Bind and its own follow-ups, read whole
  }
  (void)s.io.out.commit_synth(mark);
  (void)s.io.out.add_forward(rest.data(), static_cast<std::uint32_t>(rest.size()));
  bool was_idle = s.requests.idle();
  note_request(s, proto::fe::kBind, RequestAction::Forward, static_cast<std::uint32_t>(st->id));
  if (was_idle && request_start == 0) request_start = worker.loop().now();
  pool::PoolCounters& pc = (*counters_);
  pc.binds.add(1);
  pc.received.add(wire);
  from_client_.forwarded_start(io, consumed, wire);  // the rest of a large Bind streams on
  return Step::Next;
}

Client::Step Client::handle_describe(std::string_view body, std::uint32_t wire) {
  auto d = proto::DescribeView::decode(body);
  if (!d) {
    close("malformed Describe", proto::sqlstate::kProtocolViolation, "malformed Describe message");
    return Step::Stop;
  }
  std::string_view name = d->name;
  if (!d->statement() || name.empty() || !tracker_.prepared()) return Step::Plain;
  if (server->io.out.free_segs() < kSegsForRewrite) return Step::Blocked;
  pool::PreparedPtr st = client_statement(name);
  if (!st) return Step::Stop;
  if (!ensure_server_statement(st, RequestAction::Swallow)) return Step::Plain;  // queue full
  pool::ServerConn& s = *server;
  std::size_t mark = s.io.out.synth_mark();
  proto::MessageWriter(s.io.out.synth())
      .begin(proto::fe::kDescribe)
      .u8('S')
      .cstring(st->server_name)
      .finish();
  auto& retry = sess().retry;
  if (retry.capturing && retry.statement == st) {
    retry.bytes.append(s.io.out.synth(), mark, std::string::npos);
    retry.types.push_back(proto::fe::kDescribe);
    retry.described = true;
  } else {
    retry.reset();
  }
  (void)s.io.out.commit_synth(mark);
  bool was_idle = s.requests.idle();
  note_request(s, proto::fe::kDescribe);
  if (was_idle && request_start == 0) request_start = worker.loop().now();
  (*counters_).received.add(wire);
  io.scan += wire;
  return Step::Next;
}

Client::Step Client::handle_close(std::string_view body, std::uint32_t wire) {
  auto c = proto::CloseView::decode(body);
  if (!c) {
    close("malformed Close", proto::sqlstate::kProtocolViolation, "malformed Close message");
    return Step::Stop;
  }
  std::string_view name = c->name;
  if (!c->statement() || name.empty() || !tracker_.prepared()) return Step::Plain;
  // The server's statement may serve other clients: the client's Close is answered here.
  auto& statements = sess().statements;
  if (auto it = statements.find(name); it != statements.end()) statements.erase(it);
  if (auto it = sess().statement_effects.find(name); it != sess().statement_effects.end()) {
    sess().statement_effects.erase(it);
  }
  (*counters_).received.add(wire);
  io.scan += wire;
  queue_synth(close_complete());
  return Step::Next;
}

}  // namespace sluice::session
