// session::SessionTracker: the decisions over real statement classification (what a statement's
// effects mean: go, refuse, pin, read back), and its I/O over a real socket pair standing for
// the server connection (the probe query sent, the server's answer frames read, a refusal sent
// in a statement's place). The host (what Client is to the tracker) is the seam faked here.
#include "session/session_tracker.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "pool/pool.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/frontend.h"
#include "proto/writer.h"
#include "session/session_worker.h"
#include "unit/net/socket_pair.h"
#include "unit/session/wire_messages.h"

namespace sluice::session {
namespace {

using net::testing::SocketPair;
using testing::Message;
using testing::split_messages;

std::shared_ptr<const sql::Effects> effects(std::string_view text) {
  return sql::effects_of(text);
}

// What Client is to the tracker: the queries it injects, the ReadyForQuery it sends, closes, the
// pool's pinned-server slots.
class FakeHost final : public TrackerHost {
 public:
  void tracker_inject(std::string_view sql) override { injected.emplace_back(sql); }
  void tracker_send_ready(char status) override { ready.push_back(status); }
  void tracker_close(std::string_view reason, const char* sqlstate,
                     std::string_view message) override {
    ++closes;
    close_reason = std::string(reason);
    close_sqlstate = sqlstate != nullptr ? sqlstate : "";
    close_message = std::string(message);
  }
  bool tracker_try_pin() override {
    if (pin_slots == 0) return false;
    --pin_slots;
    ++pins;
    return true;
  }
  void tracker_unpin() override {
    ++pin_slots;
    --pins;
  }
  [[nodiscard]] std::string tracker_log_prefix() const override { return "C-test:"; }

  std::vector<std::string> injected;
  std::string ready;
  int closes = 0;
  std::string close_reason;
  std::string close_sqlstate;
  std::string close_message;
  int pin_slots = 10;
  int pins = 0;  // slots held
};

class SessionTrackerTest : public ::testing::Test {
 protected:
  SessionTrackerTest() : worker_(0, 4096, shared_), pool_("app", "alice", 1) {
    auto r = config::parse("[databases]\n* = host=127.0.0.1 port=1\n[pgbouncer]\n", ".");
    EXPECT_TRUE(r.ok()) << r.error();
    if (r.ok()) {
      shared_.publish_config(*r);
      worker_.sync_config();
    }
    server_ = std::make_unique<pool::ServerConn>(pool_, worker_);
    server_->io.fd = pair_.a();
    auto target = std::make_shared<pool::ConnectTarget>();
    target->user = "alice";
    server_->target = target;
    tracker_.configure(/*tracking=*/true, /*prepared=*/true);
  }
  ~SessionTrackerTest() override {
    worker_.servers.remove(*server_);
    worker_.buffers().release(server_->io.in);
    server_->io.out.clear();
    server_->io.fd = -1;  // the pair closes it
  }

  // The statement `text` is about to go to the server.
  SessionTracker::Verdict apply(std::string_view text, std::string* refusal = nullptr) {
    auto e = effects(text);
    EXPECT_NE(e, nullptr) << text;
    std::string why;
    auto v = e ? tracker_.apply_effects(host_, *server_, *e, why) : SessionTracker::Verdict::Go;
    if (refusal != nullptr) *refusal = why;
    return v;
  }

  ClientSession& ss() { return *tracker_.session(); }

  // What the tracker queued on the server connection, as the server receives it.
  std::vector<Message> server_receives() {
    int err = 0;
    EXPECT_EQ(server_->io.flush(err), net::Outbox::Flush::Done);
    return split_messages(SocketPair::drain(pair_.b()));
  }

