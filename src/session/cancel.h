// Cancel requests: routed to the worker that owns the key, delivered on a fresh server socket.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.h"
#include "net/loop.h"

namespace sluice::session {

class SessionWorker;

// One outgoing CancelRequest to a Postgres server: connect, send 16 bytes, wait for the
// server to close (it has then delivered the signal), report. Bounded by a deadline.
class CancelConn final : public net::Pollable, public net::Retirable {
 public:
  struct Target {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string unix_path;
    std::uint32_t pid = 0;
    std::uint32_t secret = 0;
  };
  using Done = std::function<void()>;

  // Starts at once; `done` runs exactly once on this worker's thread.
  static void start(SessionWorker& w, const Target& t, core::Micros timeout, Done done);

  void on_io(std::uint32_t events) override;
  void check_deadline(core::Micros now);

 private:
  CancelConn(SessionWorker& w, Done done) : w_(w), done_(std::move(done)) {}
  void finish();

  SessionWorker& w_;
  Done done_;
  int fd_ = -1;
  bool sent_ = false;
  bool finished_ = false;
  core::Micros deadline_ = 0;
  std::string packet_;
};

}  // namespace sluice::session
