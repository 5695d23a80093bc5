// PoolManager: what a failed server connect or login does to the clients waiting for it.
#include "core/log.h"
#include "pool/pool.h"
#include "proto/backend.h"

namespace sluice::pool {
namespace {

// "Cannot connect now" (the server is starting up or shutting down) passes: nobody is failed.
constexpr std::string_view kCannotConnectNow = "57P03";

}  // namespace

void PoolManager::connect_failed(Pool& p, bool login_error, std::string error_body,
                                 std::string_view reason, const ConnectTarget* from) {
  std::vector<std::pair<Waiter*, std::string>> failures;
  {
    std::lock_guard<std::mutex> g(mu_);
    p.last_connect_failed = clock_ != nullptr ? clock_->now() : core::monotonic_now();
    auto e = proto::ErrorView::decode(error_body);
    p.login_fail_message = e && !e->message.empty() ? std::string(e->message)
                           : !reason.empty()        ? std::string(reason)
                                                    : std::string("server login failed");
    if (login_error && !(e && e->sqlstate == kCannotConnectNow)) {
      // The server refused the login: until one succeeds, clients that need a server while
      // none is logged in are refused with this (fail_fast). Network and TLS failures only
      // hold new attempts back.
      p.login_failing = true;
      p.login_fail_generation = from != nullptr ? from->generation
                                : p.target      ? p.target->generation
                                                : 0;
      p.last_login_error = error_body;
      // Clients waiting to log in would meet the same refusal. With no usable server left
      // (none logged in with the current target), so would every client waiting for one.
      bool everyone = p.usable == 0 && p.target && p.login_fail_generation == p.target->generation;
      std::vector<Waiter*> out;
      p.waiters.for_each([&](Waiter& w) {
        if (w.login || everyone) out.push_back(&w);
      });
      for (Waiter* w : out) {
        p.waiters.remove(*w);
        w->queued = false;
        w->delivery_pending = true;
        failures.emplace_back(w, error_body);
      }
    }
  }
  for (auto& [w, body] : failures) {
    Waiter* wp = w;
    w->home->loop().post(
        [wp, b = std::move(body)]() mutable { wp->on_login_failed(std::move(b)); });
  }
}

std::string PoolManager::login_failure(Pool& p) {
  std::lock_guard<std::mutex> g(mu_);
  return p.last_connect_failed != 0 ? p.login_fail_message : std::string();
}

}  // namespace sluice::pool