  // The server answers `bytes`; its frames are handed to the probe as the relay's scan does.
  // Returns the number of frames taken before the probe said it was over.
  int server_answers_probe(const std::string& bytes) {
    SocketPair::write_all(pair_.b(), bytes);
    std::size_t got = 0;
    while (got < bytes.size()) {
      auto r = server_->io.read(worker_.buffers());
      EXPECT_EQ(r.kind, net::IoResult::Kind::Data);
      if (r.kind != net::IoResult::Kind::Data) return -1;
      got += r.n;
    }
    int frames = 0;
    while (server_->io.unscanned() > 0) {
      proto::Header h;
      auto hs = proto::decode_header(server_->io.scan_ptr(), server_->io.unscanned(),
                                     proto::kMaxBackendBulk, h);
      EXPECT_EQ(hs, proto::HeaderStatus::Ok);
      if (hs != proto::HeaderStatus::Ok) return -1;
      std::string_view body(server_->io.scan_ptr() + proto::kHeaderLen, h.body_size());
      server_->io.scan += h.wire();
      ++frames;
      if (tracker_.probe_frame(host_, *server_, h.type, body)) return frames;
    }
    return -frames;  // not over
  }

  // The probe's answer: the settings result set, then the state counts (advisory locks,
  // listens, temp tables, holdable cursors), then ReadyForQuery.
  static std::string probe_answer(const std::vector<std::pair<std::string, std::string>>& settings,
                                  std::optional<std::vector<std::string>> state) {
    std::string out;
    proto::write_row_description(out, {{"name", 25}, {"setting", 25}});
    for (const auto& [k, v] : settings)
      proto::write_data_row(out, {k, v});
    proto::write_command_complete(out, "SELECT " + std::to_string(settings.size()));
    if (state) {
      proto::write_row_description(out, {{"a", 20}, {"l", 20}, {"t", 20}, {"c", 20}});
      std::vector<std::optional<std::string>> row(state->begin(), state->end());
      proto::write_data_row(out, row);
      proto::write_command_complete(out, "SELECT 1");
    }
    proto::write_ready_for_query(out, 'I');
    return out;
  }

