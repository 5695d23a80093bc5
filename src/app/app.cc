// App: start-up order, signal handling (SIGHUP reload, SIGINT/SIGQUIT fast, SIGTERM graceful).
#include "app/app.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "core/log.h"
#include "net/socket.h"
#include "pool/params.h"
#include "proto/auth/scram.h"

namespace sluice::app {

App::App(Options opts) : opts_(std::move(opts)) {}

App::~App() = default;

config::ConfigPtr App::config() const {
  std::lock_guard<std::mutex> g(cfg_mu_);
  return cfg_;
}

void App::install(config::ConfigPtr cfg) {
  {
    std::lock_guard<std::mutex> g(cfg_mu_);
    cfg_ = cfg;
  }
  const auto& st = cfg->settings;
  core::LogOptions lo;
  lo.path = st.logfile;
  lo.to_stderr = !opts_.quiet && !opts_.daemon;
  lo.verbose = std::max(opts_.verbose, st.verbose);
  lo.json = st.log_json;
  core::Logger::instance().configure(lo);
  pool::ParamRegistry::instance().configure(st.track_extra_parameters);
  if (pools_) pools_->apply_config(cfg);
  shared_.publish_config(cfg);
}

std::string App::reload() {
  std::lock_guard<std::mutex> g(reload_mu_);
  auto r = config::load(opts_.config_path);
  if (!r) {
    core::log(core::LogLevel::Error, "config reload failed, keeping the running config: {}",
              r.error());
    return r.error();
  }
  auto old = config();
  const auto& a = old->settings;
  const auto& b = r.value()->settings;
  if (a.listen_addr != b.listen_addr || a.listen_port != b.listen_port ||
      a.unix_socket_dir != b.unix_socket_dir || a.workers != b.workers) {
    core::log(core::LogLevel::Warning,
              "listen_addr, listen_port, unix_socket_dir and workers need a restart to change");
  }
  for (const auto& w : r.value()->warnings) core::log(core::LogLevel::Warning, "{}", w);
  install(r.value());
  core::log(core::LogLevel::Log, "configuration reloaded");
  return {};
}

std::string App::set_setting(std::string_view name, std::string_view value) {
  std::lock_guard<std::mutex> g(reload_mu_);
  auto r = config::with_setting(*config(), name, value);
  if (!r) return r.error();
  install(r.value());
  return {};
}

void App::shutdown(Shutdown how) {
  shutdown_request_.store(how == Shutdown::Immediate ? 1 : 2);
}

bool App::write_pidfile() {
  if (pidfile_.empty()) return true;
  std::ifstream in(pidfile_);
  long old = 0;
  if (in >> old && old > 0 && ::kill(static_cast<pid_t>(old), 0) == 0 && old != getpid()) {
    core::log(core::LogLevel::Fatal, "pidfile {} exists and process {} is running", pidfile_, old);
    return false;
  }
  std::string tmp = pidfile_ + ".tmp";
  {
    std::ofstream o(tmp);
    o << getpid() << "\n";
    if (!o) {
      core::log(core::LogLevel::Fatal, "cannot write pidfile {}", pidfile_);
      return false;
    }
  }
  if (::rename(tmp.c_str(), pidfile_.c_str()) != 0) {
    core::log(core::LogLevel::Fatal, "cannot write pidfile {}: {}", pidfile_, std::strerror(errno));
    return false;
  }
  return true;
}

void App::cleanup_files() {
  if (!pidfile_.empty()) ::unlink(pidfile_.c_str());
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

bool App::open_listeners() {
  const auto& st = config()->settings;
  int n = static_cast<int>(workers_.size());
  if (!st.listen_addr.empty()) {
    // One socket per worker and address (SO_REUSEPORT): the kernel spreads connections.
    for (int i = 0; i < n; ++i) {
      net::ListenSpec spec{st.listen_addr, st.listen_port, st.listen_backlog,
                           n > 1 || st.so_reuseport};
      auto r = net::listen_tcp(spec);
      if (!r) {
        core::log(core::LogLevel::Fatal, "cannot listen on {}:{}: {}", st.listen_addr,
                  st.listen_port, r.error());
        return false;
      }
      for (int fd : r.value()) {
        workers_[static_cast<std::size_t>(i)]->add_listener(fd, false, false);
        listen_fds_.push_back(fd);
      }
    }
  }
  if (!st.unix_socket_dir.empty()) {
    unix_path_ = st.unix_socket_dir + "/.s.PGSQL." + std::to_string(st.listen_port);
    auto r = net::listen_unix(unix_path_, st.listen_backlog, st.unix_socket_mode);
    if (!r) {
      core::log(core::LogLevel::Fatal, "cannot listen on {}: {}", unix_path_, r.error());
      unix_path_.clear();
      return false;
    }
    for (auto& w : workers_) w->add_listener(r.value(), true, n > 1);
    listen_fds_.push_back(r.value());
  }
  return true;
}

bool App::setup() {
  auto r = config::load(opts_.config_path);
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().c_str());
    core::log(core::LogLevel::Fatal, "{}", r.error());
    return false;
  }
  install(r.value());
  for (const auto& w : r.value()->warnings) core::log(core::LogLevel::Warning, "{}", w);
  const auto& st = r.value()->settings;
  pidfile_ = st.pidfile;
  int nworkers = st.workers > 0 ? st.workers : static_cast<int>(std::thread::hardware_concurrency());
  if (nworkers < 1) nworkers = 1;
  if (nworkers > 255) nworkers = 255;  // the worker id travels in a byte of the cancel key
  shared_.uid = getuid();
  auto key = proto::auth::scram_nonce();
  shared_.scram_mock_key = key ? key.value() : std::string("sluice");
  std::uint32_t block = std::max<std::uint32_t>(st.pkt_buf, 4096);
  std::vector<pool::WorkerBase*> bases;
  for (int i = 0; i < nworkers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, block, shared_));
    shared_.workers.push_back(workers_.back().get());
    bases.push_back(workers_.back().get());
  }
  pools_ = std::make_unique<pool::PoolManager>(bases);
  shared_.pools = pools_.get();
  console_ = std::make_unique<admin::Console>(shared_, *this);
  shared_.admin = console_.get();
  for (auto& w : workers_) {
    w->pools = pools_.get();
    w->sync_config();
  }
  pools_->apply_config(config());
  if (!open_listeners()) return false;
  return true;
}

