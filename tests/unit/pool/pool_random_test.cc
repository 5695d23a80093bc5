// Randomized PoolManager test: checkouts, connects, failures, releases, maintenance and clock
// steps over two workers in random order; the budget (I1) holds after every step and every
// waiter is served in the end.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <utility>
#include <vector>

#include "pool_fixture.h"

namespace sluice::pool::testing {
namespace {

class RandomOps : public PoolTest, public ::testing::WithParamInterface<unsigned> {
 protected:
  struct Held {
    ServerConn* server;
    int worker;
  };

  template <typename T>
  T* pick(std::vector<T*>& v) {
    if (v.empty()) return nullptr;
    return v[rng_() % v.size()];
  }

  void take_delivered() {
    for (auto& w : waiters_) {
      if (w.assigned != nullptr && w.assignments > taken_[&w]) {
        ++taken_[&w];
        int home = w.home->id();
        ServerConn* s = w.take();
        ASSERT_EQ(s->worker, &worker(home)) << "delivered on the waiter's worker";
        ASSERT_EQ(s->state, ServerState::Active);
        held_.push_back({s, home});
      }
    }
  }

  void step() {
    switch (rng_() % 13) {
      case 0:
      case 1: {
        Pool* p = pools_[rng_() % pools_.size()];
        TestWaiter& w = waiter(rng_() % 5 == 0);
        int on = static_cast<int>(rng_() % nworkers_);
        if (ServerConn* s = checkout(*p, w, on)) held_.push_back({s, on});
        break;
      }
      case 2:
        if (pending_opens() > 0) complete(pending_at(rng_() % pending_opens()));
        break;
      case 3:
        if (pending_opens() > 0) fail(rng_() % 3 == 0, "no", pending_at(rng_() % pending_opens()));
        break;
      case 4:
      case 5:
        if (!held_.empty()) {
          std::size_t i = rng_() % held_.size();
          Held h = held_[i];
          held_.erase(held_.begin() + static_cast<long>(i));
          if (rng_() % 4 == 0) {
            h.server->close("dirty", false);
          } else {
            mgr_->release(*h.server, worker(h.worker));
          }
        }
        break;
      case 6: {
        std::vector<TestWaiter*> queued;
        for (auto& w : waiters_) {
          if (w.queued) queued.push_back(&w);
        }
        if (TestWaiter* w = pick(queued)) {
          EXPECT_TRUE(mgr_->cancel_wait(*w->pool, *w));
        }
        break;
      }
      case 7:
        mgr_->maintain_worker(worker(static_cast<int>(rng_() % nworkers_)));
        break;
      case 8:
        mgr_->maintain_global(worker(0));
        break;
      case 9:
        clock_.advance(static_cast<core::Micros>(rng_() % 4) * kSecond);
        break;
      case 10:
        worker(static_cast<int>(rng_() % nworkers_)).loop().run_once(0);
        break;
      case 11:
        take_delivered();
        break;
      case 12: {  // an idle server dies (Postgres restarted, network gone)
        std::vector<ServerConn*> idle;
        worker(static_cast<int>(rng_() % nworkers_)).servers.for_each([&](ServerConn& s) {
          if (s.state == ServerState::Idle) idle.push_back(&s);
        });
        if (ServerConn* s = pick(idle)) s->close("server conn crashed?", false);
        break;
      }
    }
  }

  FakeConnector::Open* pending_at(std::size_t k) {
    for (auto& o : connector_.opens) {
      if (!o.done && k-- == 0) return &o;
    }
    return nullptr;
  }

  // Limits only: exact sums need the loops drained (servers in Handoff are on no list).
  void check_limits() {
    for (const auto& s : mgr_->pool_stats(clock_.now())) {
      ASSERT_LE(s.servers, s.pool_size + s.reserve_size) << s.database << "/" << s.user;
      ASSERT_GE(s.servers, 0);
      ASSERT_GE(s.sv_idle, 0);
      ASSERT_GE(s.sv_active, 0);
      ASSERT_GE(s.sv_login, 0);
    }
    for (const auto& g : mgr_->database_stats()) {
      if (g.max_servers > 0) {
        ASSERT_LE(g.servers, g.max_servers) << g.name;
      }
    }
    for (const auto& g : mgr_->user_stats()) {
      if (g.max_servers > 0) {
        ASSERT_LE(g.servers, g.max_servers) << g.name;
      }
    }
  }

  std::mt19937 rng_{GetParam()};
  std::vector<Pool*> pools_;
  std::vector<Held> held_;
  std::map<TestWaiter*, int> taken_;
};

TEST_P(RandomOps, BudgetHoldsAndEveryWaiterIsServed) {
  configure("d1 = pool_size=3 reserve_pool_size=1 max_db_connections=4\nd2 = pool_size=2",
            "reserve_pool_timeout = 2\nserver_login_retry = 3\nserver_idle_timeout = 20\n"
            "server_lifetime = 100\nserver_check_delay = 0",
            "u1 = max_user_connections=3");
  pools_ = {&used_pool("d1", "u1"), &used_pool("d1", "u2"), &used_pool("d2", "u1"),
            &used_pool("d2", "u2")};
  for (int i = 0; i < 3000; ++i) {
    step();
    check_limits();
    if (HasFatalFailure()) return;
  }
  drain_loops();
  take_delivered();
  check_budget();

  // No new clients: connects succeed, clients finish; every waiter must be served or failed.
  for (int round = 0; round < 60; ++round) {
    while (pending_opens() > 0)
      complete();
    drain_loops();
    take_delivered();
    for (const Held& h : held_)
      mgr_->release(*h.server, worker(h.worker));
    held_.clear();
    clock_.advance(4 * kSecond);
    mgr_->maintain_global(worker(0));
    for (int w = 0; w < nworkers_; ++w)
      mgr_->maintain_worker(worker(w));
    drain_loops();
    check_limits();
  }
  int stranded = 0;
  for (auto& w : waiters_)
    stranded += w.queued ? 1 : 0;
  EXPECT_EQ(stranded, 0) << "waiters never served";
  EXPECT_EQ(mgr_->total_waiting(), 0);
  check_budget();
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomOps, ::testing::Range(1u, 21u));

}  // namespace
}  // namespace sluice::pool::testing
