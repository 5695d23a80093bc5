// Frame by frame: what the client sends (forwarded, renamed, answered locally) and what the
// server answers (forwarded, swallowed, or read by sluice), with the request queue in step.
#include <algorithm>

#include "core/log.h"
#include "proto/backend.h"
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
// Server messages sluice reads whole (it inspects them) are at most this long.
constexpr std::uint32_t kMaxInspectedFrame = Client::kMaxWholeMessage;
}  // namespace

// ---------------------------------------------------------------- client -> server

Client::Step Client::scan_client_frames() {
  for (;;) {
    // The rest of a message under way (dropped if the server is gone, closed under the client).
    switch (from_client_.walk(io, server != nullptr ? &server->io.out : nullptr)) {
      case MessageCursor::Walk::NeedInput:
        return Step::NeedInput;
      case MessageCursor::Walk::Blocked:
        return Step::Blocked;
      case MessageCursor::Walk::Boundary:
        break;
    }
    if (io.unscanned() == 0) return Step::NeedInput;
    proto::Header h;
    auto hs = proto::decode_frontend_header(io.scan_ptr(), io.unscanned(), max_packet_, h);
    if (hs == proto::HeaderStatus::NeedMore) return Step::NeedInput;
    if (hs == proto::HeaderStatus::LengthTooSmall) {
      close("invalid message length", proto::sqlstate::kProtocolViolation,
            "invalid message length");
      return Step::Stop;
    }
    if (hs == proto::HeaderStatus::LengthTooLarge) {
      // Over max_packet_size, or over what PostgreSQL accepts for the type (it would close the
      // connection without a word): refused before a byte of it is read.
      close(h.len > max_packet_ ? "max_packet_size exceeded" : "invalid message length",
            proto::sqlstate::kProtocolViolation,
            h.len > max_packet_ ? "message exceeds max_packet_size" : "invalid message length");
      return Step::Stop;
    }
    std::uint32_t wire = h.wire();
    if (admin) {  // the console (client_admin.cc)
      Step st = admin_message(h.type, wire);
      if (st != Step::Next) return st;
      continue;
    }
    if (server == nullptr) {
      if (state == ClientState::Waiting || pending_assignment_) return Step::Stop;
      if (handle_unlinked_message(h.type, wire)) {
        if (state == ClientState::Closed) return Step::Stop;
        continue;
      }
      request_server(false);
      if (server == nullptr || sync_rfq_ > 0) return Step::Stop;  // resumes on assignment/sync
      continue;
    }
    if (sync_rfq_ > 0 || tracker_.probing()) return Step::Stop;  // sluice's own query in flight
    if (h.type == proto::fe::kTerminate) {
      close("client close request");
      return Step::Stop;
    }
    if (pass_client_run(*server) > 0) continue;
    Step st = forward_client_message(h.type, wire);
    // A request sluice added on the way (a re-Parse, a refusal, a replayed setting) found the
    // queue full: the same close as for the client's own request.
    if (request_overflow_ && state != ClientState::Closed) return close_queue_full();
    if (st != Step::Next) return st;
  }
}

