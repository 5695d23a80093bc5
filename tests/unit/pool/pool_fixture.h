// Test fixture for PoolManager: fake connector, fake clock, real workers, recording waiters.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "pool/connector.h"
#include "pool/pool.h"
#include "pool/registries.h"
#include "pool/server_conn.h"
#include "pool/worker_base.h"

namespace sluice::pool::testing {

// Records open() calls instead of connecting.
class FakeConnector final : public Connector {
 public:
  struct Open {
    Pool* pool;
    std::shared_ptr<const ConnectTarget> target;
    WorkerBase* worker;
    bool done = false;
  };
  void open(Pool& p, std::shared_ptr<const ConnectTarget> target, WorkerBase& w) override {
    opens.push_back({&p, std::move(target), &w});
  }
  [[nodiscard]] int count(const Pool& p) const {
    int n = 0;
    for (const auto& o : opens)
      n += o.pool == &p ? 1 : 0;
    return n;
  }
  std::deque<Open> opens;
};

// A client waiting for a server: records what the manager tells it. Like Client, it takes the
// assigned server later (take()), outside on_assignment.
class TestWaiter final : public Waiter {
 public:
  explicit TestWaiter(std::vector<TestWaiter*>* order) : order_(order) {}
  void on_assignment() override {
    ++assignments;
    if (order_ != nullptr) order_->push_back(this);
  }
  void on_login_failed(std::string error_body) override {
    login_failures.push_back(std::move(error_body));
  }
  // What Client::on_deferred does with a delivered assignment.
  ServerConn* take() {
    ServerConn* s = assigned;
    assigned = nullptr;
    delivery_pending = false;
    return s;
  }

  int assignments = 0;
  std::vector<std::string> login_failures;
  Pool* pool = nullptr;  // the pool it last checked out from

 private:
  std::vector<TestWaiter*>* order_;
};

class PoolTest : public ::testing::Test {
 protected:
  explicit PoolTest(int workers = 2) : nworkers_(workers) {
    for (int i = 0; i < workers; ++i)
      workers_.push_back(std::make_unique<WorkerBase>(i, 4096, registries_));
    std::vector<WorkerBase*> raw;
    for (auto& w : workers_)
      raw.push_back(w.get());
    mgr_ = std::make_unique<PoolManager>(raw, &connector_, &clock_);
    for (auto& w : workers_)
      w->pools = mgr_.get();
    log_path_ = ::testing::TempDir() + "sluice_pool_test_" + std::to_string(getpid()) + ".log";
    std::remove(log_path_.c_str());
    core::LogOptions lo;
    lo.path = log_path_;
    lo.to_stderr = false;
    core::Logger::instance().configure(lo);
  }

  ~PoolTest() override {
    // Let posted work finish, stop waiting, close every server so nothing leaks.
    drain_loops();
    for (auto& w : waiters_) {
      if (w.queued) (void)mgr_->cancel_wait(*w.pool, w);
    }
    for (int round = 0; round < 3; ++round) {
      for (auto& w : workers_) {
        w->servers.for_each([](ServerConn& s) { s.close("test end", false); });
      }
      drain_loops();
    }
    core::Logger::instance().configure(core::LogOptions{});
    std::remove(log_path_.c_str());
    for (int fd : peers_)
      ::close(fd);
  }

  // Installs a config built from the three sections. The fake servers answer no queries, so
  // server_check_query is off unless `settings` turns it on.
  void configure(std::string_view databases, std::string_view settings,
                 std::string_view users = "") {
    std::string text = "[databases]\n" + std::string(databases) + "\n[users]\n" +
                       std::string(users) + "\n[pgbouncer]\nserver_check_query =\n" +
                       std::string(settings) + "\n";
    auto r = config::parse(text, ::testing::TempDir());
    ASSERT_TRUE(r.ok()) << r.error();
    cfg_ = *r;
    for (auto& w : workers_)
      w->set_cfg(cfg_);
    mgr_->apply_config(cfg_);
  }

  WorkerBase& worker(int i) { return *workers_[static_cast<std::size_t>(i)]; }

  // The pool for (database, server user), as a client login would find it.
  Pool& pool(std::string_view db, std::string_view user) {
    const config::DatabaseConfig* d = cfg_->find_database(db);
    if (d == nullptr) d = cfg_->fallback_database();
    EXPECT_NE(d, nullptr) << db;
    return *mgr_->get_pool(*d, db, user, worker(0));
  }

  // A pool that has had a client (min_pool_size applies from then on).
  Pool& used_pool(std::string_view db, std::string_view user) {
    Pool& p = pool(db, user);
    mgr_->pool_client_added(p);
    return p;
  }

  TestWaiter& waiter(bool login = false) {
    waiters_.emplace_back(&order_);
    waiters_.back().login = login;
    return waiters_.back();
  }