void App::stop_accepting() {
  shared_.accepting.store(false);
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->loop().post([wp] { wp->stop_listening(); });
  }
}

void App::stop_all() {
  shared_.accepting.store(false);
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->loop().post([wp] {
      wp->stop_listening();
      wp->close_all("shutdown");
    });
    wp->loop().stop();
  }
  for (auto& w : workers_) w->join();
  for (int fd : listen_fds_) ::close(fd);
  listen_fds_.clear();
}

void App::signal_loop() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
  bool draining = false;
  for (;;) {
    timespec ts{0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &ts);
    int req = shutdown_request_.exchange(0);
    if (sig == SIGINT || sig == SIGQUIT || req == 1) {
      core::log(core::LogLevel::Log, "got {}, shutting down",
                sig == SIGINT ? "SIGINT" : sig == SIGQUIT ? "SIGQUIT" : "SHUTDOWN");
      return;
    }
    if ((sig == SIGTERM || req == 2) && !draining) {
      core::log(core::LogLevel::Log, "got {}, waiting for transactions to finish",
                sig == SIGTERM ? "SIGTERM" : "SHUTDOWN WAIT");
      draining = true;
      stop_accepting();
      shared_.draining.store(true);
    }
    if (sig == SIGHUP) {
      core::log(core::LogLevel::Log, "got SIGHUP, reloading config");
      core::Logger::instance().reopen();
      (void)reload();
    }
    if (draining && shared_.clients.load() == 0) {
      core::log(core::LogLevel::Log, "all clients gone, exiting");
      return;
    }
  }
}

int App::run() {
  // Signals go to the main thread only (sigtimedwait); workers never see them.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (!setup()) {
    cleanup_files();
    return 1;
  }
  if (opts_.daemon) {
    if (::daemon(1, 0) != 0) {
      core::log(core::LogLevel::Fatal, "daemon() failed: {}", std::strerror(errno));
      return 1;
    }
  }
  if (!write_pidfile()) {
    pidfile_.clear();
    cleanup_files();
    return 1;
  }
  const auto& st = config()->settings;
  core::log(core::LogLevel::Log, "{} starting: {} worker(s), listening on {}:{}{}",
            admin::version_string(), workers_.size(),
            st.listen_addr.empty() ? "-" : st.listen_addr, st.listen_port,
            unix_path_.empty() ? "" : " and " + unix_path_);
  for (auto& w : workers_) w->start();
  signal_loop();
  stop_all();
  cleanup_files();
  core::log(core::LogLevel::Log, "stopped");
  return 0;
}

}  // namespace sluice::app
