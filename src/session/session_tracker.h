// A client's session state in transaction pooling (design.md §3): the settings it wants on any
// server, what its statements may have changed (read back from the server after the
// transaction), its SQL-level prepared statements, its pin, and the session probe that reads the
// truth back. The tracker decides; its host (the Client) does the connection's I/O. The host is
// passed to the calls that need it rather than kept (8 bytes per client).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "pool/server_conn.h"
#include "pool/settings.h"
#include "session/client_session.h"
#include "sql/classify.h"

namespace sluice::session {

// What the tracker needs of its connection (Client implements it; unit tests fake it).
class TrackerHost {
 public:
  // Queues sluice's own simple Query on the linked server, counted in its request queue.
  virtual void tracker_inject(std::string_view sql) = 0;
  // Queues ReadyForQuery with `status` to the client (the one held during the probe).
  virtual void tracker_send_ready(char status) = 0;
  // Ends the connection (an ErrorResponse first when `sqlstate` is set).
  virtual void tracker_close(std::string_view reason, const char* sqlstate,
                             std::string_view message) = 0;
  // A pinned-server slot of the client's pool (max_pinned_servers): false when none is left.
  virtual bool tracker_try_pin() = 0;
  virtual void tracker_unpin() = 0;
  [[nodiscard]] virtual std::string tracker_log_prefix() const = 0;

 protected:
  ~TrackerHost() = default;
};

class SessionTracker {
 public:
  SessionTracker() = default;
  SessionTracker(const SessionTracker&) = delete;
  SessionTracker& operator=(const SessionTracker&) = delete;

  // What the pool asks for, at each link: classify statements, read back and pin (`tracking`,
  // not in session mode), rename protocol-level named statements (`prepared`).
  void configure(bool tracking, bool prepared) {
    tracking_ = tracking;
    prepared_ = prepared;
  }
  [[nodiscard]] bool tracking() const { return tracking_; }
  [[nodiscard]] bool prepared() const { return prepared_; }

  // ---- settings the client wants on any server
  [[nodiscard]] const pool::SettingsPtr& settings() const { return settings_; }
  void set_settings(pool::SettingsPtr s) { settings_ = std::move(s); }
  // The one query that makes `s` hold the client's settings; empty when it does already.
  [[nodiscard]] std::string replay_sql(const pool::ServerConn& s) const {
    return settings_ != s.settings ? pool::settings_sync_sql(settings_, s.settings) : std::string();
  }
  // The replay ran without error: `s` holds the client's settings.
  void replayed(pool::ServerConn& s) const { s.settings = settings_; }
  // A ParameterStatus from the linked server `s`: a tracked setting follows it exactly, on both
  // sides; a change of role or session user is read back after the transaction.
  void parameter_status(pool::ServerConn& s, std::string_view name, std::string_view value);

  // ---- what a statement changes
  enum class Verdict : std::uint8_t { Go, Refused };
  // Before a statement with effects `e` goes to `s`: prepares the server for it (SQL prepared
  // statements this client has or another left there), notes what to read back, takes the pin
  // slot for what would pin. Refused (`refusal` says why) when the pin limit is reached.
  Verdict apply_effects(TrackerHost& host, pool::ServerConn& s, const sql::Effects& e,
                        std::string& refusal);
  // What to read back after the transaction (and custom settings to ask for by name).
  void note_effects(const sql::Effects& e);
  // A text too large to inspect ran: assume the worst (read back everything, probe, and the
  // server is not shared again).
  void mark_uninspected();
  // Writes, in a refused statement's place on `s`, one that makes the server raise the error
  // (53300) with the same transaction outcome; a Parse keeps its name and parameter types.
  void write_refusal(pool::ServerConn& s, char type, std::string_view body, const std::string& why);
  // A CommandComplete of the client's request on `s`: PREPARE, DEALLOCATE, DISCARD ALL, LOAD.
  void on_command_tag(pool::ServerConn& s, std::string_view tag);
  // One of the client's requests ended (ReadyForQuery): SQL prepared-statement operations of
  // it whose tags never came failed.
  void request_done();

  // ---- the read-back after the transaction (the session probe)
  [[nodiscard]] bool read_back_owed() const {
    return sess_ != nullptr && (sess_->settings_dirty || sess_->state_check);
  }
  // The client's ReadyForQuery waits for the probe (nothing it sends next may overtake it).
  void hold_ready(char status) { held_rfq_ = status; }
  // Queues the probe on `s` (the caller flushes); its frames come to probe_frame.
  void start_probe(pool::ServerConn& s);
  [[nodiscard]] bool probing() const { return probing_; }
  // One frame of the probe's answer from `s`; true when the probe is over (the pin decided,
  // the settings taken, the held ReadyForQuery sent, or the client closed).
  bool probe_frame(TrackerHost& host, pool::ServerConn& s, char type, std::string_view body);

  // ---- pins
  [[nodiscard]] const char* pin_reason() const { return sess_ ? sess_->pin_reason : nullptr; }
  [[nodiscard]] core::Micros pinned_since() const { return sess_ ? sess_->pinned_since : 0; }
  [[nodiscard]] bool loaded() const { return sess_ != nullptr && sess_->loaded; }
  // The client is gone: a pin slot it holds goes back to the pool.
  void release_pin(TrackerHost& host);

  // ---- what a server needs before anyone else uses it
  // The client leaves while linked to `s`: appends what `s` must run (DISCARD ALL for a pinned
  // session) or marks it to be closed (a read-back owed); gives the pin back.
  void reset_on_close(TrackerHost& host, pool::ServerConn& s, std::vector<std::string>& sqls);
  // server_reset_query_always: the queries to run on `s` after the transaction, `reset_query`
  // completed so that what sluice believes `s` holds stays true.
  [[nodiscard]] std::vector<std::string> reset_sqls(pool::ServerConn& s,
                                                    const std::string& reset_query) const;

  // The client's session (prepared statements too: the relay's), allocated on first use.
  [[nodiscard]] ClientSession* session() const { return sess_.get(); }
  ClientSession& sess() {
    if (!sess_) sess_ = std::make_unique<ClientSession>();
    return *sess_;
  }

 private:
  void ensure_sql_prepared(TrackerHost& host, pool::ServerConn& s, const std::string& name);
  void finish_probe(TrackerHost& host, pool::ServerConn& s);

  pool::SettingsPtr settings_;           // session settings this client wants on any server
  std::unique_ptr<ClientSession> sess_;  // on first use
  bool tracking_ = false;
  bool prepared_ = false;
  bool probing_ = false;  // the session probe is in flight
  char held_rfq_ = 0;     // the client's ReadyForQuery, held during the probe
};

}  // namespace sluice::session
