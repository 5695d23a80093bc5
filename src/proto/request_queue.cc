// RequestQueue: bookkeeping of responses owed by a server connection.
#include "proto/request_queue.h"

#include <cstring>

namespace sluice::proto {
namespace {
bool owes_rfq(char c) { return c == 'Q' || c == 'S' || c == 'F'; }
bool copy_marker(char c) { return c == 'c' || c == 'f'; }
}  // namespace

void RequestQueue::reset() {
  head_ = count_ = rfq_owed_ = 0;
  tx_status_ = 'I';
  copy_in_ = copy_by_query_ = drop_copy_marker_ = unsynced_ = false;
  heap_.reset();
  buf_ = inline_;
  cap_ = kInline;
}

void RequestQueue::push(char c) {
  if (count_ == cap_) {
    std::uint32_t ncap = cap_ * 2;
    auto nb = std::make_unique<char[]>(ncap);
    for (std::uint32_t i = 0; i < count_; ++i) nb[i] = at(i);
    heap_ = std::move(nb);
    buf_ = heap_.get();
    cap_ = ncap;
    head_ = 0;
  }
  buf_[(head_ + count_) & (cap_ - 1)] = c;
  ++count_;
  if (owes_rfq(c)) ++rfq_owed_;
}

void RequestQueue::pop_front() {
  if (owes_rfq(at(0))) --rfq_owed_;
  head_ = (head_ + 1) & (cap_ - 1);
  --count_;
}

void RequestQueue::erase_at(std::uint32_t i) {
  if (owes_rfq(at(i))) --rfq_owed_;
  for (std::uint32_t j = i; j + 1 < count_; ++j) {
    buf_[(head_ + j) & (cap_ - 1)] = at(j + 1);
  }
  --count_;
}

bool RequestQueue::on_frontend(char type) {
  if (copy_marker(type)) {
    if (drop_copy_marker_) {  // the server already left COPY mode; it drops this message
      drop_copy_marker_ = false;
      return true;
    }
    // Stray only if nothing can be in or about to enter COPY mode: nothing owed, no COPY seen,
    // no extended-query message (an Execute may start COPY) since the last Sync.
    if (rfq_owed_ == 0 && !copy_in_ && !unsynced_) return true;
  } else if (type == 'd') {
    return true;
  } else if (!owes_rfq(type)) {
    unsynced_ = true;  // Parse/Bind/Describe/Execute/Close/Flush (or unknown): until a Sync
    return true;
  }
  if (type == 'S' || type == 'Q') unsynced_ = false;
  if (count_ >= kMaxEntries) return false;
  push(type);
  return true;
}

void RequestQueue::on_copy_in_response() {
  copy_in_ = true;
  drop_copy_marker_ = false;
  copy_by_query_ = count_ > 0 && at(0) == 'Q';
}

// The server left COPY IN mode (CommandComplete or ErrorResponse). Syncs it read while in COPY
// mode got no answer: drop them, and the copy end marker that closed the COPY.
void RequestQueue::end_copy() {
  copy_in_ = false;
  std::uint32_t i = copy_by_query_ ? 1 : 0;  // the Query that started COPY still owes its RFQ
  copy_by_query_ = false;
  while (i < count_) {
    char c = at(i);
    if (copy_marker(c)) {
      erase_at(i);
      return;
    }
    if (c == 'S') {
      erase_at(i);
    } else {
      ++i;
    }
  }
  drop_copy_marker_ = true;  // the client's CopyDone/CopyFail is still to come
}

void RequestQueue::on_command_complete() {
  if (copy_in_) end_copy();
}

void RequestQueue::on_error_response() {
  if (copy_in_) end_copy();
}

void RequestQueue::on_ready_for_query(char status) {
  tx_status_ = status;
  // Leading copy markers answered by nothing (the COPY ended before they were queued).
  while (count_ > 0 && copy_marker(at(0))) pop_front();
  if (count_ > 0) pop_front();
  // Trailing markers of a COPY that ended unanswered; kept while an Execute since the last
  // Sync may still start the COPY they end.
  while (count_ > 0 && copy_marker(at(0)) && rfq_owed_ == 0 && !unsynced_) pop_front();
}

}  // namespace sluice::proto
