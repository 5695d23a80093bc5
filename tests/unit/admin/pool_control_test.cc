// PoolManager's operator controls (PAUSE, SUSPEND, RESUME, RECONNECT, SWITCHOVER, DISABLE) and
// the snapshots the console reads, with the fake connector and clock of the pool tests.
#include "unit/pool/pool_fixture.h"

namespace sluice::pool::testing {
namespace {

class PoolControlTest : public PoolTest {
 protected:
  void SetUp() override {
    configure("appdb = host=10.0.0.1 port=5432 pool_size=2\nother = host=10.0.0.1 port=5432",
              "pool_mode = transaction\nserver_check_delay = 0");
  }
  // A server that served one transaction and is now idle in `p`.
  ServerConn* idle_server(Pool& p) {
    auto& w = waiter();
    EXPECT_EQ(checkout(p, w), nullptr);
    ServerConn* s = complete();
    drain_loops();
    EXPECT_EQ(w.take(), s);
    mgr_->release(*s, worker(0));
    return s;
  }
  // Only server connections hold targets in production; the fake connector's record of its
  // open() calls must not count as servers of an old target.
  void forget_done_targets() {
    for (auto& o : connector_.opens) {
      if (o.done) o.target.reset();
    }
  }
  int closing(Pool& p) {
    int n = 0;
    for (auto& w : workers_) {
      w->servers.for_each([&](ServerConn& s) { n += s.pool == &p ? 1 : 0; });
    }
    return n;
  }
};

TEST_F(PoolControlTest, PauseHoldsNewTransactionsAndClosesServersAsTheyAreReleased) {
  Pool& p = used_pool("appdb", "app");
  ServerConn* idle = idle_server(p);
  auto& busy_w = waiter();
  ServerConn* busy = checkout(p, busy_w);
  ASSERT_EQ(busy, idle);  // the idle one, at once

  ServerConn* second = nullptr;
  {
    auto& w2 = waiter();
    EXPECT_EQ(checkout(p, w2), nullptr);
    second = complete();
    drain_loops();
    EXPECT_EQ(w2.take(), second);
    mgr_->release(*second, worker(0));  // idle again
  }
  mgr_->pause("appdb", &worker(0));
  drain_loops();
  EXPECT_TRUE(mgr_->paused("appdb"));
  EXPECT_FALSE(mgr_->paused("other"));
  EXPECT_TRUE(logged("closing because: pause mode"));  // the idle one
  EXPECT_EQ(mgr_->busy_servers("appdb"), 1);           // the one inside a transaction

  // A new transaction waits, and no server is opened for it.
  int opens = static_cast<int>(connector_.opens.size());
  auto& late = waiter();
  EXPECT_EQ(checkout(p, late), nullptr);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(static_cast<int>(connector_.opens.size()), opens);
  EXPECT_EQ(late.assignments, 0);

  // The running transaction ends: its server is closed, not given to the waiter.
  mgr_->release(*busy, worker(0));
  drain_loops();
  EXPECT_EQ(mgr_->busy_servers("appdb"), 0);
  EXPECT_EQ(late.assignments, 0);
  EXPECT_EQ(closing(p), 0);

  // RESUME opens a connection for the waiter.
  EXPECT_TRUE(mgr_->resume("appdb", worker(0)));
  EXPECT_FALSE(mgr_->paused("appdb"));
  ASSERT_NE(next_open(), nullptr);
  ServerConn* fresh = complete();
  drain_loops();
  EXPECT_EQ(late.take(), fresh);
  EXPECT_FALSE(mgr_->resume("appdb", worker(0)));  // nothing paused any more
  check_budget();
}

TEST_F(PoolControlTest, SuspendHoldsTransactionsButKeepsServers) {
  Pool& p = used_pool("appdb", "app");
  ServerConn* s = idle_server(p);
  mgr_->suspend();
  EXPECT_TRUE(mgr_->suspended());
  auto& w = waiter();
  EXPECT_EQ(checkout(p, w), nullptr);  // the idle server is not handed out
  drain_loops();
  EXPECT_FALSE(logged("pause mode"));
  auto snap = mgr_->pool_snapshots(clock_.now());
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].sv_idle, 1);
  EXPECT_EQ(snap[0].cl_waiting, 1);
  EXPECT_TRUE(snap[0].paused);
  EXPECT_TRUE(mgr_->resume({}, worker(0)));
  drain_loops();
  EXPECT_EQ(w.take(), s);
}

TEST_F(PoolControlTest, GlobalPauseCoversEveryDatabase) {
  Pool& a = used_pool("appdb", "app");
  Pool& b = used_pool("other", "app");
  mgr_->pause({}, nullptr);  // off the worker threads: closes are posted
  EXPECT_TRUE(mgr_->paused({}));
  auto& wa = waiter();
  auto& wb = waiter();
  EXPECT_EQ(checkout(a, wa), nullptr);
  EXPECT_EQ(checkout(b, wb), nullptr);
  EXPECT_EQ(connector_.opens.size(), 0u);
  EXPECT_TRUE(mgr_->resume({}, worker(0)));
  EXPECT_EQ(pending_opens(), 2);
}

