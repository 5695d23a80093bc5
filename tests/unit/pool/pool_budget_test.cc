// Tests for PoolManager's global budget (I1): pool_size, max_db/user_connections, eviction,
// min_pool_size and reserve_pool, with a fake connector and a fake clock.
#include <gtest/gtest.h>

#include <vector>

#include "pool_fixture.h"

namespace sluice::pool::testing {
namespace {

using Budget = PoolTest;

TEST_F(Budget, PoolSizeIsNeverExceededAndWaitersAreServedInOrder) {
  configure("app = dbname=app pool_size=3", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  std::vector<TestWaiter*> ws;
  for (int i = 0; i < 5; ++i) {
    ws.push_back(&waiter());
    EXPECT_EQ(checkout(p, *ws.back()), nullptr);
    check_budget();
  }
  EXPECT_EQ(connector_.count(p), 3);
  EXPECT_EQ(p.servers, 3);
  EXPECT_EQ(p.connecting, 3);
  EXPECT_EQ(p.waiters.size(), 5u);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.opens.size(), 3u) << "maintenance opens nothing past pool_size";

  // Servers go to waiters oldest first.
  ServerConn* s0 = complete();
  ServerConn* s1 = complete();
  ServerConn* s2 = complete();
  check_budget();
  ASSERT_EQ(order_, (std::vector<TestWaiter*>{ws[0], ws[1], ws[2]}));
  EXPECT_EQ(ws[0]->assigned, s0);
  EXPECT_EQ(ws[1]->assigned, s1);
  EXPECT_EQ(ws[2]->assigned, s2);
  EXPECT_EQ(s0->state, ServerState::Active);
  EXPECT_EQ(p.connecting, 0);
  EXPECT_EQ(p.active(), 3);
  EXPECT_EQ(p.waiters.size(), 2u);

  // A released server goes to the oldest waiter.
  mgr_->release(*ws[1]->take(), worker(0));
  ASSERT_EQ(order_.size(), 4u);
  EXPECT_EQ(order_[3], ws[3]);
  EXPECT_EQ(ws[3]->assigned, s1);
  mgr_->release(*ws[0]->take(), worker(0));
  ASSERT_EQ(order_.size(), 5u);
  EXPECT_EQ(ws[4]->assigned, s0);
  EXPECT_TRUE(p.waiters.empty());
  check_budget();

  // No waiters: idle, and the next checkout on the same worker gets it at once.
  mgr_->release(*ws[2]->take(), worker(0));
  EXPECT_EQ(s2->state, ServerState::Idle);
  EXPECT_EQ(p.idle_count(), 1);
  EXPECT_EQ(p.active(), 2);
  TestWaiter& late = waiter();
  EXPECT_EQ(checkout(p, late), s2);
  EXPECT_EQ(s2->state, ServerState::Active);
  EXPECT_FALSE(late.queued);
  EXPECT_EQ(late.assignments, 0);
  EXPECT_EQ(p.idle_count(), 0);
  EXPECT_EQ(p.active(), 3);
  EXPECT_EQ(connector_.opens.size(), 3u);
  check_budget();
}

TEST_F(Budget, LaunchesOnlyWhatWaitersNeed) {
  configure("app = pool_size=10", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  TestWaiter& a = waiter();
  checkout(p, a);
  EXPECT_EQ(connector_.count(p), 1);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 1) << "one waiter, one connection on its way";
  TestWaiter& b = waiter();
  checkout(p, b);
  EXPECT_EQ(connector_.count(p), 2);
}

TEST_F(Budget, MaxDbConnectionsIsExactAcrossPoolsOfOneDatabase) {
  configure("app = pool_size=5 max_db_connections=3", "server_check_delay = 0");
  Pool& p1 = used_pool("app", "u1");
  Pool& p2 = used_pool("app", "u2");
  std::vector<TestWaiter*> w1, w2;
  for (int i = 0; i < 3; ++i) {
    w1.push_back(&waiter());
    checkout(p1, *w1.back());
  }
  for (int i = 0; i < 2; ++i) {
    w2.push_back(&waiter());
    checkout(p2, *w2.back());
    check_budget();
  }
  EXPECT_EQ(connector_.count(p1), 3);
  EXPECT_EQ(connector_.count(p2), 0);
  EXPECT_EQ(mgr_->total_servers(), 3);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.opens.size(), 3u);
  for (int i = 0; i < 3; ++i)
    complete();
  for (auto* w : w1)
    mgr_->release(*w->take(), worker(0));
  EXPECT_EQ(p1.idle_count(), 3);
  EXPECT_EQ(p2.waiters.size(), 2u);
  check_budget();

