// Fuzz target: RequestQueue under arbitrary event sequences, and against a model Postgres server.
//
// The first input byte picks the mode:
//  - even: raw events (any frontend type, CopyInResponse, CommandComplete, ErrorResponse,
//    ReadyForQuery, the answers of extended-query messages, reset) in any order; checks the
//    queue's own invariants.
//  - odd: well-formed client traffic (simple and extended queries, FunctionCall, COPY FROM STDIN
//    by Query and by Execute, errors anywhere a server can raise them) passing through a pooler
//    to a model server that follows the Postgres protocol; the input chooses the traffic and how
//    forwarding, server processing and response delivery interleave. The queue must never owe
//    fewer ReadyForQuery than the server will still send (else a busy server looks idle), and
//    must owe nothing when the server has answered everything (and be idle unless an
//    extended-query batch still waits for its Sync).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "fuzz_check.h"
#include "proto/request_queue.h"

namespace {

using sluice::proto::RequestQueue;

// BUG (proto/request_queue.cc): while no ReadyForQuery is owed, a CopyDone/CopyFail is dropped
// as stray by on_frontend (and a queued one is popped by on_ready_for_query) even when an
// Execute since the last Sync puts the server in COPY IN mode (Execute followed by Flush or
// nothing, then data, CopyDone, Sync); the queue then owes one ReadyForQuery too few.
// Enable once fixed.
constexpr bool kGenerateCopyWithoutSync = true;

constexpr char kStatuses[] = {'I', 'T', 'E'};

// ---- raw mode ---------------------------------------------------------------------------

bool extended(char t) {
  return t == 'P' || t == 'B' || t == 'D' || t == 'E' || t == 'C' || t == 'H';
}

// `batch_open`: an extended-query message went out since the last Sync (idle() then also waits
// for that Sync; otherwise idle() means exactly "no ReadyForQuery owed").
// Parse, Bind, Describe, Execute and Close have entries of their own (answered by ParseComplete,
// BindComplete, RowDescription/NoData, CommandComplete, CloseComplete), so "idle" is "nothing
// owed and nothing queued".
void check_invariants(const RequestQueue& q, bool batch_open) {
  SLUICE_FUZZ_CHECK(q.rfq_owed() <= q.size());
  SLUICE_FUZZ_CHECK(!q.idle() || (q.rfq_owed() == 0 && q.size() == 0));
  if (!batch_open) SLUICE_FUZZ_CHECK(q.idle() == (q.rfq_owed() == 0 && q.size() == 0));
  SLUICE_FUZZ_CHECK(q.size() <= RequestQueue::kMaxEntries);
}

void run_raw(FuzzedDataProvider& in) {
  static constexpr char kFrontend[] = {'Q', 'S', 'F', 'c', 'f', 'd', 'P', 'B', 'E', 'D', 'H', 'C'};
  RequestQueue q;
  bool batch_open = false;
  while (in.remaining_bytes() > 0) {
    const std::uint8_t op = in.ConsumeIntegral<std::uint8_t>();
    const std::uint32_t owed = q.rfq_owed();
    const std::uint32_t size = q.size();
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {
        const char t = kFrontend[(op / 8) % sizeof kFrontend];
        SLUICE_FUZZ_CHECK(q.on_frontend(t));
        if (extended(t)) batch_open = true;
        if (t == 'S') batch_open = false;
        if (t == 'Q' || t == 'S' || t == 'F') {
          SLUICE_FUZZ_CHECK(q.rfq_owed() == owed + 1 && q.size() == size + 1);
        } else if (t == 'P' || t == 'B' || t == 'E' || t == 'D' || t == 'C') {
          SLUICE_FUZZ_CHECK(q.rfq_owed() == owed && q.size() == size + 1);
        } else if (t == 'c' || t == 'f') {
          SLUICE_FUZZ_CHECK(q.rfq_owed() == owed && q.size() <= size + 1);
        } else {
          SLUICE_FUZZ_CHECK(q.rfq_owed() == owed && q.size() == size);
        }
        break;
      }
      case 3:
        q.on_copy_in_response();
        SLUICE_FUZZ_CHECK(q.in_copy_in());
        SLUICE_FUZZ_CHECK(q.rfq_owed() == owed && q.size() == size);
        break;
      case 4:
      case 5:
        if (op % 8 == 4) {
          q.on_command_complete();
        } else {
          q.on_error_response();
          // An error with no Sync, Query or FunctionCall left to answer (after a Flush, which
          // has no entry, or with only copy markers queued) makes the server skip to the next
          // Sync: the batch stays open until one comes.
          if (q.rfq_owed() == 0) batch_open = true;
        }
        SLUICE_FUZZ_CHECK(!q.in_copy_in());
        SLUICE_FUZZ_CHECK(q.rfq_owed() <= owed && q.size() <= size);
        break;
      case 6: {
        const char s = kStatuses[(op / 8) % 3];
        q.on_ready_for_query(s);
        SLUICE_FUZZ_CHECK(q.tx_status() == s);
        // One ReadyForQuery answers exactly one request, if any is owed.
        SLUICE_FUZZ_CHECK(q.rfq_owed() == (owed > 0 ? owed - 1 : 0));
        break;
      }
      case 7:
        if (op / 8 == 0) {
          q.reset();
          batch_open = false;
          SLUICE_FUZZ_CHECK(q.size() == 0 && q.idle() && q.tx_status() == 'I' && !q.in_copy_in());
        } else {
          // An answer of an extended-query message (or a row): never owes more, never grows.
          static constexpr char kAnswers[] = {'1', '2', '3', 'n', 'T', 'D', 's', 'I', 't'};
          (void)q.on_backend(kAnswers[(op / 8) % sizeof kAnswers]);
          SLUICE_FUZZ_CHECK(q.rfq_owed() <= owed && q.size() <= size);
        }
        break;
    }
    check_invariants(q, batch_open);
  }
}

