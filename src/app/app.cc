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

#include "admin/metrics.h"
#include "app/cpu_count.h"
#include "core/log.h"
#include "net/socket.h"
#include "proto/auth/scram.h"
#include "session/plain_scram.h"
#include "session/tls_setup.h"

namespace sluice::app {

namespace {

net::Resolver::Options resolver_options(const config::Settings& st) {
  net::Resolver::Options o;
  o.ttls.found = st.dns_max_ttl;
  o.ttls.not_found = st.dns_nxdomain_ttl;
  o.nameservers = st.dns_nameserver;
  o.resolv_conf = st.resolv_conf;
  return o;
}

}  // namespace

App::App(Options opts) : opts_(std::move(opts)) {}

App::~App() {
  stop_warming();
}

config::ConfigPtr App::config() const {
  std::lock_guard<std::mutex> g(cfg_mu_);
  return cfg_;
}

// The console reads config() to answer SHOW: it changes last, once pools and workers have the
// new config, so that what the console shows is what a new client gets.
void App::install(config::ConfigPtr cfg) {
  const auto& st = cfg->settings;
  core::LogOptions lo;
  lo.path = st.logfile;
  lo.to_stderr = !opts_.quiet && !opts_.daemon;
  lo.verbose = std::max(opts_.verbose, st.verbose);
  lo.json = st.log_json;
  core::Logger::instance().configure(lo);
  shared_.registries.params.configure(st.track_extra_parameters);
  // New handshakes use the new certificates; open ones keep theirs.
  session::install_tls(*cfg, shared_.registries.tls);
  warm_plain_scram(*cfg);
  resolver_.configure(resolver_options(st));
  if (pools_) pools_->apply_config(cfg);
  shared_.publish_config(cfg);
  std::lock_guard<std::mutex> g(cfg_mu_);
  cfg_ = std::move(cfg);
}

void App::stop_warming() {
  warm_stop_.store(true);
  if (warm_thread_.joinable()) warm_thread_.join();
  warm_stop_.store(false);
}

void App::warm_plain_scram(const config::Config& cfg) {
  std::vector<std::pair<std::string, std::string>> plain;
  for (const auto& e : cfg.auth_entries) {
    if (e.kind == config::AuthEntry::Kind::Plain && !e.secret.empty()) {
      plain.emplace_back(e.user, e.secret);
    }
  }
  auto& cache = shared_.plain_scram;
  cache.retain(plain);
  stop_warming();              // at most one derivation to wait for
  if (!warm_allowed_) return;  // not before daemon(): a thread would not survive the fork
  // Only SCRAM logins use them: auth_type scram-sha-256, or an hba rule that may say so.
  auto t = cfg.settings.auth_type;
  if (plain.empty() || (t != config::AuthType::ScramSha256 && t != config::AuthType::Hba)) return;
  warm_thread_ = std::thread([this, &cache, users = std::move(plain)] {
    for (const auto& [user, password] : users) {
      if (warm_stop_.load()) return;
      (void)cache.get(user, password);
    }
  });
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
  for (const auto& w : r.value()->warnings)
    core::log(core::LogLevel::Warning, "{}", w);
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
  // A waiting shutdown takes effect before the console answers: the next transaction of any
  // client already sees it.
  if (how == Shutdown::WaitForServers) {
    begin_shutdown(session::ShutdownMode::WaitForServers);
  } else if (how == Shutdown::WaitForClients) {
    begin_shutdown(session::ShutdownMode::WaitForClients);
  }
  shutdown_request_.store(1 + static_cast<int>(how));
}

void App::begin_shutdown(session::ShutdownMode mode) {
  auto none = session::ShutdownMode::None;
  if (!shared_.shutdown.compare_exchange_strong(none, mode)) return;
  stop_tcp_listening();
  if (mode == session::ShutdownMode::WaitForServers) pools_->pause({}, nullptr);
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
        tcp_fds_.push_back(fd);
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
    for (auto& w : workers_)
      w->add_listener(r.value(), true, n > 1);
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
  for (const auto& w : r.value()->warnings)
    core::log(core::LogLevel::Warning, "{}", w);
  const auto& st = r.value()->settings;
  pidfile_ = st.pidfile;
  int nworkers = st.workers > 0 ? st.workers : default_workers(usable_cpus());
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
  shared_.resolver = &resolver_;  // started in run(), after daemon()
  console_ = std::make_unique<admin::Console>(shared_, *this);
  shared_.admin = console_.get();
  for (auto& w : workers_) {
    w->pools = pools_.get();
    w->resolver = &resolver_;
    w->sync_config();
  }
  pools_->apply_config(config());
  if (!open_listeners()) return false;
  return true;
}

void App::stop_all() {
  if (http_) http_->stop();
  shared_.accepting.store(false);
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->loop().post([wp] {
      wp->stop_listening();
      wp->close_all("shutdown");
    });
    wp->loop().stop();
  }
  for (auto& w : workers_)
    w->join();
  resolver_.stop();
  for (int fd : listen_fds_)
    ::close(fd);
  listen_fds_.clear();
  if (!tcp_stopped_.exchange(true)) {
    for (int fd : tcp_fds_)
      ::close(fd);
  }
  tcp_fds_.clear();
}

