// A client's session state in transaction/statement pooling: its prepared statements (protocol
// and SQL level), what it changed, what pins it. Allocated on first use only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "pool/prepared.h"
#include "sql/classify.h"

namespace sluice::session {

struct ClientSession {
  // Looks names up by string_view: a Bind finds its statement without building a string.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Protocol-level named statements: the client's name -> the registry's statement.
  std::unordered_map<std::string, pool::PreparedPtr, NameHash, std::equal_to<>> statements;
  // Those of them whose text may change session state (SET ROLE, set_config, advisory locks):
  // every execution (Bind) is followed by the read-back, not only the Parse. Usually empty.
  std::unordered_map<std::string, std::shared_ptr<const sql::Effects>, NameHash, std::equal_to<>>
      statement_effects;
  // SQL PREPARE: name -> the PREPARE statement that created it.
  std::unordered_map<std::string, std::string> sql_prepared;

  // SQL prepared-statement operations forwarded and waiting for their CommandComplete tags, in
  // order; those of a request that ended before its tag came (an error) are dropped.
  struct PendingOp {
    std::uint64_t rfq_seq;  // the request (Query or Sync) they belong to
    sql::Effects::Op op;
    std::string name;
    std::string text;
  };
  std::deque<PendingOp> pending_ops;

  // Server statements registered when their Parse was sent, confirmed by ParseComplete or
  // forgotten on error, in order (the queue entry of such a Parse carries kTrackedParse).
  std::deque<std::uint64_t> pending_parses;

  // Responses sluice makes up (ParseComplete, CloseComplete, errors), by queue synth id.
  std::deque<std::pair<std::uint32_t, std::string>> synth;
  std::uint32_t next_synth = 1;

  // Requests forwarded / answered that end in ReadyForQuery (client's own, not sluice's).
  std::uint64_t rfq_sent = 0;
  std::uint64_t rfq_done = 0;

  // Custom settings ("app.tenant") this client has named: Postgres hides them from pg_settings,
  // so the read-back asks for each. Past kMaxCustomSettings names a read-back cannot be complete,
  // and the server it ran on is closed instead of shared.
  std::vector<std::string> custom_settings;
  bool custom_overflow = false;
  static constexpr std::size_t kMaxCustomSettings = 64;

  // After the transaction: read settings back / probe for pin-worthy state.
  bool settings_dirty = false;
  bool state_check = false;
  bool uninspected = false;  // a text too large to inspect ran: the server is not shared again

  // "cached plan must not change result type" (0A000) after DDL: a batch that starts with a
  // Bind of a named statement outside a transaction is copied as sent, so that it can be sent
  // again after re-preparing (once), if the server refuses it before answering anything.
  struct Retry {
    bool capturing = false;  // copying the batch being sent
    bool armed = false;      // the batch is complete (Sync sent) and may be retried
    bool described = false;  // the batch asks for a fresh RowDescription
    bool pending = false;    // the server refused it: swallow until its ReadyForQuery, resend
    pool::PreparedPtr statement;
    std::string bytes;  // the batch as sent to the server
    std::string types;  // its message types, for the request queue
    [[nodiscard]] bool active() const { return capturing || armed || pending; }
    // Forgets the batch; the buffers keep their memory (a batch per transaction is the common
    // case with named statements) unless it grew large.
    void reset() {
      capturing = armed = described = pending = false;
      statement.reset();
      if (bytes.capacity() > 1024) std::string().swap(bytes);
      bytes.clear();
      types.clear();
    }
  } retry;
  static constexpr std::size_t kMaxRetryBytes = 64 * 1024;

  // The session probe in flight (pool::session_probe_sql): what it has read so far.
  std::vector<std::pair<std::string, std::string>> probe_settings;
  int probe_columns = 0;
  bool probe_failed = false;
  bool probe_has_state = false;
  const char* probe_reason = nullptr;

  // Pins (design.md §3): reason, since when, whether a pool slot is held for it.
  const char* pin_reason = nullptr;
  core::Micros pinned_since = 0;
  bool pin_counted = false;
  bool loaded = false;  // LOAD: never shareable again
};

}  // namespace sluice::session