// ---- model mode -------------------------------------------------------------------------

// A frontend message as the client sends it, with what the server will make of it.
struct Msg {
  char type;
  bool fails = false;        // the server raises an error processing it
  bool starts_copy = false;  // Query/Execute of COPY FROM STDIN
  char status = 'I';         // ReadyForQuery status if this message gets one
};

struct BackendEvent {
  char type;  // 'G', 'C', 'E', 'Z', or '1' / '2' (ParseComplete / BindComplete)
  char status = 'I';
};

// What a Postgres backend does with each frontend message, reduced to the events the queue sees.
struct ModelServer {
  enum class Mode : std::uint8_t { Normal, CopyByQuery, CopyByExecute, IgnoreTillSync };
  Mode mode = Mode::Normal;

  // Processes one message; appends what it sends. Returns the ReadyForQuery count sent.
  int process(const Msg& m, std::deque<BackendEvent>* out) {
    int z = 0;
    auto emit = [&](char t, char s = 'I') {
      if (t == 'Z') ++z;
      if (out != nullptr) out->push_back({t, s});
    };
    switch (mode) {
      case Mode::IgnoreTillSync:
        if (m.type == 'S') {
          emit('Z', m.status);
          mode = Mode::Normal;
        }
        break;
      case Mode::CopyByQuery:
      case Mode::CopyByExecute: {
        const bool by_query = mode == Mode::CopyByQuery;
        if (m.type == 'S' || m.type == 'H') break;  // ignored in COPY IN mode
        SLUICE_FUZZ_CHECK(m.type == 'd' || m.type == 'c' || m.type == 'f');  // generator
        if (m.type == 'd' && !m.fails) break;
        if (m.type == 'c' && !m.fails) {
          emit('C');
          if (by_query) emit('Z', m.status);
          mode = Mode::Normal;
          break;
        }
        emit('E');  // bad row, failure at CopyDone, or CopyFail
        if (by_query) {
          emit('Z', m.status);
          mode = Mode::Normal;
        } else {
          mode = Mode::IgnoreTillSync;
        }
        break;
      }
      case Mode::Normal:
        switch (m.type) {
          case 'Q':
          case 'F':
            if (m.starts_copy) {
              emit('G');
              mode = Mode::CopyByQuery;
            } else {
              emit(m.fails ? 'E' : 'C');
              emit('Z', m.status);
            }
            break;
          case 'E':
            if (m.starts_copy) {
              emit('G');
              mode = Mode::CopyByExecute;
            } else if (m.fails) {
              emit('E');
              mode = Mode::IgnoreTillSync;
            } else {
              emit('C');
            }
            break;
          case 'S':
            emit('Z', m.status);
            break;
          case 'P':
            emit('1');
            break;
          case 'B':
            emit('2');
            break;
          default:
            break;  // Flush; CopyData/Done/Fail outside COPY
        }
        break;
    }
    return z;
  }
};

