// What statement text does to session state, from the real Postgres parser (libpg_query).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sql {

// Effects of one Query (or one Parse) text on the state a session keeps on its server. The
// relay never trusts these for transaction state (ReadyForQuery is the truth, I3); they only
// say what to look at on the server when the transaction is over.
struct Effects {
  bool settings = false;  // SET, RESET, DISCARD ALL, set_config(), SET ROLE, DO, CALL: read back
  bool state = false;     // may create or drop pin-worthy state: probe the server afterwards
  const char* pin_reason = nullptr;  // what it may create: "advisory lock", "listen", ...
  bool load = false;                 // LOAD: the session can never be shared again
  bool discard_all = false;          // DISCARD ALL: also drops prepared statements
  bool deallocate_all = false;       // DEALLOCATE ALL
  bool parse_error = false;          // the server will refuse it; nothing to track

  // SQL-level prepared statements, in statement order, to match CommandComplete tags.
  enum class Op : std::uint8_t { Prepare, Deallocate, DeallocateAll, DiscardAll };
  struct SqlPrepared {
    Op op;
    std::string name;  // Prepare/Deallocate
    std::string text;  // Prepare: the PREPARE statement itself, to replay on another server
  };
  std::vector<SqlPrepared> prepared_ops;
  std::vector<std::string> executes;  // EXECUTE names: the server must have them first
  // Custom settings ("app.tenant") named by SET/RESET or set_config() with a literal name, lower
  // case. Postgres hides them from pg_settings: the read-back asks for each by name.
  std::vector<std::string> custom_settings;

  [[nodiscard]] bool any() const {
    return settings || state || load || discard_all || deallocate_all || !prepared_ops.empty() ||
           !executes.empty();
  }
};

// Parses `text` (may hold several statements). Thread-safe.
[[nodiscard]] std::shared_ptr<const Effects> classify(std::string_view text);

// needs_parse() first, then classify() through a process-wide cache keyed by the full text.
// Returns nullptr when the text cannot touch session state (the common case).
[[nodiscard]] std::shared_ptr<const Effects> effects_of(std::string_view text);
// The same when the caller already knows needs_parse(text) is true.
[[nodiscard]] std::shared_ptr<const Effects> effects_of_parsed(std::string_view text);

}  // namespace sluice::sql