Client::Step Client::forward_client_message(char type, std::uint32_t wire) {
  pool::ServerConn& s = *server;
  // The part of the body in the buffer (all of it, or the start of a message still arriving).
  std::string_view seen(io.scan_ptr() + proto::kHeaderLen,
                        std::min(wire, io.unscanned()) - proto::kHeaderLen);
  bool prepared =
      tracker_.prepared() && (type == proto::fe::kParse || type == proto::fe::kBind ||
                              type == proto::fe::kDescribe || type == proto::fe::kClose);
  if (prepared && seen.size() >= 2) {
    // Unnamed portal and statement, or a portal Describe/Close: nothing to rename.
    if (type == proto::fe::kBind ? proto::bind_is_unnamed(seen)
                                 : (type != proto::fe::kParse && proto::targets_portal(seen))) {
      prepared = false;
    }
  }
  bool classify = tracker_.tracking() && (type == proto::fe::kQuery || type == proto::fe::kParse);
  if ((prepared || classify) && wire > kMaxWholeMessage) {
    // Too large to read whole (Describe and Close never are: the frame limits keep them small).
    Step st = forward_large_message(type, wire, seen, prepared);
    if (st != Step::Plain) return st;
    prepared = classify = false;  // streamed like any other message
  }
  if (prepared || classify) {
    if (io.unscanned() < wire) {
      need_whole_ = wire;
      return Step::NeedInput;
    }
    std::string_view body = seen;
    switch (type) {
      case proto::fe::kQuery: {
        std::string_view text = proto::QueryView::text_of(body);
        if (!sql::needs_parse(text)) break;  // the common case: costs a few dozen instructions
        if (auto e = sql::effects_of_parsed(text)) {
          std::string why;
          auto v = tracker_.apply_effects(*this, s, *e, why);
          if (request_overflow_) return close_queue_full();
          if (v == SessionTracker::Verdict::Refused) return send_refusal(type, body, wire, why);
        }
        break;
      }
      case proto::fe::kParse:
        if (proto::parse_is_unnamed(body)) {
          // The unnamed statement: look at its text in one pass, nothing to rename.
          auto ts = sql::scan_text(body.data() + 1, body.data() + body.size());
          if (!ts.terminated) {
            close("malformed Parse", proto::sqlstate::kProtocolViolation,
                  "malformed Parse message");
            return Step::Stop;
          }
          if (!tracker_.tracking() || !ts.needs_parse) break;
        }
        [[fallthrough]];
      case proto::fe::kBind:
      case proto::fe::kDescribe:
      case proto::fe::kClose: {
        Step st = type == proto::fe::kParse      ? handle_parse(body, wire)
                  : type == proto::fe::kBind     ? handle_bind(body, wire)
                  : type == proto::fe::kDescribe ? handle_describe(body, wire)
                                                 : handle_close(body, wire);
        if (request_overflow_ && state != ClientState::Closed) return close_queue_full();
        if (st != Step::Plain) return st;
        break;
      }
      default:
        break;
    }
    if (state == ClientState::Closed || server == nullptr) return Step::Stop;
  }
  std::uint32_t avail = std::min(wire, io.unscanned());
  if (!s.io.out.add_forward(io.scan_ptr(), avail)) return Step::Blocked;
  bool was_idle = s.requests.idle();
  if (!s.requests.on_frontend(type)) return close_queue_full();
  if (sess_ptr() != nullptr &&
      (type == proto::fe::kQuery || type == proto::fe::kSync || type == proto::fe::kFunctionCall)) {
    ++sess_ptr()->rfq_sent;
  }
  turn_owed_ = false;
  if (was_idle && request_start == 0) request_start = worker.loop().now();
  (*counters_).received.add(wire);
  if (sess_ptr() != nullptr && sess_ptr()->retry.capturing) capture_for_retry(type, avail, wire);
  from_client_.forwarded_start(io, avail, wire);
  return Step::Next;
}

// Every path on which a request finds the server's queue full ends here: the server is closed
// (it may owe answers sluice no longer tracks), the client gets FATAL 53000.
Client::Step Client::close_queue_full() {
  if (server != nullptr) server->close_requested = true;
  close("too many pipelined requests", proto::sqlstate::kInsufficientResources,
        "too many pipelined requests");
  return Step::Stop;
}

