// The cheap first look at statement text: does it deserve the real parser?
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::sql {

// Scans NUL-terminated text of unknown length (a Query's or a Parse message's query) from
// `text` up to the NUL or `limit`, whichever comes first, in one pass 16 bytes at a time, and
// answers "may this text touch session state?" in a few dozen instructions for ordinary
// queries: it looks only at the first word of each statement (after the start and after each
// ';') and at what comes before each '('. False positives only cost a parse (cached).
// Words: SET RESET DISCARD LISTEN UNLISTEN LOAD PREPARE EXECUTE DEALLOCATE DECLARE CLOSE
// CREATE DROP DO CALL EXPLAIN; functions: set_config, pg_advisory_*, pg_try_advisory_*.
struct TextScan {
  std::size_t length;  // bytes before the NUL (or up to limit: then there is no NUL)
  bool terminated;     // a NUL was found before limit
  bool needs_parse;
};
[[nodiscard]] TextScan scan_text(const char* text, const char* limit);

// The same over text of known length.
[[nodiscard]] inline bool needs_parse(std::string_view text) {
  return scan_text(text.data(), text.data() + text.size()).needs_parse;
}

}  // namespace sluice::sql
