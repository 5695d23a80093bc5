// What a server connection still owes, request by request: which response belongs to which
// request, which responses sluice swallows, where it inserts its own, and COPY bookkeeping.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::proto {

// Transaction state is taken from ReadyForQuery's status byte and from this queue of requests
// still to be answered, never from SQL text (design.md I3).
//
// One entry per frontend message that gets a response: Query 'Q', Sync 'S', FunctionCall 'F',
// Parse 'P', Bind 'B', Describe 'D', Execute 'E', Close 'C'; plus COPY end markers ('c'
// CopyDone, 'f' CopyFail) that tell which Syncs the server ignores (a Sync that reaches the
// server in COPY IN mode gets no ReadyForQuery). Flush and CopyData get no entry.
class RequestQueue {
 public:
  enum class Action : std::uint8_t {
    Forward,   // the response goes to the client
    Swallow,   // sluice sent it (a re-Parse): its responses are dropped, errors still forwarded
    Internal,  // sluice's own query: everything it causes is dropped, errors included
    Synth,     // no server message: sluice answers in its place when it reaches the head
  };

  RequestQueue() = default;
  RequestQueue(const RequestQueue&) = delete;
  RequestQueue& operator=(const RequestQueue&) = delete;

  // A frontend message forwarded to the server (or answered by sluice: Action::Synth). `tag` is
  // the caller's: the id of its made-up answer for Synth, a statement id for a Parse it tracks.
  // False if the queue is full: the caller stops reading from the client until responses drain.
  [[nodiscard]] bool on_frontend(char type, Action a = Action::Forward, std::uint32_t tag = 0) {
    // Hot path: a request of the extended protocol or a Query/Sync, with room in the ring.
    if (count_ < cap_ && count_ < kMaxEntries) {
      switch (type) {
        case 'P':
        case 'B':
        case 'D':
        case 'E':
        case 'C':
          unsynced_ = true;
          buf_[(head_ + count_) & (cap_ - 1)] = Entry{type, a, tag};
          ++count_;
          return true;
        case 'S':
        case 'Q':
          unsynced_ = false;
          buf_[(head_ + count_) & (cap_ - 1)] = Entry{type, a, tag};
          ++count_;
          ++rfq_owed_;
          return true;
        default:
          break;
      }
    }
    return on_frontend_slow(type, a, tag);
  }

  // A backend message, in the order the server sent it: updates the queue and says whether
  // the client gets it. `type` is the backend message type.
  [[nodiscard]] bool on_backend(char type) { return route(type).forward; }
  // The same, also telling which request the message belonged to (before it was answered).
  struct Routed {
    bool forward;
    char head;          // frontend type of that request, or 0
    std::uint32_t tag;  // its tag
  };
  [[nodiscard]] Routed route(char type) {
    // Hot path, outside COPY: one table lookup says which request type a backend message
    // completes (or that it just belongs to the head request).
    if (markers_ == 0 && count_ > 0 && !copy_in_) {
      Entry& h = buf_[head_ & (cap_ - 1)];
      char completes = kCompletes[static_cast<unsigned char>(type)];
      if (completes != kSlowPath) {
        Routed r{h.action == Action::Forward, h.type, h.tag};
        if (completes == h.type) {  // P, B, C, D or E: no ReadyForQuery bookkeeping
          head_ = (head_ + 1) & (cap_ - 1);
          --count_;
        } else if (type == 'Z' && (h.type == 'S' || h.type == 'Q' || h.type == 'F')) {
          r.forward = h.action == Action::Forward;
          head_ = (head_ + 1) & (cap_ - 1);
          --count_;
          --rfq_owed_;
        } else if (type == 'Z') {
          return route_slow(type);
        }
        return r;
      }
    }
    return route_slow(type);
  }

  // The relay's fast path: a backend message that ends no Query or Sync (not 'Z') and that
  // goes to the client. True when it does and the queue took it; false changes nothing, and
  // the caller routes the message the general way.
  [[nodiscard]] bool pass_forward(char type) {
    if (markers_ != 0 || count_ == 0 || copy_in_) return false;
    Entry& h = buf_[head_ & (cap_ - 1)];
    char completes = kCompletes[static_cast<unsigned char>(type)];
    if (h.action != Action::Forward || completes == kSlowPath || type == 'Z') return false;
    if (completes == h.type) {
      head_ = (head_ + 1) & (cap_ - 1);
      --count_;
    }
    return true;
  }

  // True when the head is a forwarded simple Query and nothing special is pending: then
  // pass_forward() takes every message of the fast path unchanged until its ReadyForQuery, and
  // the relay need not ask it message by message.
  [[nodiscard]] bool head_is_forwarded_query() const {
    if (markers_ != 0 || count_ == 0 || copy_in_) return false;
    const Entry& h = buf_[head_ & (cap_ - 1)];
    return h.action == Action::Forward && h.type == 'Q';
  }

  // The status byte of ReadyForQuery ('Z'); call on_backend('Z') for the routing first.
  void set_tx_status(char status) { tx_status_ = status; }

