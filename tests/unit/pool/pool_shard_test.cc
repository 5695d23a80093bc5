// Pool shards (issue 10, the step after the lock model): a checkout that finds an idle server of
// its own worker, and a release that puts one back, while nobody waits, take only that worker's
// shard lock; everything else (waiters, a PAUSE, a server due to close) goes through the manager.
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "pool_fixture.h"

namespace sluice::pool::testing {
namespace {

class Shards : public PoolTest {
 protected:
  // An idle server of `p` on each of `on` (all opened at once: each on its waiter's worker).
  std::vector<ServerConn*> idle_servers(Pool& p, const std::vector<int>& on) {
    std::vector<TestWaiter*> ws;
    std::vector<ServerConn*> out;
    for (int w : on) {
      ws.push_back(&waiter());
      EXPECT_EQ(checkout(p, *ws.back(), w), nullptr);
    }
    for (std::size_t i = 0; i < on.size(); ++i)
      complete();
    for (std::size_t i = 0; i < on.size(); ++i) {
      ServerConn* s = ws[i]->take();
      EXPECT_NE(s, nullptr);
      if (s != nullptr) mgr_->release(*s, worker(on[i]));
      EXPECT_EQ(s != nullptr ? s->state.get() : ServerState::Closed, ServerState::Idle);
      out.push_back(s);
    }
    return out;
  }

  // An idle server of `p` on worker `on`.
  ServerConn* idle_server(Pool& p, int on) { return idle_servers(p, {on}).front(); }

  // Runs `fn` on this thread while another thread holds the manager lock; true if `fn` ended
  // before that thread let go (it holds the lock for at most 5 s).
  template <typename Fn>
  bool runs_while_manager_locked(Fn&& fn) {
    std::promise<void> locked;
    std::promise<void> done;
    std::shared_future<void> done_f = done.get_future().share();
    std::thread holder([&] {
      mgr_->with_lock([&] {
        locked.set_value();
        (void)done_f.wait_for(std::chrono::seconds(5));
      });
    });
    locked.get_future().wait();
    fn();
    // Ended before the holder gave the lock up, unless the holder timed out.
    bool before = done_f.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
    auto t0 = std::chrono::steady_clock::now();
    done.set_value();
    holder.join();
    // A checkout that had to wait for the lock ran only after the 5 s: measured here.
    return before && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4);
  }
};

TEST_F(Shards, CheckoutAndReleaseOfAnIdleServerDoNotTakeTheManagerLock) {
  configure("app = dbname=app pool_size=2", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = idle_server(p, 1);
  TestWaiter& c = waiter();
  auto t0 = std::chrono::steady_clock::now();
  ServerConn* got = nullptr;
  EXPECT_TRUE(runs_while_manager_locked([&] {
    got = checkout(p, c, 1);
    if (got != nullptr) mgr_->release(*got, worker(1));
  }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4))
      << "the checkout waited for the manager lock";
  EXPECT_EQ(got, s);
  EXPECT_EQ(s->state, ServerState::Idle);
  EXPECT_EQ(p.idle_count(), 1);
  EXPECT_EQ(p.active(), 0);
  check_budget();
}

TEST_F(Shards, ACheckoutOnAnotherWorkerDoesNotTakeThisWorkersIdleServerWithoutTheManager) {
  configure("app = dbname=app pool_size=2", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = idle_server(p, 1);
  TestWaiter& c = waiter();
  // Worker 0 has no idle server: it queues (manager) and worker 1 is asked to serve it.
  EXPECT_EQ(checkout(p, c, 0), nullptr);
  EXPECT_TRUE(c.queued || c.assigned != nullptr);
  drain_loops();
  EXPECT_EQ(c.assigned, s) << "worker 1 handed its idle server over";
  EXPECT_EQ(s->worker, &worker(0));
  EXPECT_EQ(s->state, ServerState::Active);
}

TEST_F(Shards, AReleaseWhileSomeoneWaitsGoesToTheWaiter) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0\naffinity_wait = 0");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = idle_server(p, 0);
  TestWaiter& holder = waiter();
  ASSERT_EQ(checkout(p, holder, 0), s);
  TestWaiter& next = waiter();
  EXPECT_EQ(checkout(p, next, 0), nullptr);
  ASSERT_TRUE(next.queued);
  EXPECT_EQ(p.waiters.waiting(), 1);
  mgr_->release(*s, worker(0));
  EXPECT_EQ(next.take(), s) << "not parked idle past a waiter";
  EXPECT_EQ(p.waiters.waiting(), 0);
  EXPECT_EQ(s->state, ServerState::Active);
  mgr_->release(*s, worker(0));
  check_budget();
}

TEST_F(Shards, PausedPoolsTakeTheManagerPath) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = idle_server(p, 0);
  TestWaiter& c = waiter();
  ASSERT_EQ(checkout(p, c, 0), s);
  mgr_->pause("app", &worker(0));
  EXPECT_EQ(mgr_->busy_servers("app"), 1);
  // Released while paused: closed, not parked idle by the shard path.
  mgr_->release(*s, worker(0));
  drain_loops();
  EXPECT_EQ(p.idle_count(), 0);
  EXPECT_EQ(mgr_->busy_servers("app"), 0);
  EXPECT_EQ(p.servers, 0);
  // A new client while paused waits (no idle server is taken behind the PAUSE).
  TestWaiter& d = waiter();
  EXPECT_EQ(checkout(p, d, 0), nullptr);
  EXPECT_TRUE(d.queued);
  EXPECT_TRUE(mgr_->resume("app", worker(0)));
}

TEST_F(Shards, ASuspendedPoolKeepsItsIdleServerFromNewTransactions) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = idle_server(p, 0);
  mgr_->suspend();
  TestWaiter& c = waiter();
  EXPECT_EQ(checkout(p, c, 0), nullptr) << "SUSPEND holds new transactions";
  EXPECT_TRUE(c.queued);
  EXPECT_EQ(s->state, ServerState::Idle);
  EXPECT_TRUE(mgr_->resume("", worker(0)));
  drain_loops();
  EXPECT_EQ(c.take(), s);
  mgr_->release(*s, worker(0));
}