TEST_F(PoolControlTest, SwitchTargetRetargetsAndOldServersAreStaleUntilClosed) {
  Pool& p = used_pool("appdb", "app");
  ServerConn* old = idle_server(p);
  auto& w = waiter();
  ASSERT_EQ(checkout(p, w), old);  // linked, inside a transaction
  auto gen = p.target->generation;
  forget_done_targets();
  EXPECT_EQ(mgr_->stale_servers("appdb"), 0);

  mgr_->switch_target("appdb", {"10.0.0.2"}, 6543, worker(0));
  EXPECT_EQ(p.target->hosts, std::vector<std::string>{"10.0.0.2"});
  EXPECT_EQ(p.target->port, 6543);
  EXPECT_GT(p.target->generation, gen);
  EXPECT_EQ(mgr_->stale_servers("appdb"), 1);
  auto sw = mgr_->switched_target("appdb");
  ASSERT_TRUE(sw.has_value());
  EXPECT_EQ(sw->port, 6543);

  mgr_->release(*old, worker(0));  // closed, never reused
  drain_loops();
  EXPECT_TRUE(logged("database configuration changed"));
  EXPECT_EQ(mgr_->stale_servers("appdb"), 0);

  // New connections go to the new address.
  auto& w2 = waiter();
  EXPECT_EQ(checkout(p, w2), nullptr);
  ASSERT_NE(next_open(), nullptr);
  EXPECT_EQ(next_open()->target->port, 6543);
}

TEST_F(PoolControlTest, ReloadKeepsASwitchoverUntilTheFileChangesTheAddress) {
  Pool& p = used_pool("appdb", "app");
  mgr_->switch_target("appdb", {"10.0.0.2"}, 6543, worker(0));
  // Same file again (and a change elsewhere): the switchover stays.
  configure("appdb = host=10.0.0.1 port=5432 pool_size=3\nother = host=10.0.0.1 port=5432",
            "pool_mode = transaction");
  EXPECT_EQ(p.target->port, 6543);
  EXPECT_EQ(p.pool_size, 3);
  // The file moves appdb: it wins, and says so.
  configure("appdb = host=10.0.0.3 port=5432\nother = host=10.0.0.1 port=5432",
            "pool_mode = transaction");
  EXPECT_EQ(p.target->hosts, std::vector<std::string>{"10.0.0.3"});
  EXPECT_EQ(p.target->port, 5432);
  EXPECT_FALSE(mgr_->switched_target("appdb").has_value());
  EXPECT_TRUE(logged("replaces the switchover"));
}

TEST_F(PoolControlTest, SwitchingBackToTheFilesAddressForgetsTheSwitchover) {
  used_pool("appdb", "app");
  mgr_->switch_target("appdb", {"10.0.0.2"}, 6543, worker(0));
  mgr_->switch_target("appdb", {"10.0.0.1"}, 5432, worker(0));
  EXPECT_FALSE(mgr_->switched_target("appdb").has_value());
}

TEST_F(PoolControlTest, ReconnectMakesLinkedServersStale) {
  Pool& p = used_pool("appdb", "app");
  ServerConn* s = idle_server(p);
  auto& w = waiter();
  ASSERT_EQ(checkout(p, w), s);
  forget_done_targets();
  mgr_->reconnect("other", worker(0));
  EXPECT_EQ(mgr_->stale_servers("appdb"), 0);
  mgr_->reconnect("appdb", worker(0));
  EXPECT_EQ(mgr_->stale_servers("appdb"), 1);
  EXPECT_EQ(mgr_->stale_servers({}), 1);
  mgr_->release(*s, worker(0));
  drain_loops();
  EXPECT_EQ(mgr_->stale_servers("appdb"), 0);
}

TEST_F(PoolControlTest, DisableIsPerDatabase) {
  EXPECT_FALSE(mgr_->database_disabled("appdb"));
  mgr_->set_disabled("appdb", true);
  EXPECT_TRUE(mgr_->database_disabled("appdb"));
  EXPECT_FALSE(mgr_->database_disabled("other"));
  bool found = false;
  for (const auto& h : mgr_->database_health()) {
    if (h.name == "appdb") found = h.disabled;
  }
  EXPECT_TRUE(found);
  mgr_->set_disabled("appdb", false);
  EXPECT_FALSE(mgr_->database_disabled("appdb"));
}

TEST_F(PoolControlTest, SnapshotsCountStatesTrafficAndHistograms) {
  Pool& p = used_pool("appdb", "app");
  ServerConn* s = idle_server(p);
  (void)s;
  PoolCounters& pc = p.counters_of(worker(1));
  pc.xacts.add(3);
  pc.xact_time.add(150);      // le 250us
  pc.xact_time.add(2000000);  // le 2.5s
  pc.query_time.add(80);
  clock_.advance(kSecond);  // idle longer than server_check_delay (0 = never "used")
  auto snap = mgr_->pool_snapshots(clock_.now());
  ASSERT_EQ(snap.size(), 1u);
  const auto& v = snap[0];
  EXPECT_EQ(v.database, "appdb");
  EXPECT_EQ(v.sv_idle, 1);
  EXPECT_EQ(v.sv_used, 0);
  EXPECT_EQ(v.cl_active, 1);
  EXPECT_EQ(v.totals.xacts, 3u);
  EXPECT_EQ(v.totals.xact_time, 2000150u);
  EXPECT_EQ(v.histograms.xact.count(), 2u);
  EXPECT_EQ(v.histograms.xact.buckets[1], 1u);
  EXPECT_EQ(v.histograms.xact.buckets[13], 1u);
  EXPECT_EQ(v.histograms.query.buckets[0], 1u);
}

}  // namespace
}  // namespace sluice::pool::testing
