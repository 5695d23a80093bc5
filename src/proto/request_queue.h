// What a server connection still owes: ReadyForQuery per Query/Sync/FunctionCall, COPY bookkeeping.
#pragma once

#include <cstdint>
#include <memory>

namespace sluice::proto {

// Transaction state is taken from ReadyForQuery's status byte and from this queue of requests
// still to be answered, never from SQL text (design.md I3).
//
// Entries are the frontend message types that end in ReadyForQuery ('Q', 'S', 'F') plus COPY
// end markers ('c' CopyDone, 'f' CopyFail) that tell which Syncs the server ignores: a Sync
// that reaches the server while it is in COPY IN mode gets no ReadyForQuery.
class RequestQueue {
 public:
  RequestQueue() = default;
  RequestQueue(const RequestQueue&) = delete;
  RequestQueue& operator=(const RequestQueue&) = delete;

  // A frontend message forwarded to the server. Returns false if the queue is full (the
  // caller stops reading from the client until responses drain).
  [[nodiscard]] bool on_frontend(char type);

  // Backend messages, in the order the server sent them.
  void on_copy_in_response();  // 'G' and 'W'
  void on_command_complete();  // 'C'
  void on_error_response();    // 'E'
  void on_ready_for_query(char status);

  // Nothing owed: no Query/Sync/FunctionCall without its ReadyForQuery, and no extended-query
  // message (Parse, Bind, Describe, Execute, Close, Flush) still waiting for its Sync.
  [[nodiscard]] bool idle() const { return rfq_owed_ == 0 && !unsynced_; }
  [[nodiscard]] char tx_status() const { return tx_status_; }
  [[nodiscard]] bool in_copy_in() const { return copy_in_; }
  [[nodiscard]] std::uint32_t rfq_owed() const { return rfq_owed_; }
  [[nodiscard]] std::uint32_t size() const { return count_; }

  // Forget everything (new server connection, or after a reset).
  void reset();

  static constexpr std::uint32_t kMaxEntries = 1u << 20;

 private:
  [[nodiscard]] char at(std::uint32_t i) const { return buf_[(head_ + i) & (cap_ - 1)]; }
  void push(char c);
  void erase_at(std::uint32_t i);
  void pop_front();
  void end_copy();

  static constexpr std::uint32_t kInline = 16;
  char inline_[kInline] = {};
  std::unique_ptr<char[]> heap_;
  char* buf_ = inline_;
  std::uint32_t cap_ = kInline;  // power of two
  std::uint32_t head_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t rfq_owed_ = 0;
  char tx_status_ = 'I';
  bool copy_in_ = false;
  bool copy_by_query_ = false;     // the COPY was started by a simple Query
  bool drop_copy_marker_ = false;  // COPY ended before the client's CopyDone/CopyFail arrived
  bool unsynced_ = false;          // extended-query messages sent since the last Sync
};

}  // namespace sluice::proto