class ModelRun {
 public:
  explicit ModelRun(FuzzedDataProvider& in) : in_(in) {}

  void run() {
    while (in_.remaining_bytes() > 0) {
      switch (in_.ConsumeIntegral<std::uint8_t>() % 4) {
        case 0:
        case 1:
          forward();
          break;
        case 2:
          server_step();
          break;
        case 3:
          deliver();
          break;
      }
      check();
    }
    // Out of input: let everything already written reach its end.
    while (!client_.empty()) {
      forward();
      check();
    }
    while (!to_server_.empty() || !to_pooler_.empty()) {
      if (!to_server_.empty()) server_step();
      check();
      while (!to_pooler_.empty()) {
        deliver();
        check();
      }
    }
    if (server_.mode == ModelServer::Mode::Normal) {
      SLUICE_FUZZ_CHECK(q_.rfq_owed() == 0);
      SLUICE_FUZZ_CHECK(q_.size() == 0);
      if (!batch_open_) SLUICE_FUZZ_CHECK(q_.idle());
    }
  }

 private:
  char status() { return kStatuses[in_.ConsumeIntegral<std::uint8_t>() % 3]; }

  // Appends one client command (a few frontend messages) to what the client will write.
  void generate() {
    const std::uint8_t kind = in_.ConsumeIntegral<std::uint8_t>();
    const bool fails = (kind & 0x10) != 0;
    switch (kind % 6) {
      case 0:
        client_.push_back({'Q', fails, false, status()});
        break;
      case 1:
        client_.push_back({'F', fails, false, status()});
        break;
      case 2: {  // extended batch: one to three executes, then Sync (or Flush if none fails)
        client_.push_back({'P'});
        const int n = 1 + in_.ConsumeIntegral<std::uint8_t>() % 3;
        bool any_fails = false;
        for (int i = 0; i < n; ++i) {
          const bool f = in_.ConsumeBool();
          any_fails = any_fails || f;
          client_.push_back({'B'});
          client_.push_back({'E', f});
        }
        const bool flush_only = !any_fails && in_.ConsumeIntegral<std::uint8_t>() % 4 == 0;
        client_.push_back(flush_only ? Msg{'H'} : Msg{'S', false, false, status()});
        break;
      }
      case 3:    // COPY FROM STDIN by Query
      case 4: {  // COPY FROM STDIN by Execute (libpq pipeline mode and friends)
        const bool by_query = kind % 6 == 3;
        if (by_query) {
          client_.push_back({'Q', false, true, status()});
        } else {
          client_.push_back({'P'});
          client_.push_back({'B'});
          client_.push_back({'E', false, true});
          const std::uint8_t after = in_.ConsumeIntegral<std::uint8_t>() % 3;
          if (after == 0 || !kGenerateCopyWithoutSync) {
            client_.push_back({'S', false, false, status()});
          } else if (after == 1) {
            client_.push_back({'H'});
          }
        }
        const int rows = in_.ConsumeIntegral<std::uint8_t>() % 4;
        for (int i = 0; i < rows; ++i)
          client_.push_back({'d', in_.ConsumeBool()});
        const std::uint8_t end = in_.ConsumeIntegral<std::uint8_t>() % 4;
        if (end == 0) {
          client_.push_back({'f', false, false, status()});
        } else {
          client_.push_back({'c', end == 1, false, status()});
        }
        if (!by_query) {
          const int syncs = 1 + in_.ConsumeIntegral<std::uint8_t>() % 2;
          for (int i = 0; i < syncs; ++i)
            client_.push_back({'S', false, false, status()});
        }
        break;
      }
      case 5:
        client_.push_back({'H'});
        break;
    }
  }

