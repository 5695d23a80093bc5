// Affinity (issues 9 and 10): a released server prefers a waiter whose session state it holds,
// then one on its own worker, but never passes the oldest waiter over once it has waited
// affinity_wait.
#include "pool/settings.h"
#include "pool_fixture.h"

namespace sluice::pool::testing {
namespace {

class Affinity : public PoolTest {
 protected:
  // One server of pool `p` on worker 0, linked (Active), as a client would hold it.
  ServerConn* linked_server(Pool& p, TestWaiter& holder) {
    EXPECT_EQ(checkout(p, holder), nullptr);
    ServerConn* s = complete();
    EXPECT_EQ(holder.take(), s);
    return s;
  }
};

TEST_F(Affinity, ReleasedServerGoesToTheWaiterWithItsSettingsWithinTheBound) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0\naffinity_wait = 0.005");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = linked_server(p, waiter());
  SettingsPtr a = make_settings({{"application_name", "a"}});
  SettingsPtr b = make_settings({{"application_name", "b"}});
  s->settings = b;
  TestWaiter& wa = waiter();
  wa.affinity_key = a.get();
  TestWaiter& wb = waiter();
  wb.affinity_key = b.get();
  EXPECT_EQ(checkout(p, wa), nullptr);
  EXPECT_EQ(checkout(p, wb), nullptr);
  clock_.advance(1000);  // the oldest has waited 1 ms < 5 ms
  mgr_->release(*s, worker(0));
  EXPECT_EQ(wb.take(), s) << "the waiter whose settings the server holds";
  EXPECT_EQ(wa.assigned, nullptr);
  EXPECT_EQ(p.affinity_picks, 1u);
  // The next release goes to the one left, whatever its state.
  mgr_->release(*s, worker(0));
  EXPECT_EQ(wa.take(), s);
}

TEST_F(Affinity, OldestWaiterIsServedOnceItHasWaitedTheBound) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0\naffinity_wait = 0.005");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = linked_server(p, waiter());
  SettingsPtr a = make_settings({{"application_name", "a"}});
  SettingsPtr b = make_settings({{"application_name", "b"}});
  s->settings = b;
  TestWaiter& wa = waiter();
  wa.affinity_key = a.get();
  EXPECT_EQ(checkout(p, wa), nullptr);
  clock_.advance(5000);
  TestWaiter& wb = waiter();
  wb.affinity_key = b.get();
  EXPECT_EQ(checkout(p, wb), nullptr);
  mgr_->release(*s, worker(0));
  EXPECT_EQ(wa.take(), s) << "5 ms is the most the oldest waiter may be passed over";
  EXPECT_EQ(p.affinity_picks, 0u);
}

TEST_F(Affinity, ZeroIsStrictFifo) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0\naffinity_wait = 0");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = linked_server(p, waiter());
  SettingsPtr b = make_settings({{"application_name", "b"}});
  s->settings = b;
  TestWaiter& wa = waiter();
  TestWaiter& wb = waiter();
  wb.affinity_key = b.get();
  EXPECT_EQ(checkout(p, wa), nullptr);
  EXPECT_EQ(checkout(p, wb), nullptr);
  mgr_->release(*s, worker(0));
  EXPECT_EQ(wa.take(), s);
}

TEST_F(Affinity, SameStatePrefersTheServersOwnWorker) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0\naffinity_wait = 0.005");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = linked_server(p, waiter());
  TestWaiter& other = waiter();  // on worker 1, oldest
  TestWaiter& here = waiter();   // on worker 0, where the server is
  EXPECT_EQ(checkout(p, other, 1), nullptr);
  EXPECT_EQ(checkout(p, here, 0), nullptr);
  mgr_->release(*s, worker(0));
  EXPECT_EQ(here.take(), s) << "no move between threads when the oldest may wait";
  EXPECT_EQ(other.assigned, nullptr);
}

TEST_F(Affinity, StateMatchOutweighsTheWorker) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0\naffinity_wait = 0.005");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = linked_server(p, waiter());
  SettingsPtr b = make_settings({{"application_name", "b"}});
  s->settings = b;
  TestWaiter& here = waiter();  // worker 0, other settings
  TestWaiter& far = waiter();   // worker 1, the server's settings
  far.affinity_key = b.get();
  EXPECT_EQ(checkout(p, here, 0), nullptr);
  EXPECT_EQ(checkout(p, far, 1), nullptr);
  mgr_->release(*s, worker(0));
  drain_loops();  // the move to worker 1 is a posted task
  EXPECT_EQ(far.take(), s);
  EXPECT_EQ(s->worker, &worker(1));
}

TEST_F(Affinity, CheckoutTakesTheIdleServerThatHoldsTheClientsSettings) {
  configure("app = dbname=app pool_size=3", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  TestWaiter& h1 = waiter();
  TestWaiter& h2 = waiter();
  TestWaiter& h3 = waiter();
  EXPECT_EQ(checkout(p, h1), nullptr);
  EXPECT_EQ(checkout(p, h2), nullptr);
  EXPECT_EQ(checkout(p, h3), nullptr);
  ServerConn* s1 = complete();
  ServerConn* s2 = complete();
  ServerConn* s3 = complete();
  ASSERT_EQ(h1.take(), s1);
  ASSERT_EQ(h2.take(), s2);
  ASSERT_EQ(h3.take(), s3);
  SettingsPtr b = make_settings({{"search_path", "b"}});
  s2->settings = b;
  mgr_->release(*s1, worker(0));
  mgr_->release(*s2, worker(0));
  mgr_->release(*s3, worker(0));
  TestWaiter& wb = waiter();
  wb.affinity_key = b.get();
  EXPECT_EQ(checkout(p, wb), s2);
  TestWaiter& plain = waiter();
  EXPECT_EQ(checkout(p, plain), s1) << "without a match, the least recently used";
}

TEST_F(Affinity, MaintenanceOpensANewServerOnTheWorkerOfTheWaiterItIsFor) {
  configure("app = dbname=app pool_size=2", "server_check_delay = 0\nserver_login_retry = 1");
  Pool& p = used_pool("app", "alice");
  TestWaiter& w = waiter();
  EXPECT_EQ(checkout(p, w, 1), nullptr);
  ASSERT_EQ(connector_.opens.size(), 1u);
  fail(false);  // a network failure: the waiter keeps waiting, the next try waits for the retry
  drain_loops();
  EXPECT_EQ(connector_.opens.size(), 1u);
  clock_.advance(2 * kSecond);
  mgr_->maintain_global(worker(0));  // maintenance runs on worker 0
  drain_loops();                     // the open is posted to the waiter's worker
  ASSERT_EQ(connector_.opens.size(), 2u);
  EXPECT_EQ(connector_.opens[1].worker, &worker(1));
}

}  // namespace
}  // namespace sluice::pool::testing