// A Query, Parse or Bind over kMaxWholeMessage that sluice would otherwise read whole. A Bind
// needs only its names: it is renamed and the rest streams. A named Parse must be read whole
// (its text is the statement's identity in the registry): it is refused. The text of a Query or
// an unnamed Parse is not inspected, so sluice assumes the worst of it (mark_uninspected) and
// streams it. Plain: forward it as it is.
Client::Step Client::forward_large_message(char type, std::uint32_t wire, std::string_view seen,
                                           bool prepared) {
  if (type == proto::fe::kBind) {
    auto names = proto::BindNames::decode(seen);
    if (!names) {
      if (seen.size() >= kMaxWholeMessage - proto::kHeaderLen) {
        close("Bind names too long", proto::sqlstate::kProgramLimitExceeded,
              "portal and statement names of a Bind over 1 MiB");
        return Step::Stop;
      }
      need_whole_ = kMaxWholeMessage;
      return Step::NeedInput;
    }
    if (!prepared) return Step::Plain;
    Step st = handle_bind(seen, wire);
    if (request_overflow_ && state != ClientState::Closed) return close_queue_full();
    return st;
  }
  if (type == proto::fe::kParse && prepared) {
    if (seen.empty()) {  // the first byte of the body tells whether it is named
      need_whole_ = proto::kHeaderLen + 1;
      return Step::NeedInput;
    }
    if (seen[0] == '\0') {
      if (tracker_.tracking()) tracker_.mark_uninspected();
      return Step::Plain;
    }
    core::log(core::LogLevel::Warning, "{} named Parse of {} bytes refused", log_prefix(), wire);
    close("prepared statement too large", proto::sqlstate::kProgramLimitExceeded,
          "sluice cannot prepare a named statement whose Parse message is over 1 MiB; use the "
          "unnamed statement");
    return Step::Stop;
  }
  if (tracker_.tracking()) tracker_.mark_uninspected();
  return Step::Plain;
}

std::uint32_t Client::pass_client_run(pool::ServerConn& s) {
  // The output must be able to take the run whole (it merges with a contiguous last segment).
  if (s.io.out.free_segs() == 0 || (sess_ptr() != nullptr && sess_ptr()->retry.capturing)) return 0;
  const char* begin = io.scan_ptr();
  const char* p = begin;
  const char* end = begin + io.unscanned();
  bool was_idle = s.requests.idle();
  std::uint32_t rfqs = 0;
  while (end - p >= static_cast<std::ptrdiff_t>(proto::kHeaderLen)) {
    proto::Header h;
    if (proto::decode_frontend_header(p, static_cast<std::size_t>(end - p), max_packet_, h) !=
            proto::HeaderStatus::Ok ||
        h.len > static_cast<std::size_t>(end - p - 1)) {
      break;  // refused or incomplete: the general path
    }
    char type = h.type;
    std::uint32_t len = h.len;
    std::string_view body(p + proto::kHeaderLen, h.body());
    bool plain = false;
    switch (type) {
      case proto::fe::kBind:  // unnamed portal and statement: nothing to rename
        plain = !tracker_.prepared() || proto::bind_is_unnamed(body);
        break;
      case proto::fe::kDescribe:
      case proto::fe::kClose:  // a portal: nothing to rename
        plain = !tracker_.prepared() || proto::targets_portal(body);
        break;
      case proto::fe::kExecute:
      case proto::fe::kSync:
        plain = true;
        break;
      case proto::fe::kParse:
        if (!tracker_.prepared() && !tracker_.tracking()) {
          plain = true;
        } else if (proto::parse_is_unnamed(body) && len < kMaxWholeMessage) {
          // The unnamed statement: look at its text in one pass, nothing to rename.
          auto ts = sql::scan_text(body.data() + 1, body.data() + body.size());
          plain = ts.terminated && (!tracker_.tracking() || !ts.needs_parse);
        }
        break;
      case proto::fe::kQuery:
        if (!tracker_.tracking()) {
          plain = true;
        } else if (len < kMaxWholeMessage) {
          plain = !sql::needs_parse(proto::QueryView::text_of(body));
        }
        break;
      default:
        break;
    }
    if (!plain || !s.requests.on_frontend(type)) break;
    rfqs += type == proto::fe::kSync || type == proto::fe::kQuery;
    p += len + 1;
  }
  auto n = static_cast<std::uint32_t>(p - begin);
  if (n == 0) return 0;
  (void)s.io.out.add_forward(begin, n);
  if (sess_ptr() != nullptr) sess_ptr()->rfq_sent += rfqs;
  turn_owed_ = false;
  if (was_idle && request_start == 0) request_start = worker.loop().now();
  (*counters_).received.add(n);
  io.scan += n;
  return n;
}

