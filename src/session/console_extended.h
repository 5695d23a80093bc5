// What an admin console client has prepared through the extended query protocol: statement
// texts by name, portals bound to them, and the command running for a Describe or Execute.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace sluice::session {

struct ConsoleExtended {
  // More than a driver ever keeps (psycopg 3: 100); past it Parse is refused (54000).
  static constexpr std::size_t kMaxNames = 1000;

  std::unordered_map<std::string, std::string> statements;  // name -> text
  std::unordered_map<std::string, std::string> portals;     // name -> its statement's text
  bool skip_to_sync = false;  // an error: messages up to the next Sync are dropped

  // The console command started for a Describe (its RowDescription is kept) or an Execute (its
  // rows, tag and errors are kept), and its replies so far (it may answer later).
  enum class Run : std::uint8_t { None, Describe, Execute };
  Run running = Run::None;
  std::string out;
};

}  // namespace sluice::session