  Shared shared_;
  SessionWorker worker_;
  pool::Pool pool_;
  SocketPair pair_;
  std::unique_ptr<pool::ServerConn> server_;
  FakeHost host_;
  SessionTracker tracker_;
};

// ---------------------------------------------------------------- decisions

TEST_F(SessionTrackerTest, SetOwesASettingsReadBackAndNoPin) {
  EXPECT_FALSE(tracker_.read_back_owed());
  EXPECT_EQ(apply("SET search_path = app"), SessionTracker::Verdict::Go);
  EXPECT_TRUE(tracker_.read_back_owed());
  EXPECT_TRUE(ss().settings_dirty);
  EXPECT_FALSE(ss().state_check);
  EXPECT_EQ(tracker_.pin_reason(), nullptr);
  EXPECT_EQ(host_.pins, 0);
  EXPECT_TRUE(host_.injected.empty());
}

TEST_F(SessionTrackerTest, SetLocalOwesNothing) {
  // It ends with its transaction: nothing outlives it on the server.
  if (auto e = effects("SET LOCAL search_path = app")) {
    std::string why;
    EXPECT_EQ(tracker_.apply_effects(host_, *server_, *e, why), SessionTracker::Verdict::Go);
  }
  EXPECT_FALSE(tracker_.read_back_owed());
}

TEST_F(SessionTrackerTest, ResetAllOwesASettingsReadBack) {
  EXPECT_EQ(apply("RESET ALL"), SessionTracker::Verdict::Go);
  EXPECT_TRUE(ss().settings_dirty);
  EXPECT_FALSE(ss().state_check);
}

TEST_F(SessionTrackerTest, DiscardAllReadsEverythingBackAndForgetsPreparedStatementsOnItsTag) {
  ASSERT_EQ(apply("PREPARE q AS SELECT 1"), SessionTracker::Verdict::Go);
  tracker_.on_command_tag(*server_, "PREPARE");
  ASSERT_EQ(ss().sql_prepared.count("q"), 1u);
  ASSERT_EQ(server_->sql_prepared->count("q"), 1u);
  EXPECT_EQ(apply("DISCARD ALL"), SessionTracker::Verdict::Go);
  EXPECT_TRUE(ss().settings_dirty);
  EXPECT_TRUE(ss().state_check);
  tracker_.on_command_tag(*server_, "DISCARD ALL");
  EXPECT_TRUE(ss().sql_prepared.empty());
  EXPECT_TRUE(server_->sql_prepared->empty());
  EXPECT_TRUE(ss().pending_ops.empty());
}

TEST_F(SessionTrackerTest, AdvisoryLockTakesAPinSlotAndOwesAProbe) {
  EXPECT_EQ(apply("SELECT pg_advisory_lock(42)"), SessionTracker::Verdict::Go);
  EXPECT_EQ(host_.pins, 1);
  EXPECT_TRUE(ss().pin_counted);
  EXPECT_TRUE(ss().state_check);
  EXPECT_TRUE(tracker_.read_back_owed());
  EXPECT_EQ(tracker_.pin_reason(), nullptr);  // pinned only once the probe sees the lock
  // A second one does not take another slot.
  EXPECT_EQ(apply("SELECT pg_advisory_lock(43)"), SessionTracker::Verdict::Go);
  EXPECT_EQ(host_.pins, 1);
}

TEST_F(SessionTrackerTest, PinWorthyStatementPastThePinLimitIsRefused) {
  host_.pin_slots = 0;
  std::string why;
  EXPECT_EQ(apply("LISTEN jobs", &why), SessionTracker::Verdict::Refused);
  EXPECT_NE(why.find("too many pinned connections"), std::string::npos) << why;
  EXPECT_NE(why.find("listen"), std::string::npos) << why;
  EXPECT_NE(why.find("max_pinned_servers"), std::string::npos) << why;
  EXPECT_FALSE(tracker_.read_back_owed());  // it does not run: nothing to read back
}

TEST_F(SessionTrackerTest, ListenAndTempTablesOweAProbe) {
  EXPECT_EQ(apply("LISTEN jobs"), SessionTracker::Verdict::Go);
  EXPECT_TRUE(ss().state_check);
  EXPECT_EQ(host_.pins, 1);
  SessionTracker other;
  other.configure(true, true);
  auto e = effects("CREATE TEMP TABLE t (x int)");
  ASSERT_NE(e, nullptr);
  std::string why;
  EXPECT_EQ(other.apply_effects(host_, *server_, *e, why), SessionTracker::Verdict::Go);
  EXPECT_TRUE(other.session()->state_check);
  EXPECT_FALSE(other.session()->settings_dirty);
}

TEST_F(SessionTrackerTest, ExecuteReplaysTheClientsPrepareOnAServerThatLacksIt) {
  ASSERT_EQ(apply("PREPARE q AS SELECT 1"), SessionTracker::Verdict::Go);
  tracker_.on_command_tag(*server_, "PREPARE");
  EXPECT_TRUE(host_.injected.empty());  // this server has it
  ASSERT_EQ(apply("EXECUTE q"), SessionTracker::Verdict::Go);
  EXPECT_TRUE(host_.injected.empty());
  // Another server, which never saw it: the PREPARE is replayed first.
  server_->sql_prepared->clear();
  ASSERT_EQ(apply("EXECUTE q"), SessionTracker::Verdict::Go);
  ASSERT_EQ(host_.injected.size(), 1u);
  EXPECT_EQ(host_.injected[0], "PREPARE q AS SELECT 1");
}

TEST_F(SessionTrackerTest, AnotherClientsStatementOfTheSameNameIsDroppedBeforeExecute) {
  server_->sql_prepared = std::make_unique<std::unordered_map<std::string, std::string>>();
  (*server_->sql_prepared)["q"] = "PREPARE q AS SELECT 'other'";
  ASSERT_EQ(apply("EXECUTE q"), SessionTracker::Verdict::Go);
  ASSERT_EQ(host_.injected.size(), 1u);
  EXPECT_EQ(host_.injected[0], "DEALLOCATE \"q\"");
  EXPECT_EQ(server_->sql_prepared->count("q"), 0u);
}

TEST_F(SessionTrackerTest, APrepareWhoseRequestFailedIsForgotten) {
  ASSERT_EQ(apply("PREPARE q AS SELECT 1"), SessionTracker::Verdict::Go);
  ASSERT_EQ(ss().pending_ops.size(), 1u);
  ++ss().rfq_sent;  // the Query went out
  tracker_.request_done();
  EXPECT_TRUE(ss().pending_ops.empty());
  tracker_.on_command_tag(*server_, "PREPARE");  // a later tag is not this one's
  EXPECT_TRUE(ss().sql_prepared.empty());
}

TEST_F(SessionTrackerTest, DeallocateForgetsOnBothSidesOnItsTag) {
  ASSERT_EQ(apply("PREPARE q AS SELECT 1"), SessionTracker::Verdict::Go);
  tracker_.on_command_tag(*server_, "PREPARE");
  ASSERT_EQ(apply("DEALLOCATE q"), SessionTracker::Verdict::Go);
  EXPECT_TRUE(host_.injected.empty());          // the server has it: nothing to replay first
  EXPECT_EQ(ss().sql_prepared.count("q"), 1u);  // not before the server said so
  tracker_.on_command_tag(*server_, "DEALLOCATE");
  EXPECT_EQ(ss().sql_prepared.count("q"), 0u);
  EXPECT_EQ(server_->sql_prepared->count("q"), 0u);
}

TEST_F(SessionTrackerTest, LoadPinsForGoodOnceTheProbeHasRun) {
  ASSERT_EQ(apply("LOAD 'auto_explain'"), SessionTracker::Verdict::Go);
  EXPECT_EQ(host_.pins, 1);
  tracker_.on_command_tag(*server_, "LOAD");
  EXPECT_TRUE(tracker_.loaded());
  tracker_.start_probe(*server_);
  (void)server_receives();
  ASSERT_GT(server_answers_probe(probe_answer({}, {{"0", "0", "0", "0"}})), 0);
  EXPECT_STREQ(tracker_.pin_reason(), "load");  // nothing the probe sees, still pinned
  EXPECT_EQ(host_.pins, 1);
}

TEST_F(SessionTrackerTest, CustomSettingsPastSixtyFourOverflow) {
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(apply("SET app.k" + std::to_string(i) + " = 'v'"), SessionTracker::Verdict::Go);
  }
  EXPECT_EQ(ss().custom_settings.size(), ClientSession::kMaxCustomSettings);
  EXPECT_FALSE(ss().custom_overflow);
  ASSERT_EQ(apply("SET app.k0 = 'again'"), SessionTracker::Verdict::Go);  // already known
  EXPECT_FALSE(ss().custom_overflow);
  ASSERT_EQ(apply("SET app.k64 = 'v'"), SessionTracker::Verdict::Go);
  EXPECT_TRUE(ss().custom_overflow);
  EXPECT_EQ(ss().custom_settings.size(), ClientSession::kMaxCustomSettings);
}

TEST_F(SessionTrackerTest, ARoleChangeReportedByTheServerOwesAReadBack) {
  tracker_.parameter_status(*server_, "is_superuser", "off");
  EXPECT_TRUE(tracker_.read_back_owed());
  // A tracked setting follows the server on both sides; an untracked one is ignored.
  tracker_.parameter_status(*server_, "TimeZone", "UTC");
  ASSERT_NE(pool::find_setting(tracker_.settings(), "TimeZone"), nullptr);
  EXPECT_EQ(*pool::find_setting(tracker_.settings(), "TimeZone"), "UTC");
  EXPECT_EQ(*pool::find_setting(server_->settings, "TimeZone"), "UTC");
  tracker_.parameter_status(*server_, "search_path", "x");
  EXPECT_EQ(pool::find_setting(tracker_.settings(), "search_path"), nullptr);
}

TEST_F(SessionTrackerTest, ReplayIsNeededOnlyWhenTheServerDiffers) {
  EXPECT_TRUE(tracker_.replay_sql(*server_).empty());
  tracker_.set_settings(pool::make_settings({{"TimeZone", "UTC"}}));
  std::string sql = tracker_.replay_sql(*server_);
  EXPECT_NE(sql.find("set_config('timezone', 'UTC', false)"), std::string::npos) << sql;
  tracker_.replayed(*server_);
  EXPECT_TRUE(tracker_.replay_sql(*server_).empty());
}

TEST_F(SessionTrackerTest, ResetQueryIsCompletedSoThatWhatTheServerHoldsStaysKnown) {
  server_->settings = pool::make_settings({{"TimeZone", "UTC"}});
  auto sqls = tracker_.reset_sqls(*server_, "RESET ALL");
  EXPECT_EQ(sqls, (std::vector<std::string>{"RESET ALL", "RESET ALL", "RESET SESSION AUTHORIZATION",
                                            "RESET ROLE"}));
  EXPECT_EQ(server_->settings, nullptr);
  server_->settings = pool::make_settings({{"TimeZone", "UTC"}});
  EXPECT_EQ(tracker_.reset_sqls(*server_, "DISCARD ALL"),
            (std::vector<std::string>{"DISCARD ALL"}));
  EXPECT_EQ(server_->settings, nullptr);
  // Not tracking: the query as configured, nothing assumed.
  server_->settings = pool::make_settings({{"TimeZone", "UTC"}});
  tracker_.configure(false, false);
  EXPECT_EQ(tracker_.reset_sqls(*server_, "RESET ALL"), (std::vector<std::string>{"RESET ALL"}));
  EXPECT_NE(server_->settings, nullptr);
}

TEST_F(SessionTrackerTest, LeavingWithAReadBackOwedClosesTheServer) {
  ASSERT_EQ(apply("SET ROLE bob"), SessionTracker::Verdict::Go);
  std::vector<std::string> sqls;
  tracker_.reset_on_close(host_, *server_, sqls);
  EXPECT_TRUE(server_->close_requested);
  EXPECT_TRUE(sqls.empty());
}

TEST_F(SessionTrackerTest, LeavingPinnedDiscardsTheSessionAndGivesTheSlotBack) {
  ASSERT_EQ(apply("SELECT pg_advisory_lock(1)"), SessionTracker::Verdict::Go);
  ASSERT_EQ(host_.pins, 1);
  std::vector<std::string> sqls;
  server_->requests.set_tx_status('T');
  tracker_.reset_on_close(host_, *server_, sqls);
  EXPECT_EQ(sqls, (std::vector<std::string>{"DISCARD ALL"}));
  EXPECT_FALSE(server_->close_requested);
  EXPECT_EQ(host_.pins, 0);
  EXPECT_FALSE(ss().pin_counted);
}

// ---------------------------------------------------------------- the probe, over the socket

TEST_F(SessionTrackerTest, ProbeReadsSettingsBackAndPinsOnAnAdvisoryLock) {
  ASSERT_EQ(apply("SET search_path = app"), SessionTracker::Verdict::Go);
  ASSERT_EQ(apply("SET app.tenant = 't1'"), SessionTracker::Verdict::Go);
  ASSERT_EQ(apply("SELECT pg_advisory_lock(7)"), SessionTracker::Verdict::Go);
  tracker_.hold_ready('I');
  tracker_.start_probe(*server_);
  EXPECT_TRUE(tracker_.probing());
  EXPECT_GT(server_->internal_deadline, 0);
  auto sent = server_receives();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].type, 'Q');
  EXPECT_NE(sent[0].body.find("app.tenant"), std::string::npos);  // custom settings by name
  EXPECT_NE(sent[0].body.find("pg_locks"), std::string::npos);
  EXPECT_TRUE(host_.ready.empty());  // held until the answer
  int frames = server_answers_probe(
      probe_answer({{"search_path", "app"}, {"app.tenant", "t1"}}, {{"1", "0", "0", "0"}}));
  EXPECT_EQ(frames, 8);
  EXPECT_FALSE(tracker_.probing());
  EXPECT_FALSE(tracker_.read_back_owed());
  ASSERT_NE(pool::find_setting(tracker_.settings(), "search_path"), nullptr);
  EXPECT_EQ(*pool::find_setting(tracker_.settings(), "app.tenant"), "t1");
  EXPECT_EQ(server_->settings, tracker_.settings());
  ASSERT_NE(tracker_.pin_reason(), nullptr);
  EXPECT_STREQ(tracker_.pin_reason(), "advisory lock");
  EXPECT_GT(tracker_.pinned_since(), 0);
  EXPECT_EQ(host_.pins, 1);
  EXPECT_EQ(host_.ready, "I");
  EXPECT_EQ(host_.closes, 0);
  EXPECT_FALSE(server_->close_requested);
}