// Copies the rest of a retry-able batch (Describe, Execute, Flush, Sync) as it is sent.
void Client::capture_for_retry(char type, std::uint32_t avail, std::uint32_t wire) {
  auto& r = sess_ptr()->retry;
  bool ok = avail == wire && r.bytes.size() + wire <= ClientSession::kMaxRetryBytes &&
            (type == proto::fe::kDescribe || type == proto::fe::kExecute ||
             type == proto::fe::kFlush || type == proto::fe::kSync);
  if (!ok) {
    r.reset();
    return;
  }
  r.bytes.append(io.scan_ptr(), wire);
  if (type != proto::fe::kFlush) r.types.push_back(type);
  if (type == proto::fe::kDescribe) r.described = true;
  if (type == proto::fe::kSync) {
    r.capturing = false;
    r.armed = true;
  }
}

// Sends a batch again after its statement was prepared anew (the 0A000 retry).
void Client::resend_retry() {
  auto r = std::move(sess_ptr()->retry);
  sess_ptr()->retry.reset();
  pool::ServerConn& s = *server;
  ensure_server_statement(r.statement, RequestAction::Swallow);  // Close of the stale one, Parse
  std::size_t mark = s.io.out.synth_mark();
  s.io.out.synth().append(r.bytes);
  (void)s.io.out.commit_synth(mark);
  for (char t : r.types)
    note_request(s, t);
  core::log(core::LogLevel::Log, "{} cached plan changed: statement prepared again and retried",
            log_prefix());
  (void)flush_to_server();
}

// ---------------------------------------------------------------- server -> client

