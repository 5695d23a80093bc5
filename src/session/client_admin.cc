// The admin console's side of the wire. Simple queries run as console commands; the extended
// query protocol is answered too, because drivers use it without being asked (psycopg 3
// prepares a statement it has run five times, issue 17 item 11): Parse and Bind remember the
// text, Describe and Execute run it, Sync ends the batch. The console takes no parameters and
// answers in text only.
#include <cctype>

#include "core/log.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/frontend.h"
#include "proto/reader.h"
#include "proto/writer.h"
#include "session/client.h"
#include "session/console_extended.h"

namespace sluice::session {
namespace {
// Console messages are read whole; a query longer than this is refused.
constexpr std::uint32_t kMaxConsoleMessage = 1u << 20;

bool starts_with_word(std::string_view text, std::string_view word) {
  std::size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
                             text[i] == '\r' || text[i] == '(')) {
    ++i;
  }
  if (text.size() - i < word.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k) {
    char c = text[i + k];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != word[k]) return false;
  }
  std::size_t end = i + word.size();
  return end == text.size() ||
         !(std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_');
}

// The next word of `s` (an identifier, or a double-quoted one unquoted), consumed.
std::string take_word(std::string_view& s) {
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
    ++i;
  std::string w;
  if (i < s.size() && s[i] == '"') {
    for (++i; i < s.size(); ++i) {
      if (s[i] == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          w.push_back('"');
          ++i;
          continue;
        }
        ++i;
        break;
      }
      w.push_back(s[i]);
    }
  } else {
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i])) && s[i] != ';') {
      w.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(s[i]))));
      ++i;
    }
  }
  s.remove_prefix(i);
  return w;
}

// DEALLOCATE [PREPARE] name | ALL; returns the command tag (drivers read it).
const char* deallocate(ConsoleExtended* x, std::string_view sql) {
  (void)take_word(sql);
  std::string name = take_word(sql);
  if (name == "prepare") name = take_word(sql);
  bool all = name == "all";
  if (x != nullptr) {
    if (all) {
      x->statements.clear();
    } else {
      x->statements.erase(name);
    }
  }
  return all ? "DEALLOCATE ALL" : "DEALLOCATE";
}

void write_simple(std::string& out, char type) {
  proto::MessageWriter(out).begin(type).finish();
}
}  // namespace

// One message of an admin console client (header checked by the caller). Next: go on.
Client::Step Client::admin_message(char type, std::uint32_t wire) {
  if (admin_pending_) return Step::Stop;  // a command is running; input waits for it
  if (type == proto::fe::kTerminate) {
    close("client close request");
    return Step::Stop;
  }
  switch (type) {
    case proto::fe::kQuery:
    case proto::fe::kParse:
    case proto::fe::kBind:
    case proto::fe::kDescribe:
    case proto::fe::kExecute:
    case proto::fe::kSync:
    case proto::fe::kFlush:
    case proto::fe::kClose:
      break;
    default:
      close("unsupported message in admin console", proto::sqlstate::kFeatureNotSupported,
            "the admin console supports only queries");
      return Step::Stop;
  }
  if (io.unscanned() < wire) {
    if (wire > kMaxConsoleMessage) {
      close("admin query too long", proto::sqlstate::kProgramLimitExceeded, "query too long");
      return Step::Stop;
    }
    need_whole_ = wire;
    return Step::NeedInput;
  }
  std::string_view body(io.scan_ptr() + proto::kHeaderLen, wire - proto::kHeaderLen);
  io.scan += wire;
  last_activity = worker.loop().now();
  if (type == proto::fe::kQuery) {
    body = proto::QueryView::text_of(body);
    if (starts_with_word(body, "DEALLOCATE")) {
      // Drivers drop what they prepared with the SQL command (psycopg with libpq < 17).
      const char* tag = deallocate(console_ext_.get(), body);
      std::size_t mark = io.out.synth_mark();
      proto::write_command_complete(io.out.synth(), tag);
      (void)io.out.commit_synth(mark);
      send_ready('I');
      return Step::Next;
    }
    handle_admin_query(body);
  } else {
    admin_extended(type, body);
  }
  return state == ClientState::Closed ? Step::Stop : Step::Next;
}