TEST_F(SessionTrackerTest, ProbeUnpinsWhenTheStateIsGone) {
  ASSERT_EQ(apply("LISTEN jobs"), SessionTracker::Verdict::Go);
  tracker_.start_probe(*server_);
  (void)server_receives();
  ASSERT_GT(server_answers_probe(probe_answer({}, {{"0", "1", "0", "0"}})), 0);
  EXPECT_STREQ(tracker_.pin_reason(), "listen");
  ASSERT_EQ(apply("UNLISTEN *"), SessionTracker::Verdict::Go);
  tracker_.start_probe(*server_);
  (void)server_receives();
  // The state query only (no settings asked): one result set.
  std::string answer;
  proto::write_row_description(answer, {{"a", 20}, {"l", 20}, {"t", 20}, {"c", 20}});
  proto::write_data_row(answer, {"0", "0", "0", "0"});
  proto::write_command_complete(answer, "SELECT 1");
  proto::write_ready_for_query(answer, 'I');
  ASSERT_GT(server_answers_probe(answer), 0);
  EXPECT_EQ(tracker_.pin_reason(), nullptr);
  EXPECT_EQ(host_.pins, 0);
  EXPECT_FALSE(ss().pin_counted);
}

TEST_F(SessionTrackerTest, FailedProbeClosesTheServerAndTheClientAfterItsAnswer) {
  ASSERT_EQ(apply("SET search_path = app"), SessionTracker::Verdict::Go);
  tracker_.hold_ready('I');
  tracker_.start_probe(*server_);
  (void)server_receives();
  std::string answer;
  proto::write_error(answer, {proto::Severity::Error, "57014", "canceling statement"});
  proto::write_ready_for_query(answer, 'I');
  EXPECT_EQ(server_answers_probe(answer), 2);
  EXPECT_TRUE(server_->close_requested);
  EXPECT_EQ(host_.ready, "I");  // the client's request was answered: that first
  EXPECT_EQ(host_.closes, 1);
  EXPECT_EQ(host_.close_sqlstate, proto::sqlstate::kConnectionFailure);
}

