// The Client's side of its session state (the decisions are the SessionTracker's): sluice's own
// queries on the linked server, a refused statement, reported settings.
#include "core/log.h"
#include "proto/frontend.h"
#include "proto/writer.h"
#include "session/client.h"

namespace sluice::session {

void Client::inject_internal_query(std::string_view sql) {
  pool::ServerConn& s = *server;
  std::size_t mark = s.io.out.synth_mark();
  proto::write_query(s.io.out.synth(), sql);
  (void)s.io.out.commit_synth(mark);
  note_request(s, proto::fe::kQuery, RequestAction::Internal);
}

// Replaces a refused statement by one that makes the server raise the error, so that the
// transaction state ends up exactly as if the statement had failed there.
Client::Step Client::send_refusal(char type, std::string_view body, std::uint32_t wire,
                                  const std::string& why) {
  pool::ServerConn& s = *server;
  tracker_.write_refusal(s, type, body, why);
  note_request(s, type);
  turn_owed_ = false;
  core::log(core::LogLevel::Log, "{} refused: {}", log_prefix(), why);
  io.scan += wire;
  return Step::Next;
}

// A ParameterStatus while forwarding: reported settings follow the server exactly (SET, SET
// LOCAL and its revert at commit, RESET all report the new value).
void Client::parameter_status(std::string_view name, std::string_view value) {
  if (name == "application_name") application_name = std::string(value);
  tracker_.parameter_status(*server, name, value);
}

}  // namespace sluice::session