TEST_F(Shards, AServerDueToCloseTakesTheManagerPath) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  ServerConn* s = idle_server(p, 0);
  TestWaiter& c = waiter();
  ASSERT_EQ(checkout(p, c, 0), s);
  s->close_requested = true;  // what a client does after state it cannot reset
  mgr_->release(*s, worker(0));
  drain_loops();
  EXPECT_EQ(p.idle_count(), 0);
  EXPECT_EQ(p.servers, 0);
}

// Two workers each check out and release their own idle servers at once (no waiter): the
// shard paths run in parallel and leave every count exact (ThreadSanitizer runs this too).
TEST_F(Shards, TwoWorkersInParallelKeepTheCountsExact) {
  configure("app = dbname=app pool_size=4", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  idle_servers(p, {0, 0, 1, 1});
  ASSERT_EQ(p.idle_count(), 4);
  auto spin = [&](int on) {
    TestWaiter& w = waiters_.at(static_cast<std::size_t>(on));
    int got = 0;
    for (int i = 0; i < 20000; ++i) {
      w.pool = &p;
      ServerConn* s = mgr_->checkout(p, w, worker(on));
      if (s == nullptr) {
        (void)mgr_->cancel_wait(p, w);
        continue;
      }
      ++got;
      EXPECT_EQ(s->worker, &worker(on));
      mgr_->release(*s, worker(on));
    }
    return got;
  };
  std::future<int> other = std::async(std::launch::async, spin, 1);
  int mine = spin(0);
  EXPECT_EQ(mine, 20000);
  EXPECT_EQ(other.get(), 20000);
  EXPECT_EQ(p.idle_count(), 4);
  EXPECT_EQ(p.active(), 0);
  EXPECT_EQ(p.shard(0).idle.size(), 2u);
  EXPECT_EQ(p.shard(1).idle.size(), 2u);
  check_budget();
}

}  // namespace
}  // namespace sluice::pool::testing

namespace sluice::pool::testing {
namespace {

// One server, two workers on two threads, each taking it in turn: every checkout that finds it
// busy queues, and every release must find that waiter, even when the release takes the shard
// path at the moment the other thread queues (the wait and the idle server are published in
// an order that lets one of the two see the other). A lost wake-up shows as a waiter never
// served within 5 s.
TEST_F(Shards, AWaiterQueuingWhileTheServerIsReleasedIsNeverLost) {
  configure("app = dbname=app pool_size=1", "server_check_delay = 0\naffinity_wait = 0");
  Pool& p = used_pool("app", "alice");
  idle_servers(p, {0});
  TestWaiter& w0 = waiter();
  TestWaiter& w1 = waiter();
  w0.pool = w1.pool = &p;
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  auto turns = [&](int on, TestWaiter& me) {
    started.fetch_add(1);
    while (started.load() < 2) {
    }
    int lost = 0;
    // Until the server has changed workers 2,000 times (or 4 s on a loaded machine).
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    while (lost == 0 && p.totals().server_moves < 2000 && std::chrono::steady_clock::now() < end) {
      ServerConn* s = mgr_->checkout(p, me, worker(on));
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (s == nullptr) {
        worker(on).loop().run_once(1);  // hand-offs arrive as posted tasks
        if (me.assignments > 0 && me.assigned != nullptr) {
          s = me.take();
          me.assignments = 0;
        } else if (std::chrono::steady_clock::now() > deadline) {
          ++lost;
          break;
        }
      }
      if (s != nullptr) mgr_->release(*s, worker(on));
      worker(on).loop().run_once(0);  // a hand-off leaves after the batch
    }
    // Serve the other thread's kicks and hand-offs until it is done too.
    finished.fetch_add(1);
    while (finished.load() < 2)
      worker(on).loop().run_once(1);
    return lost;
  };
  std::future<int> other = std::async(std::launch::async, turns, 1, std::ref(w1));
  int lost0 = turns(0, w0);
  int lost1 = other.get();
  EXPECT_EQ(lost0 + lost1, 0) << "a waiter was never served";
  // The turns alternated: most went from one worker to the other.
  EXPECT_GT(p.totals().server_moves, 100u);
  drain_loops();
  drain_loops();
  EXPECT_EQ(p.servers, 1);
  EXPECT_EQ(p.waiters.waiting(), 0);
}

}  // namespace
}  // namespace sluice::pool::testing
