// Runs a task on every worker's own thread and a completion on one worker once all have run.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "session/session_worker.h"

namespace sluice::admin {

// `each` runs on every worker's thread (its clients and servers may be touched there); then
// `done` runs on `home`'s thread with the parts in worker order. Nothing waits: the last worker
// to finish posts `done`. If a loop has stopped (shutdown), `done` never runs.
template <typename Part>
void fan_out(const std::vector<session::SessionWorker*>& workers, session::SessionWorker& home,
             std::function<Part(session::SessionWorker&)> each,
             std::function<void(std::vector<Part>)> done) {
  struct State {
    std::vector<Part> parts;
    std::atomic<std::size_t> left;
    std::function<Part(session::SessionWorker&)> each;
    std::function<void(std::vector<Part>)> done;
  };
  auto st = std::make_shared<State>();
  st->parts.resize(workers.size());
  st->left.store(workers.size());
  st->each = std::move(each);
  st->done = std::move(done);
  session::SessionWorker* h = &home;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    session::SessionWorker* w = workers[i];
    w->loop().post([st, i, w, h] {
      st->parts[i] = st->each(*w);
      if (st->left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        h->loop().post([st] { st->done(std::move(st->parts)); });
      }
    });
  }
}

}  // namespace sluice::admin