TEST_F(SessionTrackerTest, StateFoundWithNoPinSlotLeftClosesTheClient) {
  // State no statement named (a function may create a temp table): found by the probe only.
  ASSERT_EQ(apply("DISCARD TEMP"), SessionTracker::Verdict::Go);
  EXPECT_EQ(host_.pins, 0);
  host_.pin_slots = 0;
  tracker_.start_probe(*server_);
  (void)server_receives();
  ASSERT_GT(server_answers_probe(probe_answer({}, {{"0", "0", "1", "0"}})), 0);
  EXPECT_EQ(host_.closes, 1);
  EXPECT_EQ(host_.close_sqlstate, proto::sqlstate::kTooManyConnections);
  EXPECT_NE(host_.close_message.find("temp table"), std::string::npos) << host_.close_message;
}

TEST_F(SessionTrackerTest, CustomSettingsOverflowClosesTheServerAfterTheProbe) {
  for (int i = 0; i <= 64; ++i) {
    ASSERT_EQ(apply("SET app.k" + std::to_string(i) + " = 'v'"), SessionTracker::Verdict::Go);
  }
  tracker_.start_probe(*server_);
  (void)server_receives();
  ASSERT_GT(server_answers_probe(probe_answer({}, std::nullopt)), 0);
  EXPECT_TRUE(server_->close_requested);
  EXPECT_EQ(host_.closes, 0);
}