  void forward() {
    if (client_.empty()) {
      if (in_.remaining_bytes() == 0) return;
      generate();
    }
    if (client_.empty()) return;
    const Msg m = client_.front();
    client_.pop_front();
    SLUICE_FUZZ_CHECK(q_.on_frontend(m.type));
    if (extended(m.type)) batch_open_ = true;
    if (m.type == 'S') batch_open_ = false;
    to_server_.push_back(m);
  }

  void server_step() {
    if (to_server_.empty()) return;
    server_.process(to_server_.front(), &to_pooler_);
    to_server_.pop_front();
  }

  void deliver() {
    if (to_pooler_.empty()) return;
    const BackendEvent e = to_pooler_.front();
    to_pooler_.pop_front();
    switch (e.type) {
      case 'G':
        q_.on_copy_in_response();
        SLUICE_FUZZ_CHECK(q_.in_copy_in());
        break;
      case 'C':
        q_.on_command_complete();
        break;
      case 'E':
        q_.on_error_response();
        break;
      case 'Z':
        q_.on_ready_for_query(e.status);
        SLUICE_FUZZ_CHECK(q_.tx_status() == e.status);
        break;
      default:
        (void)q_.on_backend(e.type);
        break;
    }
  }

  // ReadyForQuery the pooler will still receive for what it has forwarded so far, and the mode
  // the server will be in once it has read all of it.
  int future_rfq(ModelServer::Mode* mode) const {
    int n = 0;
    for (const auto& e : to_pooler_)
      n += e.type == 'Z' ? 1 : 0;
    ModelServer ahead = server_;
    for (const auto& m : to_server_)
      n += ahead.process(m, nullptr);
    *mode = ahead.mode;
    return n;
  }

  void check() {
    ModelServer::Mode ahead = ModelServer::Mode::Normal;
    const int future = future_rfq(&ahead);
    // A server that will skip to the next Sync (an error in COPY by Execute, whose Sync the
    // COPY swallowed) is in an open batch whatever the client last sent.
    check_invariants(q_, batch_open_ || ahead != ModelServer::Mode::Normal);
    // Never owe less than the server will send: a queue that does would call a busy server
    // idle and let it go back to the pool with results still coming.
    SLUICE_FUZZ_CHECK(static_cast<int>(q_.rfq_owed()) >= future);
    // Everything answered and the server waiting for a new command: nothing may be owed.
    if (to_server_.empty() && to_pooler_.empty() && server_.mode == ModelServer::Mode::Normal) {
      SLUICE_FUZZ_CHECK(q_.rfq_owed() == 0);
      if (!batch_open_) SLUICE_FUZZ_CHECK(q_.idle());
    }
  }

  FuzzedDataProvider& in_;
  RequestQueue q_;
  ModelServer server_;
  std::deque<Msg> client_;
  std::deque<Msg> to_server_;
  std::deque<BackendEvent> to_pooler_;
  bool batch_open_ = false;  // an extended-query message was forwarded since the last Sync
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeIntegral<std::uint8_t>() % 2 == 0) {
    run_raw(in);
  } else {
    ModelRun(in).run();
  }
  return 0;
}