  // The blocked pool takes idle servers of the other pool, one per maintenance round.
  mgr_->maintain_global(worker(0));
  EXPECT_TRUE(logged("closing because: evicted"));
  EXPECT_EQ(p1.servers, 2);
  EXPECT_EQ(p1.idle_count(), 2);
  EXPECT_EQ(connector_.count(p2), 1);
  check_budget();
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(p1.servers, 1);
  EXPECT_EQ(connector_.count(p2), 2);
  check_budget();
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(p1.servers, 1) << "both waiters have a connection coming: nothing more to evict";
  EXPECT_EQ(connector_.count(p2), 2);
  complete();
  complete();
  EXPECT_EQ(w2[0]->assigned != nullptr, true);
  EXPECT_EQ(w2[1]->assigned != nullptr, true);
  check_budget();
}

TEST_F(Budget, MaxUserConnectionsIsExactAcrossPoolsOfOneUser) {
  configure("d1 = pool_size=5\nd2 = pool_size=5", "server_check_delay = 0",
            "bob = max_user_connections=2");
  Pool& p1 = used_pool("d1", "bob");
  Pool& p2 = used_pool("d2", "bob");
  Pool& other = used_pool("d2", "carol");
  TestWaiter& a = waiter();
  TestWaiter& b = waiter();
  TestWaiter& c = waiter();
  TestWaiter& d = waiter();
  checkout(p1, a);
  checkout(p1, b);
  checkout(p2, c);
  checkout(other, d);
  EXPECT_EQ(connector_.count(p1), 2);
  EXPECT_EQ(connector_.count(p2), 0) << "bob is at max_user_connections";
  EXPECT_EQ(connector_.count(other), 1) << "another user is not limited by bob's limit";
  check_budget();
  complete();
  complete();
  mgr_->release(*a.take(), worker(0));
  mgr_->release(*b.take(), worker(0));
  EXPECT_EQ(p1.idle_count(), 2);
  // Bob's blocked pool evicts an idle server of bob's other pool.
  mgr_->maintain_global(worker(0));
  EXPECT_TRUE(logged("closing because: evicted"));
  EXPECT_EQ(p1.servers, 1);
  EXPECT_EQ(connector_.count(p2), 1);
  check_budget();
}

// A freed slot (a server closing) lets a pool of the same database that was blocked open one.
TEST_F(Budget, ClosingAServerLetsABlockedPoolOfTheSameDatabaseOpen) {
  configure("app = pool_size=5 max_db_connections=1", "server_check_delay = 0");
  Pool& p1 = used_pool("app", "u1");
  Pool& p2 = used_pool("app", "u2");
  TestWaiter& a = waiter();
  TestWaiter& b = waiter();
  checkout(p1, a);
  checkout(p2, b);
  EXPECT_EQ(connector_.opens.size(), 1u);
  ServerConn* s = complete();
  ASSERT_EQ(a.take(), s);
  s->close("client went away", false);  // e.g. a dirty server closed instead of released
  EXPECT_EQ(connector_.count(p2), 1);
  check_budget();
}

TEST_F(Budget, NoEvictionForMinPoolSize) {
  configure("app = pool_size=5 max_db_connections=2 min_pool_size=2", "server_check_delay = 0");
  Pool& p1 = used_pool("app", "u1");
  TestWaiter& a = waiter();
  TestWaiter& b = waiter();
  checkout(p1, a);
  checkout(p1, b);
  complete();
  complete();
  mgr_->release(*a.take(), worker(0));
  mgr_->release(*b.take(), worker(0));
  Pool& p2 = used_pool("app", "u2");  // below its min_pool_size, no waiters
  for (int i = 0; i < 3; ++i)
    mgr_->maintain_global(worker(0));
  EXPECT_EQ(p1.idle_count(), 2);
  EXPECT_EQ(p2.servers, 0);
  EXPECT_FALSE(logged("evicted"));
  EXPECT_EQ(connector_.opens.size(), 2u);
  check_budget();
}

TEST_F(Budget, MinPoolSizeIsKeptWarmOnlyOnceThePoolHadClients) {
  configure("app = min_pool_size=2", "server_check_delay = 0");
  Pool& p = pool("app", "alice");
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 0) << "no client yet";
  mgr_->pool_client_added(p);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 1);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 2);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 2) << "connections on their way count";
  complete();
  complete();
  EXPECT_EQ(p.idle_count(), 2);
  // The client leaving does not stop it.
  mgr_->pool_client_removed(p);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 2);
  check_budget();
}

TEST_F(Budget, MinPoolSizeOfAForcedUserDatabaseStartsWithoutClients) {
  configure("forced = user=svc min_pool_size=2\nplain = min_pool_size=2", "server_check_delay = 0");
  mgr_->maintain_global(worker(0));
  mgr_->maintain_global(worker(0));
  ASSERT_EQ(connector_.opens.size(), 2u);
  for (const auto& o : connector_.opens) {
    EXPECT_EQ(o.pool->db_name, "forced");
    EXPECT_EQ(o.pool->user_name, "svc");
    EXPECT_EQ(o.target->user, "svc");
  }
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.opens.size(), 2u);
}

TEST_F(Budget, MinPoolSizeRespectsTheDatabaseLimit) {
  configure("app = min_pool_size=3 max_db_connections=2", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  for (int i = 0; i < 5; ++i)
    mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 2);
  check_budget();
}

TEST_F(Budget, ReservePoolOpensAfterReservePoolTimeout) {
  configure("app = pool_size=2 reserve_pool_size=1",
            "reserve_pool_timeout = 5\nserver_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  for (int i = 0; i < 4; ++i)
    checkout(p, waiter());
  EXPECT_EQ(connector_.count(p), 2);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 2);
  clock_.advance(4 * kSecond);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 2) << "the oldest waiter has waited 4s of 5";
  clock_.advance(1 * kSecond);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 3);
  EXPECT_TRUE(logged("taking connection from reserve_pool"));
  check_budget();
  clock_.advance(10 * kSecond);
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 3) << "reserve_pool_size is a limit too";
  for (int i = 0; i < 3; ++i)
    complete();
  EXPECT_EQ(p.active(), 3);
  EXPECT_EQ(p.waiters.size(), 1u);
  check_budget();
}

TEST_F(Budget, ReservePoolRespectsTheDatabaseLimit) {
  configure("app = pool_size=2 reserve_pool_size=2 max_db_connections=3",
            "reserve_pool_timeout = 1\nserver_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  for (int i = 0; i < 5; ++i)
    checkout(p, waiter());
  clock_.advance(2 * kSecond);
  mgr_->maintain_global(worker(0));
  mgr_->maintain_global(worker(0));
  EXPECT_EQ(connector_.count(p), 3);
  check_budget();
}

}  // namespace
}  // namespace sluice::pool::testing