// An extended-query message of the console (read whole).
void Client::admin_extended(char type, std::string_view body) {
  if (!console_ext_) console_ext_ = std::make_unique<ConsoleExtended>();
  ConsoleExtended& x = *console_ext_;
  if (type == proto::fe::kSync) {
    x.skip_to_sync = false;
    x.portals.clear();  // every portal ends with the (implicit) transaction
    send_ready('I');
    return;
  }
  if (x.skip_to_sync || type == proto::fe::kFlush) return;
  auto fail = [&](const char* sqlstate, std::string_view message) {
    send_error(sqlstate, message, false);
    x.skip_to_sync = true;
  };
  auto malformed = [&] {
    close("malformed message in admin console", proto::sqlstate::kProtocolViolation,
          "malformed extended query message");
  };
  std::size_t mark = io.out.synth_mark();
  switch (type) {
    case proto::fe::kParse: {
      auto p = proto::ParseView::decode(body);
      if (!p) return malformed();
      std::string name(p->name);
      if (!name.empty() && x.statements.count(name) != 0) {
        return fail("42P05", "prepared statement \"" + name + "\" already exists");
      }
      if (x.statements.size() >= ConsoleExtended::kMaxNames) {
        return fail(proto::sqlstate::kProgramLimitExceeded, "too many prepared statements");
      }
      x.statements[name] = std::string(p->query);
      write_simple(io.out.synth(), '1');  // ParseComplete
      break;
    }
    case proto::fe::kBind: {
      auto b = proto::BindView::decode(body);
      if (!b) return malformed();
      if (b->param_count != 0) {
        return fail(proto::sqlstate::kFeatureNotSupported, "the admin console takes no parameters");
      }
      if (b->result_formats.find_first_not_of('\0') != std::string_view::npos) {
        return fail(proto::sqlstate::kFeatureNotSupported,
                    "the admin console answers in text format only");
      }
      std::string stmt(b->names.statement);
      auto it = x.statements.find(stmt);
      if (it == x.statements.end()) {
        return fail("26000", "prepared statement \"" + stmt + "\" does not exist");
      }
      if (x.portals.size() >= ConsoleExtended::kMaxNames) {
        return fail(proto::sqlstate::kProgramLimitExceeded, "too many portals");
      }
      x.portals[std::string(b->names.portal)] = it->second;
      write_simple(io.out.synth(), '2');  // BindComplete
      break;
    }
    case proto::fe::kDescribe:
    case proto::fe::kExecute: {
      char kind = 'P';
      std::string_view target;
      if (type == proto::fe::kDescribe) {
        auto d = proto::DescribeView::decode(body);
        if (!d) return malformed();
        kind = d->kind;
        target = d->name;
      } else {
        auto e = proto::ExecuteView::decode(body);
        if (!e) return malformed();
        target = e->portal;
      }
      const auto& names = kind == 'S' ? x.statements : x.portals;
      auto it = names.find(std::string(target));
      if (it == names.end()) {
        return fail(kind == 'S' ? "26000" : "34000",
                    std::string(kind == 'S' ? "prepared statement \"" : "portal \"") +
                        std::string(target) + "\" does not exist");
      }
      std::string text = it->second;
      if (type == proto::fe::kExecute) {
        if (starts_with_word(text, "DEALLOCATE")) {
          proto::write_command_complete(io.out.synth(), deallocate(&x, text));
          break;
        }
        console_run(text, ConsoleExtended::Run::Execute);
        return;
      }
      if (kind == 'S') {  // ParameterDescription: no parameters
        proto::MessageWriter(io.out.synth()).begin('t').u16(0).finish();
      }
      (void)io.out.commit_synth(mark);
      // Only what returns rows is run to learn its columns (SHOW has no side effects).
      if (starts_with_word(text, "SHOW") || starts_with_word(text, "SELECT")) {
        console_run(text, ConsoleExtended::Run::Describe);
        return;
      }
      mark = io.out.synth_mark();
      write_simple(io.out.synth(), 'n');  // NoData
      break;
    }
    case proto::fe::kClose: {
      auto c = proto::CloseView::decode(body);
      if (!c) return malformed();
      (c->statement() ? x.statements : x.portals).erase(std::string(c->name));
      write_simple(io.out.synth(), '3');  // CloseComplete
      break;
    }
    default:
      break;
  }
  (void)io.out.commit_synth(mark);
}

// Runs a console command for a Describe or an Execute; its replies are filtered when it is done
// (at once, or from finish_admin_query).
void Client::console_run(const std::string& sql, ConsoleExtended::Run mode) {
  ConsoleExtended& x = *console_ext_;
  x.out.clear();
  x.running = mode;
  bool done = worker.shared().admin->handle_query(*this, sql, x.out);
  if (state == ClientState::Closed) return;
  if (!done) {
    admin_pending_ = true;  // input waits until finish_admin_query
    return;
  }
  console_run_done();
}

// A Describe keeps the command's RowDescription (NoData if it has none); an Execute keeps all
// but it (rows, tag, notices). An error ends the batch until Sync.
void Client::console_run_done() {
  ConsoleExtended& x = *console_ext_;
  ConsoleExtended::Run mode = x.running;
  x.running = ConsoleExtended::Run::None;
  std::string kept;
  bool described = false;
  bool error = false;
  std::string_view all = x.out;
  while (all.size() >= proto::kHeaderLen) {
    std::size_t wire = std::size_t{proto::read_be32(all.data() + 1)} + 1;
    if (wire < proto::kHeaderLen || wire > all.size()) break;  // the console writes whole ones
    std::string_view m = all.substr(0, wire);
    all.remove_prefix(wire);
    char type = m[0];
    if (type == 'E') error = true;
    bool keep = mode == ConsoleExtended::Run::Describe ? (type == 'T' && !described) || type == 'E'
                                                       : type != 'T';
    if (type == 'T') described = true;
    if (keep) kept.append(m);
  }
  if (mode == ConsoleExtended::Run::Describe && !described && !error) write_simple(kept, 'n');
  x.out.clear();
  if (error) x.skip_to_sync = true;
  io.out.add_synth(kept);
}

}  // namespace sluice::session