  // Checkout on worker `on`; returns the server if one was handed over at once.
  ServerConn* checkout(Pool& p, TestWaiter& w, int on = 0) {
    w.pool = &p;
    return mgr_->checkout(p, w, worker(on));
  }

  // The next open() not yet completed or failed.
  FakeConnector::Open* next_open() {
    for (auto& o : connector_.opens) {
      if (!o.done) return &o;
    }
    return nullptr;
  }

  // Completes an open() as a successful login would: a ServerConn on the open's worker,
  // through Login, reported with server_ready.
  ServerConn* complete(FakeConnector::Open* o = nullptr) {
    if (o == nullptr) o = next_open();
    EXPECT_NE(o, nullptr) << "no open() to complete";
    if (o == nullptr) return nullptr;
    o->done = true;
    auto* s = new ServerConn(*o->pool, *o->worker);
    // A real socket, so that moving the server between worker loops works as in production.
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0) {
      s->io.fd = sv[0];
      peers_.push_back(sv[1]);
    }
    s->target = o->target;
    s->lifetime = o->target->lifetime;
    s->state = ServerState::Login;
    s->connected_at = clock_.now();
    mgr_->server_ready(*s, *o->worker, {});
    return s;
  }

  // Fails an open() as ServerConn::fail_connect does: connect_failed, then the close.
  void fail(bool login_error, std::string body = {}, FakeConnector::Open* o = nullptr) {
    if (o == nullptr) o = next_open();
    ASSERT_NE(o, nullptr) << "no open() to fail";
    o->done = true;
    auto* s = new ServerConn(*o->pool, *o->worker);
    s->target = o->target;
    s->state = ServerState::Login;
    mgr_->connect_failed(*o->pool, login_error, std::move(body));
    s->close("server login failed", false);
  }

  int pending_opens() const {
    int n = 0;
    for (const auto& o : connector_.opens)
      n += o.done ? 0 : 1;
    return n;
  }

  // Runs each worker's loop once without blocking (posted tasks, retired objects).
  void drain_loops() {
    for (int round = 0; round < 2; ++round) {
      for (auto& w : workers_)
        w->loop().run_once(0);
    }
  }

  // The global budget (I1): no pool over pool_size + reserve, no group over its limit, and the
  // group counters equal the sum of their pools.
  void check_budget() {
    for (const auto& s : mgr_->pool_stats(clock_.now())) {
      EXPECT_LE(s.servers, s.pool_size + s.reserve_size) << s.database << "/" << s.user;
      EXPECT_EQ(s.servers, s.sv_active + s.sv_idle + s.sv_login + closing_or_internal(s))
          << s.database << "/" << s.user;
    }
    for (const auto& g : mgr_->database_stats()) {
      if (g.max_servers > 0) {
        EXPECT_LE(g.servers, g.max_servers) << "db " << g.name;
      }
      int sum = 0;
      for (const auto& s : mgr_->pool_stats(clock_.now()))
        sum += s.database == g.name ? s.servers : 0;
      EXPECT_EQ(g.servers, sum) << "db " << g.name;
    }
    for (const auto& g : mgr_->user_stats()) {
      if (g.max_servers > 0) {
        EXPECT_LE(g.servers, g.max_servers) << "user " << g.name;
      }
      int sum = 0;
      for (const auto& s : mgr_->pool_stats(clock_.now()))
        sum += s.user == g.name ? s.servers : 0;
      EXPECT_EQ(g.servers, sum) << "user " << g.name;
    }
  }

  // Servers of a pool in states the stats do not show (Internal, Handoff, Closing).
  int closing_or_internal(const PoolManager::PoolStats& st) {
    int n = 0;
    for (auto& w : workers_) {
      w->servers.for_each([&](ServerConn& s) {
        if (s.pool->db_name == st.database && s.pool->user_name == st.user &&
            (s.state == ServerState::Internal || s.state == ServerState::Handoff ||
             s.state == ServerState::Closing)) {
          ++n;
        }
      });
    }
    return n + handoff_in_flight_;
  }

  std::string log_text() const {
    std::ifstream f(log_path_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  [[nodiscard]] bool logged(std::string_view needle) const {
    return log_text().find(needle) != std::string::npos;
  }

  int nworkers_;
  core::FakeClock clock_;
  FakeConnector connector_;
  std::vector<int> peers_;  // the other ends of fake servers' sockets
  Registries registries_;   // this test's own (declared before the workers that use it)
  std::vector<std::unique_ptr<WorkerBase>> workers_;
  std::unique_ptr<PoolManager> mgr_;
  config::ConfigPtr cfg_;
  std::deque<TestWaiter> waiters_;
  std::vector<TestWaiter*> order_;  // assignment order
  std::string log_path_;
  int handoff_in_flight_ = 0;  // servers detached from every worker (set by tests)
};

inline constexpr core::Micros kSecond = core::kMicrosPerSecond;

}  // namespace sluice::pool::testing
