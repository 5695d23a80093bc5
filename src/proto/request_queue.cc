// RequestQueue: bookkeeping of responses owed by a server connection, request by request.
#include "proto/request_queue.h"

namespace sluice::proto {
namespace {
bool owes_rfq(char c) {
  return c == 'Q' || c == 'S' || c == 'F';
}
bool copy_marker(char c) {
  return c == 'c' || c == 'f';
}
bool extended(char c) {
  return c == 'P' || c == 'B' || c == 'D' || c == 'E' || c == 'C';
}
}  // namespace

void RequestQueue::reset() {
  head_ = count_ = rfq_owed_ = markers_ = 0;
  tx_status_ = 'I';
  copy_in_ = copy_by_query_ = drop_copy_marker_ = unsynced_ = false;
  skipped_.clear();
  heap_.reset();
  buf_ = inline_;
  cap_ = kInline;
}

void RequestQueue::push(Entry e) {
  if (count_ == cap_) {
    std::uint32_t ncap = cap_ * 2;
    auto nb = std::make_unique<Entry[]>(ncap);
    for (std::uint32_t i = 0; i < count_; ++i)
      nb[i] = at(i);
    heap_ = std::move(nb);
    buf_ = heap_.get();
    cap_ = ncap;
    head_ = 0;
  }
  buf_[(head_ + count_) & (cap_ - 1)] = e;
  ++count_;
  if (owes_rfq(e.type)) ++rfq_owed_;
  if (copy_marker(e.type)) ++markers_;
}

// Removes entry i, moving whichever side of it is shorter: i is the head index (copy markers
// ahead of it, usually none) for every response, so this is O(1) in practice and never O(n^2)
// over a long queue.
void RequestQueue::erase_at(std::uint32_t i) {
  if (i == 0) {
    pop_front();
    return;
  }
  if (owes_rfq(at(i).type)) --rfq_owed_;
  if (copy_marker(at(i).type)) --markers_;
  if (i < count_ - 1 - i) {
    for (std::uint32_t j = i; j > 0; --j)
      at(j) = at(j - 1);
    head_ = (head_ + 1) & (cap_ - 1);
  } else {
    for (std::uint32_t j = i; j + 1 < count_; ++j)
      at(j) = at(j + 1);
  }
  --count_;
}

// Removes, in one pass from index `from`, the entries `decide` says to drop; the others keep
// their order. Linear in what follows `from`, whatever is removed (it once erased entries one at
// a time: 200,000 Syncs during a COPY took 15 s to drop, for every client of the worker).
template <class Decide>
void RequestQueue::remove_where(std::uint32_t from, Decide decide) {
  std::uint32_t r = from;  // read index
  std::uint32_t w = from;  // write index; r - w entries removed so far
  for (; r < count_; ++r) {
    Entry e = at(r);
    Verdict v = decide(e);
    if (v == Verdict::Keep || v == Verdict::KeepRest) {
      if (w != r) at(w) = e;
      ++w;
      if (v == Verdict::KeepRest) {
        ++r;
        break;
      }
      continue;
    }
    if (owes_rfq(e.type)) --rfq_owed_;
    if (copy_marker(e.type)) --markers_;
    if (v == Verdict::DropKeepRest) {
      ++r;
      break;
    }
  }
  if (w == r) return;  // nothing removed
  for (; r < count_; ++r, ++w)
    at(w) = at(r);
  count_ = w;
}

RequestQueue::Action RequestQueue::head_action() const {
  std::uint32_t i = head_index();
  return i < count_ ? at(i).action : Action::Forward;
}

char RequestQueue::head_type() const {  // NOLINT: kept for tests
  std::uint32_t i = head_index();
  return i < count_ ? at(i).type : '\0';
}

bool RequestQueue::on_frontend_slow(char type, Action a, std::uint32_t tag) {
  if (copy_marker(type)) {
    if (drop_copy_marker_) {  // the server already left COPY mode; it drops this message
      drop_copy_marker_ = false;
      return true;
    }
    // Stray only if nothing can be in or about to enter COPY mode: nothing owed, no COPY seen,
    // no extended-query message (an Execute may start COPY) since the last Sync.
    if (rfq_owed_ == 0 && !copy_in_ && !unsynced_) return true;
    // Right after another marker it can end no COPY (the first one ends it; nothing between
    // them starts one): stray too. So markers never pile up ahead of the head request.
    if (count_ > 0 && copy_marker(at(count_ - 1).type)) return true;
  } else if (type == 'S' || type == 'Q') {
    unsynced_ = false;
  } else if (extended(type)) {
    unsynced_ = true;
  } else if (type != 'F') {
    // Flush and CopyData get no answer; an unknown type makes the server end the session.
    if (type != 'H' && type != 'd') unsynced_ = true;
    return true;
  }
  if (count_ >= kMaxEntries) return false;
  push(Entry{type, a, tag});
  return true;
}

std::uint32_t RequestQueue::head_tag() const {
  std::uint32_t i = head_index();
  return i < count_ ? at(i).tag : 0;
}

bool RequestQueue::pop_synth(std::uint32_t& tag) {
  if (count_ == 0 || at(0).action != Action::Synth) return false;
  tag = at(0).tag;
  pop_front();
  return true;
}

void RequestQueue::complete_head() {
  std::uint32_t i = head_index();
  if (i < count_) erase_at(i);
}

// After an error in an extended-query batch the server skips to the next Sync: the requests in
// between get no answer (synthetic ones included: the server would not have answered them).
// `from` is the failed request itself, removed too (it is not a skipped Parse: its caller knows).
void RequestQueue::skip_to_sync(std::uint32_t from) {
  bool first = true;
  remove_where(from, [&](const Entry& e) {
    if (!first && (e.type == 'S' || copy_marker(e.type))) return Verdict::KeepRest;
    if (!first && e.type == 'P' && e.action != Action::Synth && e.tag != 0) {
      skipped_.push_back(e.tag);
    }
    first = false;
    return Verdict::Drop;
  });
}

// The server left COPY IN mode (CommandComplete or ErrorResponse). Syncs it read while in COPY
// mode got no answer: drop them, and the copy end marker that closed the COPY, in one pass.
void RequestQueue::end_copy() {
  copy_in_ = false;
  copy_by_query_ = false;
  // The Query or Execute that started COPY stays (it is still answered); a Sync at the head
  // was read in COPY mode like the others.
  std::uint32_t i = head_index();
  if (i < count_ && (at(i).type == 'Q' || at(i).type == 'E')) ++i;
  bool marker = false;
  remove_where(i, [&](const Entry& e) {
    if (copy_marker(e.type)) {
      marker = true;
      return Verdict::DropKeepRest;
    }
    return e.type == 'S' ? Verdict::Drop : Verdict::Keep;
  });
  if (!marker) drop_copy_marker_ = true;  // the client's CopyDone/CopyFail is still to come
}

RequestQueue::Routed RequestQueue::route_slow(char type) {
  std::uint32_t i = head_index();
  Action act = i < count_ ? at(i).action : Action::Forward;
  char head = i < count_ ? at(i).type : '\0';
  std::uint32_t tag = i < count_ ? at(i).tag : 0;
  auto out = [&](bool fwd) { return Routed{fwd, head, tag}; };
  switch (type) {
    case 'A':  // NotificationResponse: always the client's
      return out(true);
    case 'N':  // NoticeResponse, ParameterStatus: asynchronous, but caused by the head request
    case 'S':
      return out(act != Action::Internal);
    case 'Z': {
      while (count_ > 0 && copy_marker(at(0).type))
        pop_front();
      act = Action::Forward;
      // Everything up to the first Query/Sync/FunctionCall is answered now.
      while (count_ > 0) {
        Entry e = at(0);
        pop_front();
        if (owes_rfq(e.type)) {
          act = e.action;
          break;
        }
      }
      while (count_ > 0 && copy_marker(at(0).type) && rfq_owed_ == 0 && !unsynced_)
        pop_front();
      return out(act == Action::Forward);
    }
    case 'E':
      if (copy_in_) end_copy();
      {
        // After an error in an extended-query message (a Flush too: it has no entry, so nothing
        // is owed when its error comes) the server skips to the next Sync, a Query or
        // FunctionCall included. With no Sync queued it ignores everything until one comes,
        // sluice's own ROLLBACK too: not idle.
        std::uint32_t k = head_index();
        bool skips = k >= count_ || extended(at(k).type);
        for (; skips && k < count_; ++k)
          skips = at(k).type != 'S' && !copy_marker(at(k).type);
        if (skips) unsynced_ = true;
      }
      i = head_index();
      act = i < count_ ? at(i).action : Action::Forward;
      head = i < count_ ? at(i).type : '\0';
      tag = i < count_ ? at(i).tag : 0;
      if (extended(head)) skip_to_sync(i);
      return out(act != Action::Internal);
    case 'C':
      if (copy_in_) end_copy();
      i = head_index();
      act = i < count_ ? at(i).action : Action::Forward;
      if (i < count_ && at(i).type == 'E') erase_at(i);
      return out(act == Action::Forward);
    case 'I':
    case 's':
      if (head == 'E') complete_head();
      return out(act == Action::Forward);
    case '1':
      if (head == 'P') complete_head();
      return out(act == Action::Forward);
    case '2':
      if (head == 'B') complete_head();
      return out(act == Action::Forward);
    case '3':
      if (head == 'C') complete_head();
      return out(act == Action::Forward);
    case 'n':
    case 'T':
      if (head == 'D') complete_head();
      return out(act == Action::Forward);
    case 'G':
    case 'W':
      copy_in_ = true;
      copy_by_query_ = head == 'Q';
      drop_copy_marker_ = false;
      return out(act == Action::Forward);
    default:  // DataRow, CopyData, CopyOutResponse, ParameterDescription, ...: the head's
      return out(act == Action::Forward);
  }
}

}  // namespace sluice::proto