  // Synthetic answers that have reached the head, one at a time: true and the tag while any.
  [[nodiscard]] bool pop_synth(std::uint32_t& tag);
  // Tags of Parse entries an error made the server skip (they were never prepared), since the
  // last call.
  [[nodiscard]] std::vector<std::uint32_t> take_skipped_parses() { return std::move(skipped_); }

  // Shorthands used by older callers and tests.
  void on_copy_in_response() { (void)on_backend('G'); }
  void on_command_complete() { (void)on_backend('C'); }
  void on_error_response() { (void)on_backend('E'); }
  void on_ready_for_query(char status) {
    (void)on_backend('Z');
    set_tx_status(status);
  }

  // Nothing owed and no extended-query message waiting for its Sync.
  [[nodiscard]] bool idle() const { return rfq_owed_ == 0 && count_ == 0 && !unsynced_; }
  [[nodiscard]] char tx_status() const { return tx_status_; }
  [[nodiscard]] bool in_copy_in() const { return copy_in_; }
  [[nodiscard]] std::uint32_t rfq_owed() const { return rfq_owed_; }
  [[nodiscard]] std::uint32_t size() const { return count_; }
  // Entries that may still be added before on_frontend() refuses (the queue is bounded).
  [[nodiscard]] std::uint32_t room() const { return kMaxEntries - count_; }
  // The action of the request the next response belongs to (Forward if none).
  [[nodiscard]] Action head_action() const;
  // The frontend type of that request, or 0, and its tag.
  [[nodiscard]] char head_type() const;
  [[nodiscard]] std::uint32_t head_tag() const;

  // Forget everything (new server connection, or after a reset).
  void reset();

  static constexpr std::uint32_t kMaxEntries = 1u << 20;

  // For each backend message type: the frontend request type it completes, 0 if it completes
  // nothing (it belongs to the head request), kSlowPath if it needs the full treatment.
  static constexpr char kSlowPath = 1;
  static constexpr std::array<char, 256> kCompletes = [] {
    std::array<char, 256> t{};
    for (auto& c : t)
      c = kSlowPath;
    t['D'] = 0;    // DataRow
    t['t'] = 0;    // ParameterDescription
    t['d'] = 0;    // CopyData
    t['V'] = 0;    // FunctionCallResponse
    t['H'] = 0;    // CopyOutResponse
    t['c'] = 0;    // CopyDone (copy out)
    t['1'] = 'P';  // ParseComplete
    t['2'] = 'B';  // BindComplete
    t['3'] = 'C';  // CloseComplete
    t['T'] = 'D';  // RowDescription: answers a Describe, else belongs to Query/Execute
    t['n'] = 'D';  // NoData
    t['C'] = 'E';  // CommandComplete
    t['I'] = 'E';  // EmptyQueryResponse
    t['s'] = 'E';  // PortalSuspended
    t['Z'] = 0;    // ReadyForQuery: handled inline when the head owes it
    return t;
  }();

 private:
  struct Entry {
    char type;
    Action action;
    std::uint32_t tag;
  };
  [[nodiscard]] const Entry& at(std::uint32_t i) const { return buf_[(head_ + i) & (cap_ - 1)]; }
  [[nodiscard]] Entry& at(std::uint32_t i) { return buf_[(head_ + i) & (cap_ - 1)]; }
  // First entry that is not a copy marker (markers exist only around COPY).
  [[nodiscard]] std::uint32_t head_index() const {
    if (markers_ == 0) return 0;
    std::uint32_t i = 0;
    while (i < count_ && (at(i).type == 'c' || at(i).type == 'f'))
      ++i;
    return i;
  }
  void push(Entry e);
  void erase_at(std::uint32_t i);
  enum class Verdict : std::uint8_t { Keep, Drop, KeepRest, DropKeepRest };
  template <class Decide>
  void remove_where(std::uint32_t from, Decide decide);
  void pop_front() {
    char t = at(0).type;
    if (t == 'Q' || t == 'S' || t == 'F') --rfq_owed_;
    if (t == 'c' || t == 'f') --markers_;
    head_ = (head_ + 1) & (cap_ - 1);
    --count_;
  }
  void complete_head();
  void skip_to_sync(std::uint32_t from);
  void end_copy();
  [[nodiscard]] Routed route_slow(char type);
  [[nodiscard]] bool on_frontend_slow(char type, Action a, std::uint32_t tag);

  static constexpr std::uint32_t kInline = 16;
  Entry inline_[kInline] = {};
  std::unique_ptr<Entry[]> heap_;
  Entry* buf_ = inline_;
  std::uint32_t cap_ = kInline;  // power of two
  std::uint32_t head_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t rfq_owed_ = 0;
  std::uint32_t markers_ = 0;  // copy markers queued
  char tx_status_ = 'I';
  bool copy_in_ = false;
  bool copy_by_query_ = false;     // the COPY was started by a simple Query
  bool drop_copy_marker_ = false;  // COPY ended before the client's CopyDone/CopyFail arrived
  bool unsynced_ = false;          // extended-query messages sent since the last Sync
  std::vector<std::uint32_t> skipped_;
};

}  // namespace sluice::proto
