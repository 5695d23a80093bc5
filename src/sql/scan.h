// The cheap first look at statement text: does it deserve the real parser?
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::sql {

// Answers "may this text touch session state?" in a few dozen instructions for ordinary
// queries: it looks only at the first word of each statement (after the start and after each
// ';') and at the identifier before each '('. False positives only cost a parse (cached).
// Words: SET RESET DISCARD LISTEN UNLISTEN LOAD PREPARE EXECUTE DEALLOCATE DECLARE CLOSE
// CREATE DROP DO CALL; functions: set_config, pg_advisory_*, pg_try_advisory_*.
// `text` must be followed by a NUL byte (text.data()[text.size()] == 0).
[[nodiscard]] bool needs_parse(std::string_view text);

// The same over NUL-terminated text of unknown length (a Parse message's query): scans from
// `text` up to the NUL or `limit`, whichever comes first, in one pass 16 bytes at a time.
struct TextScan {
  std::size_t length;  // bytes before the NUL (or up to limit: then there is no NUL)
  bool terminated;     // a NUL was found before limit
  bool needs_parse;
};
[[nodiscard]] TextScan scan_text(const char* text, const char* limit);

}  // namespace sluice::sql