void App::stop_tcp_listening() {
  if (tcp_stopped_.exchange(true)) return;  // each worker closes its own TCP sockets
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->loop().post([wp] { wp->stop_listening(true); });
  }
}

void App::on_worker0(std::function<void(pool::WorkerBase&)> fn) {
  Worker* w = workers_.front().get();
  w->loop().post([w, f = std::move(fn)] { f(*w); });
}

// Signals as PgBouncer (1.23+) reads them: SIGINT = SHUTDOWN WAIT_FOR_SERVERS, SIGTERM =
// SHUTDOWN WAIT_FOR_CLIENTS, either one again or SIGQUIT = now; SIGHUP reload; SIGUSR1 PAUSE,
// SIGUSR2 RESUME. A waiting shutdown stops the TCP listeners (the unix socket stays for the
// console) and ends when no server is busy, or no client is left.
void App::signal_loop() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2})
    sigaddset(&set, s);
  using Mode = session::ShutdownMode;
  for (;;) {
    timespec ts{0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &ts);
    int req = shutdown_request_.exchange(0);
    Mode mode = shared_.shutdown.load();
    if (sig == SIGQUIT || req == 1 + static_cast<int>(Shutdown::Immediate)) {
      core::log(core::LogLevel::Log, "got {}, fast exit", sig == SIGQUIT ? "SIGQUIT" : "SHUTDOWN");
      return;
    }
    if ((sig == SIGINT || sig == SIGTERM) && mode != Mode::None) {
      core::log(core::LogLevel::Log, "got {} while shutting down, fast exit",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
      return;
    }
    Mode want = Mode::None;
    if (sig == SIGINT || req == 1 + static_cast<int>(Shutdown::WaitForServers)) {
      want = Mode::WaitForServers;
    } else if (sig == SIGTERM || req == 1 + static_cast<int>(Shutdown::WaitForClients)) {
      want = Mode::WaitForClients;
    }
    if (want != Mode::None && mode == Mode::None) {
      if (sig == SIGINT) {
        core::log(core::LogLevel::Log,
                  "got SIGINT, shutting down, waiting for all servers connections to be released");
      } else if (sig == SIGTERM) {
        core::log(core::LogLevel::Log,
                  "got SIGTERM, shutting down, waiting for all clients disconnect");
      }
      begin_shutdown(want);
      mode = shared_.shutdown.load();
    }
    if (sig == SIGHUP) {
      core::log(core::LogLevel::Log, "got SIGHUP, reloading config");
      core::Logger::instance().reopen();
      (void)reload();
    }
    if (sig == SIGUSR1) {
      if (pools_->paused({}) || pools_->suspended()) {
        core::log(core::LogLevel::Log, "got SIGUSR1, but already paused/suspended");
      } else {
        core::log(core::LogLevel::Log, "got SIGUSR1, pausing all activity");
        on_worker0([this](pool::WorkerBase& w) { pools_->pause({}, &w); });
      }
    }
    if (sig == SIGUSR2) {
      if (mode != Mode::None) {
        core::log(core::LogLevel::Log, "got SIGUSR2 while shutting down, ignoring");
      } else if (!pools_->paused({}) && !pools_->suspended()) {
        core::log(core::LogLevel::Log, "got SIGUSR2, but not paused/suspended");
      } else {
        core::log(core::LogLevel::Log, "got SIGUSR2, continuing");
        on_worker0([this](pool::WorkerBase& w) { (void)pools_->resume({}, w); });
      }
    }
    if (console_) console_->stats_tick(core::monotonic_now());
    if (mode == Mode::WaitForServers && pools_->busy_servers({}) == 0) {
      core::log(core::LogLevel::Log, "server connections dropped, exiting");
      return;
    }
    if (mode == Mode::WaitForClients && shared_.clients.load() == 0) {
      core::log(core::LogLevel::Log, "client connections dropped, exiting");
      return;
    }
  }
}

