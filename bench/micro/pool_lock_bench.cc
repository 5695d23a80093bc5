// How long a transaction holds the pool manager's lock (issue 10, item 5): one checkout of an
// idle server and its release, as a client's transaction does them, with no contention. The
// time per iteration bounds the lock-held time per transaction (two acquisitions); the model in
// bench/RESULTS.md turns it into the core count at which the one lock would saturate.
//
//   cmake -S . -B build-bench -DSLUICE_BENCH=ON -DSLUICE_TESTS=OFF && cmake --build build-bench
//   build-bench/micro_bench --benchmark_filter=Pool
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.h"
#include "pool/connector.h"
#include "pool/pool.h"
#include "pool/registries.h"
#include "pool/server_conn.h"
#include "pool/worker_base.h"

namespace sluice::pool {
namespace {

class NoConnector final : public Connector {
 public:
  void open(Pool&, std::shared_ptr<const ConnectTarget>, WorkerBase&) override {}
};

class Waiting final : public Waiter {
 public:
  void on_assignment() override {}
  void on_login_failed(std::string) override {}
};

void BM_PoolCheckoutRelease(benchmark::State& state) {
  const int servers = static_cast<int>(state.range(0));
  Registries registries;
  std::vector<std::unique_ptr<WorkerBase>> workers;
  workers.push_back(std::make_unique<WorkerBase>(0, 4096, registries));
  workers.push_back(std::make_unique<WorkerBase>(1, 4096, registries));
  NoConnector connector;
  PoolManager mgr({workers[0].get(), workers[1].get()}, &connector);
  for (auto& w : workers)
    w->pools = &mgr;
  auto cfg = config::parse("[databases]\napp = dbname=app pool_size=" + std::to_string(servers) +
                               "\n[pgbouncer]\nserver_check_query =\n",
                           "/tmp");
  if (!cfg.ok()) {
    state.SkipWithError("config");
    return;
  }
  for (auto& w : workers)
    w->set_cfg(*cfg);
  mgr.apply_config(*cfg);
  const config::DatabaseConfig* d = (*cfg)->find_database("app");
  Pool& p = *mgr.get_pool(*d, "app", "alice", *workers[0]);
  // `servers` logged-in idle servers on worker 0.
  std::vector<int> fds;
  for (int i = 0; i < servers; ++i) {
    auto* s = new ServerConn(p, *workers[0]);
    s->target = p.target;
    s->lifetime = p.target->lifetime;  // 0 would mean one client per server
    s->connected_at = workers[0]->loop().now();
    s->state = ServerState::Login;
    {
      Waiting w;
      (void)mgr.checkout(p, w, *workers[0]);  // counts a launch, as a real first login does
      (void)mgr.cancel_wait(p, w);
    }
    mgr.server_ready(*s, *workers[0], {});
  }
  Waiting client;
  std::int64_t missed = 0;
  for (auto _ : state) {
    ServerConn* s = mgr.checkout(p, client, *workers[0]);
    benchmark::DoNotOptimize(s);
    if (s == nullptr) {
      ++missed;
      (void)mgr.cancel_wait(p, client);
      continue;
    }
    mgr.release(*s, *workers[0]);
  }
  if (missed > 0) state.SkipWithError("checkout found no idle server");
  state.SetLabel("checkout + release = one transaction's two lock holds");
  workers[0]->servers.for_each([](ServerConn& s) { s.close("bench end", false); });
  for (auto& w : workers)
    w->loop().run_once(0);
}
BENCHMARK(BM_PoolCheckoutRelease)->Arg(4)->Arg(20);

// Two workers on two threads, each checking out and releasing its own idle servers of one pool
// at once, as two cores of a busy but unsaturated pool do. With the shard paths neither takes
// the manager lock; when both had to, they took turns on one lock and its cache line.
struct Shared {
  Registries registries;
  std::vector<std::unique_ptr<WorkerBase>> workers;
  NoConnector connector;
  std::unique_ptr<PoolManager> mgr;
  config::ConfigPtr cfg;
  Pool* pool = nullptr;
};
Shared* g_shared = nullptr;

void BM_PoolTwoWorkers(benchmark::State& state) {
  const int per_worker = 4;
  if (state.thread_index() == 0) {
    g_shared = new Shared;
    Shared& sh = *g_shared;
    sh.workers.push_back(std::make_unique<WorkerBase>(0, 4096, sh.registries));
    sh.workers.push_back(std::make_unique<WorkerBase>(1, 4096, sh.registries));
    sh.mgr = std::make_unique<PoolManager>(
        std::vector<WorkerBase*>{sh.workers[0].get(), sh.workers[1].get()}, &sh.connector);
    for (auto& w : sh.workers)
      w->pools = sh.mgr.get();
    auto cfg = config::parse(
        "[databases]\napp = dbname=app pool_size=8\n[pgbouncer]\nserver_check_query =\n", "/tmp");
    sh.cfg = *cfg;
    for (auto& w : sh.workers)
      w->set_cfg(sh.cfg);
    sh.mgr->apply_config(sh.cfg);
    Pool& p = *sh.mgr->get_pool(*sh.cfg->find_database("app"), "app", "alice", *sh.workers[0]);
    sh.pool = &p;
    for (int wi = 0; wi < 2; ++wi) {
      for (int i = 0; i < per_worker; ++i) {
        auto* s = new ServerConn(p, *sh.workers[static_cast<std::size_t>(wi)]);
        s->target = p.target;
        s->lifetime = p.target->lifetime;
        s->connected_at = sh.workers[0]->loop().now();
        s->state = ServerState::Login;
        {
          Waiting w;
          (void)sh.mgr->checkout(p, w, *sh.workers[static_cast<std::size_t>(wi)]);
          (void)sh.mgr->cancel_wait(p, w);
        }
        sh.mgr->server_ready(*s, *sh.workers[static_cast<std::size_t>(wi)], {});
      }
    }
  }
  Waiting client;
  std::int64_t missed = 0;
  for (auto _ : state) {
    WorkerBase& me = *g_shared->workers[static_cast<std::size_t>(state.thread_index())];
    ServerConn* s = g_shared->mgr->checkout(*g_shared->pool, client, me);
    benchmark::DoNotOptimize(s);
    if (s == nullptr) {
      ++missed;
      (void)g_shared->mgr->cancel_wait(*g_shared->pool, client);
      continue;
    }
    g_shared->mgr->release(*s, me);
  }
  if (missed > 0) state.SkipWithError("checkout found no idle server");
  state.SetLabel("per thread: one transaction's checkout + release");
  if (state.thread_index() == 0) {
    for (auto& w : g_shared->workers)
      w->servers.for_each([](ServerConn& s) { s.close("bench end", false); });
    for (auto& w : g_shared->workers)
      w->loop().run_once(0);
    delete g_shared;
    g_shared = nullptr;
  }
}
BENCHMARK(BM_PoolTwoWorkers)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace sluice::pool
