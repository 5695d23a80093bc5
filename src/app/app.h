// The process: configuration, workers, listeners, signals, reload and shutdown.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "admin/console.h"
#include "admin/control.h"
#include "admin/health.h"
#include "admin/http_server.h"
#include "app/worker.h"
#include "net/resolver.h"
#include "pool/pool.h"

namespace sluice::app {

struct Options {
  std::string config_path;
  bool daemon = false;
  bool quiet = false;
  int verbose = 0;
};

class App final : public admin::Control {
 public:
  explicit App(Options opts);
  ~App() override;

  // Runs until shutdown; returns the process exit status.
  int run();

  // admin::Control
  std::string reload() override;
  std::string set_setting(std::string_view name, std::string_view value) override;
  void shutdown(Shutdown how) override;
  [[nodiscard]] config::ConfigPtr config() const override;

 private:
  bool setup();
  bool open_listeners();
  void install(config::ConfigPtr cfg);
  // SCRAM secrets of plain-text auth file users: forgets changed ones, derives the others on a
  // thread of their own (session/plain_scram.h).
  void warm_plain_scram(const config::Config& cfg);
  void stop_warming();
  void signal_loop();
  void stop_tcp_listening();
  void begin_shutdown(session::ShutdownMode mode);
  bool start_http();
  [[nodiscard]] admin::HttpResponse http_answer(std::string_view path);
  // SIGUSR1 / SIGUSR2 and the waiting shutdowns act on the pools from worker 0's thread.
  void on_worker0(std::function<void(pool::WorkerBase&)> fn);
  void stop_all();
  bool write_pidfile();
  void cleanup_files();

  Options opts_;
  mutable std::mutex cfg_mu_;
  config::ConfigPtr cfg_;
  std::mutex reload_mu_;
  session::Shared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<pool::PoolManager> pools_;
  // After workers_: destroyed (stopped) first, so it never posts to a loop that is gone.
  net::Resolver resolver_;
  std::unique_ptr<admin::Console> console_;
  std::vector<int> listen_fds_;  // closed at exit
  std::vector<int> tcp_fds_;     // closed by their workers when a waiting shutdown begins
  std::atomic<bool> tcp_stopped_{false};
  std::string unix_path_;
  std::string pidfile_;
  // 0 none, else 1 + admin::Control::Shutdown (console SHUTDOWN).
  std::atomic<int> shutdown_request_{0};
  std::unique_ptr<admin::Health> health_;
  std::unique_ptr<admin::HttpServer> http_;
  std::thread warm_thread_;
  std::atomic<bool> warm_stop_{false};
  bool warm_allowed_ = false;  // set once the process has daemonized (or will not)
};

}  // namespace sluice::app