Client::Step Client::scan_server_frames() {
  pool::ServerConn& s = *server;
  for (;;) {
    switch (from_server_.walk(s.io, &io.out)) {  // the rest of a message under way
      case MessageCursor::Walk::NeedInput:
        return Step::NeedInput;
      case MessageCursor::Walk::Blocked:
        return Step::Blocked;
      case MessageCursor::Walk::Boundary:
        break;
    }
    if (s.io.unscanned() == 0) return Step::NeedInput;
    if (pass_server_run(s) > 0) {
      if (sess_ptr() != nullptr) emit_synth();
      continue;
    }
    proto::Header h;
    auto hs = proto::decode_header(s.io.scan_ptr(), s.io.unscanned(), proto::kMaxBackendBulk, h);
    if (hs == proto::HeaderStatus::NeedMore) return Step::NeedInput;
    if (hs != proto::HeaderStatus::Ok || !proto::backend_header_ok(h.type, h.len)) {
      // Not a message a server sends, or not of that length: the server's fault (I4).
      server_protocol_violation(h.type, h.len);
      return Step::Stop;
    }
    std::uint32_t wire = h.wire();
    bool internal = sync_rfq_ > 0 || tracker_.probing();
    bool whole = internal || h.type == proto::be::kReadyForQuery ||
                 h.type == proto::be::kParameterStatus || h.type == proto::be::kErrorResponse ||
                 (sess_ptr() != nullptr && h.type == proto::be::kCommandComplete);
    if (whole && s.io.unscanned() < wire) {
      if (wire > kMaxInspectedFrame) {
        server_failed("server message too large");
        return Step::Stop;
      }
      if (s.io.in.cap - s.io.scan < wire) {
        // Grow only once nothing queued for the client points into this buffer.
        if (!io.out.empty()) return Step::Blocked;
        s.io.consume_scanned();
        if (!s.io.reserve(worker.buffers(), wire)) {
          server_failed("out of memory");
          return Step::Stop;
        }
      }
      return Step::NeedInput;
    }
    std::string_view body;
    if (whole) body = std::string_view(s.io.scan_ptr() + proto::kHeaderLen, h.body_size());
    if (h.type == proto::be::kReadyForQuery && !proto::is_tx_status(body[0])) {
      server_protocol_violation(h.type, h.len);
      return Step::Stop;
    }

    if (internal) {  // sluice's own SET or probe: read, never forwarded
      s.io.scan += wire;
      if (handle_swallowed_server_frame(h.type, body)) return Step::Waiting;
      if (state == ClientState::Closed || server == nullptr) return Step::Stop;
      continue;
    }
    auto routed = s.requests.route(h.type);
    char head = routed.head;
    std::uint32_t tag = routed.tag;
    bool fwd = routed.forward;
    switch (h.type) {
      case proto::be::kReadyForQuery: {
        char status = body.empty() ? 'I' : body[0];
        s.requests.set_tx_status(status);
        if (sess_ptr() != nullptr && sess_ptr()->retry.pending) {
          // The refused batch is over on the server; the client's Sync is answered by the
          // batch sent again.
          s.io.scan += wire;
          resend_retry();
          if (request_overflow_) {
            (void)close_queue_full();
            return Step::Stop;
          }
          continue;
        }
        if (sess_ptr() != nullptr && fwd) tracker_.request_done();
        if (s.requests.idle()) {
          if (pool->mode == config::PoolMode::Statement && status != 'I') {
            // A transaction block in statement mode: the client is closed, as PgBouncer does;
            // the server is rolled back and kept.
            s.io.scan += wire;
            after_request_done('I');
            pool::ServerConn* srv = server;
            server = nullptr;
            state = ClientState::Idle;
            io.out.materialize();
            srv->io.consume_scanned();
            srv->run_internal("ROLLBACK", pool::ServerConn::After::Release, "rollback");
            constexpr const char* kWhy = "transaction blocks not allowed in statement pooling mode";
            close(kWhy, proto::sqlstate::kFeatureNotSupported, kWhy);
            return Step::Stop;
          }
          after_request_done(status);
          if (status == 'I' && tracker_.read_back_owed()) {
            // Sluice asks the server about session state first; the client hears that its
            // request is done only then, so nothing it does next can overtake the answer.
            tracker_.hold_ready(status);
            fwd = false;
          }
        }
        break;
      }
      case proto::be::kParameterStatus:
        if (auto ps = proto::ParameterStatusView::decode(body))
          parameter_status(ps->name, ps->value);
        break;
      case proto::be::kErrorResponse: {
        pool::PoolCounters& pc = (*counters_);
        pc.errors.add(1);
        // A Parse sluice registered failed, or was skipped: the server does not have it.
        if (head == proto::fe::kParse && tag != 0 && s.statements) s.statements->remove(tag);
        if (s.statements) {
          for (std::uint32_t id : s.requests.take_skipped_parses())
            s.statements->remove(id);
        }
        // FATAL/PANIC: the backend is ending the session; so does this client, after the error.
        auto e = proto::ErrorView::decode(body);
        if (e && (e->severity == "FATAL" || e->severity == "PANIC")) server_fatal_ = true;
        if (e && e->sqlstate == "0A000" && head == proto::fe::kBind && tag != 0 && s.statements) {
          // "cached plan must not change result type": this server's statement is stale.
          s.statements->mark_stale(tag);
          auto& r = sess().retry;
          if ((r.capturing || r.armed) && r.described && r.statement && r.statement->id == tag) {
            r.pending = true;  // nothing of it reached the client: prepare again and resend
            fwd = false;
          } else {
            r.reset();
          }
        }
        break;
      }
      case proto::be::kBindComplete:
        if (sess_ptr() != nullptr && sess_ptr()->retry.active()) sess_ptr()->retry.reset();
        break;  // it ran: no retry
      case proto::be::kCommandComplete:
        if (sess_ptr() != nullptr && fwd && !body.empty()) {
          std::string_view tag_text = body;
          if (tag_text.back() == '\0') tag_text.remove_suffix(1);
          tracker_.on_command_tag(s, tag_text);
        }
        break;
      default:
        break;
    }
    if (fwd) {
      std::uint32_t avail = std::min(wire, s.io.unscanned());
      if (!io.out.add_forward(s.io.scan_ptr(), avail)) return Step::Blocked;
      (*counters_).sent.add(wire);
      from_server_.forwarded_start(s.io, avail, wire);
    } else {
      from_server_.skip(s.io, wire);
    }
    if (sess_ptr() != nullptr) emit_synth();
  }
}

