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

}  // namespace
}  // namespace sluice::pool