bool App::start_http() {
  const auto& st = config()->settings;
  if (st.metrics_listen_addr.empty()) return true;
  health_ = std::make_unique<admin::Health>(shared_, [this] { return config(); });
  http_ = std::make_unique<admin::HttpServer>(
      [this](std::string_view path) { return http_answer(path); });
  std::string err = http_->start(st.metrics_listen_addr, st.metrics_listen_port, st.listen_backlog);
  if (!err.empty()) {
    core::log(core::LogLevel::Fatal, "cannot listen for metrics on {}:{}: {}",
              st.metrics_listen_addr, st.metrics_listen_port, err);
    http_.reset();
    return false;
  }
  core::log(core::LogLevel::Log, "metrics and health on http://{}:{}/metrics, /healthz, /readyz",
            st.metrics_listen_addr, st.metrics_listen_port);
  return true;
}

admin::HttpResponse App::http_answer(std::string_view path) {
  if (path == "/metrics") {
    admin::MetricsInput in;
    in.pools = pools_->pool_snapshots(core::monotonic_now());
    in.client_connections = shared_.clients.load();
    in.server_connections = pools_->total_servers();
    in.paused = pools_->paused({}) || pools_->suspended();
    return {200, "text/plain; version=0.0.4; charset=utf-8", admin::render_metrics(in)};
  }
  if (path == "/healthz" || path == "/readyz") {
    auto a = path == "/healthz" ? health_->live() : health_->ready();
    return {a.ok ? 200 : 503, "text/plain; charset=utf-8", a.text};
  }
  if (path == "/") {
    return {200, "text/plain; charset=utf-8", "sluice: /metrics /healthz /readyz\n"};
  }
  return {404, "text/plain; charset=utf-8", "not found\n"};
}

int App::run() {
  // Signals go to the main thread only (sigtimedwait); workers never see them.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2})
    sigaddset(&set, s);
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
  warm_allowed_ = true;
  warm_plain_scram(*config());
  resolver_.start(resolver_options(config()->settings));  // a thread: after daemon() too
  if (!write_pidfile()) {
    pidfile_.clear();
    cleanup_files();
    return 1;
  }
  const auto& st = config()->settings;
  core::log(core::LogLevel::Log, "{} starting: {} worker(s), listening on {}:{}{}",
            admin::version_string(), workers_.size(), st.listen_addr.empty() ? "-" : st.listen_addr,
            st.listen_port, unix_path_.empty() ? "" : " and " + unix_path_);
  for (auto& w : workers_)
    w->start();
  if (!start_http()) {
    stop_all();
    cleanup_files();
    return 1;
  }
  signal_loop();
  stop_all();
  cleanup_files();
  core::log(core::LogLevel::Log, "stopped");
  return 0;
}

}  // namespace sluice::app
