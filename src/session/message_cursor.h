// One direction of the relay at byte level: the message under way whose start was handled (its
// header read, its first bytes forwarded or dropped) while the rest has not arrived yet.
#pragma once

#include <cstdint>

#include "net/stream.h"

namespace sluice::session {

class MessageCursor {
 public:
  enum class Walk : std::uint8_t {
    Boundary,   // at the first byte of the next message (nothing under way)
    NeedInput,  // the rest of the message under way has not arrived
    Blocked,    // the output's segment table is full: flush it, then walk again
  };

  // Moves the scan position of `in` past what is buffered of the message under way: dropped,
  // or queued on `out` (zero-copy: the bytes stay in `in` until `out` has sent them). With no
  // `out` (the destination is gone) the rest of a message being forwarded is dropped.
  // Inline for the usual case, nothing under way (every message of the relay passes here).
  Walk walk(net::Stream& in, net::Outbox* out) {
    if (fwd_left_ == 0 && skip_left_ == 0) return Walk::Boundary;
    return walk_rest(in, out);
  }

  // The `wire`-byte message at the scan position is dropped: what is buffered now, and the
  // rest as it arrives (walk).
  void skip(net::Stream& in, std::uint32_t wire) {
    std::uint32_t n = wire < in.unscanned() ? wire : in.unscanned();
    in.scan += n;
    skip_left_ = wire - n;
  }
  // The first `taken` bytes of the `wire`-byte message at the scan position were queued for
  // forwarding: the scan moves past them, the rest is forwarded as it arrives (walk).
  void forwarded_start(net::Stream& in, std::uint32_t taken, std::uint32_t wire) {
    in.scan += taken;
    fwd_left_ = wire - taken;
  }
  // A new destination: nothing is under way toward it.
  void reset_forward() { fwd_left_ = 0; }

  // Bytes of the message under way still to forward, or to drop.
  [[nodiscard]] std::uint32_t forwarding() const { return fwd_left_; }
  [[nodiscard]] std::uint32_t skipping() const { return skip_left_; }

 private:
  Walk walk_rest(net::Stream& in, net::Outbox* out);

  std::uint32_t fwd_left_ = 0;   // rest of a message being streamed on
  std::uint32_t skip_left_ = 0;  // rest of a message being dropped
};

}  // namespace sluice::session