TEST_F(SessionTrackerTest, UninspectedTextMeansTheServerIsNotShared) {
  tracker_.mark_uninspected();
  EXPECT_TRUE(tracker_.read_back_owed());
  tracker_.start_probe(*server_);
  auto sent = server_receives();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_NE(sent[0].body.find("pg_settings"), std::string::npos);  // settings
  EXPECT_NE(sent[0].body.find("pg_locks"), std::string::npos);     // and state
  std::string answer = probe_answer({}, {{"0", "0", "0", "0"}});
  ASSERT_GT(server_answers_probe(answer), 0);
  EXPECT_TRUE(server_->close_requested);
  EXPECT_EQ(host_.closes, 0);
  EXPECT_EQ(tracker_.pin_reason(), nullptr);
}

TEST_F(SessionTrackerTest, LeavingAfterAnUninspectedTextClosesTheServer) {
  tracker_.mark_uninspected();
  std::vector<std::string> sqls;
  server_->requests.set_tx_status('T');
  tracker_.reset_on_close(host_, *server_, sqls);
  EXPECT_TRUE(server_->close_requested);
}

// ---------------------------------------------------------------- refusals, over the socket

TEST_F(SessionTrackerTest, ARefusedQueryIsReplacedByOneThatRaises53300) {
  host_.pin_slots = 0;
  std::string why;
  ASSERT_EQ(apply("SELECT pg_advisory_lock(1)", &why), SessionTracker::Verdict::Refused);
  tracker_.write_refusal(*server_, proto::fe::kQuery, {}, why);
  auto sent = server_receives();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].type, 'Q');
  EXPECT_NE(sent[0].body.find("RAISE EXCEPTION '" + why + "'"), std::string::npos) << sent[0].body;
  EXPECT_NE(sent[0].body.find("ERRCODE = '53300'"), std::string::npos);
  EXPECT_EQ(ss().rfq_sent, 1u);  // it is the client's request, answered by the server
}

TEST_F(SessionTrackerTest, ARefusedParseKeepsItsNameAndParameterTypes) {
  std::string parse;
  proto::MessageWriter(parse)
      .begin(proto::fe::kParse)
      .cstring("s1")
      .cstring("SELECT pg_advisory_lock($1)")
      .bytes(std::string_view("\0\1\0\0\0\x14", 6))
      .finish();
  std::string_view body(parse.data() + proto::kHeaderLen, parse.size() - proto::kHeaderLen);
  tracker_.write_refusal(*server_, proto::fe::kParse, body, "no");
  auto sent = server_receives();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].type, 'P');
  std::string_view b = sent[0].body;
  EXPECT_EQ(b.substr(0, 3), std::string_view("s1\0", 3));
  EXPECT_NE(b.find("RAISE EXCEPTION 'no' USING ERRCODE = '53300'"), std::string::npos);
  EXPECT_EQ(b.substr(b.size() - 6), std::string_view("\0\1\0\0\0\x14", 6));
  EXPECT_EQ(tracker_.session(), nullptr);  // a Parse is no request of its own
}

}  // namespace
}  // namespace sluice::session