std::uint32_t Client::pass_server_run(pool::ServerConn& s) {
  if (sync_rfq_ > 0 || tracker_.probing() || io.out.free_segs() == 0) return 0;
  const char* begin = s.io.scan_ptr();
  const char* p = begin;
  const char* end = begin + s.io.unscanned();
  bool query = s.requests.head_is_forwarded_query();
  while (end - p >= static_cast<std::ptrdiff_t>(proto::kHeaderLen)) {
    char type = p[0];
    std::uint32_t len = proto::read_be32(p + 1);
    if (len < 4 || len > static_cast<std::size_t>(end - p - 1)) break;  // partial: general path
    switch (type) {
      case proto::be::kDataRow:
      case proto::be::kRowDescription:
      case proto::be::kParameterDescription:
        break;
      case proto::be::kNoData:
      case proto::be::kParseComplete:
      case proto::be::kCloseComplete:
      case proto::be::kPortalSuspended:
      case proto::be::kEmptyQueryResponse:
        if (len != 4) goto done;  // the general path refuses it
        break;
      case proto::be::kBindComplete:  // a batch kept for a retry is over once Bind succeeds
        if (len != 4 || (sess_ptr() != nullptr && sess_ptr()->retry.active())) goto done;
        break;
      case proto::be::kCommandComplete:  // tags that change session state are read
        if (sess_ptr() != nullptr && len > 4 && (p[5] == 'D' || p[5] == 'P' || p[5] == 'L'))
          goto done;
        break;
      default:
        goto done;
    }
    if (!query && !s.requests.pass_forward(type)) break;
    p += len + 1;
  }
done:
  auto n = static_cast<std::uint32_t>(p - begin);
  if (n == 0) return 0;
  (void)io.out.add_forward(begin, n);
  (*counters_).sent.add(n);
  s.io.scan += n;
  return n;
}

void Client::server_protocol_violation(char type, std::uint32_t len) {
  core::log(core::LogLevel::Warning,
            "{} S-{} sent an invalid message (type 0x{:02x}, length {}): closing it", log_prefix(),
            server->id, static_cast<unsigned char>(type), len);
  server_failed("server protocol violation");
}

// One message of sluice's own SET (sync) or session probe. True when it is over.
bool Client::handle_swallowed_server_frame(char type, std::string_view body) {
  if (sync_rfq_ > 0) {
    if (type == proto::be::kErrorResponse) sync_error_ = std::make_unique<std::string>(body);
    if (type != proto::be::kReadyForQuery || --sync_rfq_ > 0) return false;
    if (sync_error_) {
      auto e = proto::ErrorView::decode(*sync_error_);
      std::string msg = e ? std::string(e->message) : "invalid server parameter";
      core::log(core::LogLevel::Warning, "{} varcache_apply failed: {}", log_prefix(), msg);
      server_failed("invalid server parameter");
      return false;
    }
    tracker_.replayed(*server);
    return true;
  }
  return tracker_.probe_frame(*this, *server, type, body);
}

}  // namespace sluice::session
