// MessageCursor: the rest of a message streamed on or dropped as it arrives.
#include "session/message_cursor.h"

#include <algorithm>

namespace sluice::session {

MessageCursor::Walk MessageCursor::walk_rest(net::Stream& in, net::Outbox* out) {
  for (;;) {
    if (skip_left_ > 0) {
      std::uint32_t n = std::min(skip_left_, in.unscanned());
      if (n == 0) return Walk::NeedInput;
      in.scan += n;
      skip_left_ -= n;
      continue;
    }
    if (fwd_left_ > 0 && out == nullptr) {
      // The destination is gone (a server closed under its client): the rest is dropped.
      skip_left_ = fwd_left_;
      fwd_left_ = 0;
      continue;
    }
    if (fwd_left_ > 0) {
      std::uint32_t n = std::min(fwd_left_, in.unscanned());
      if (n == 0) return Walk::NeedInput;
      if (!out->add_forward(in.scan_ptr(), n)) return Walk::Blocked;
      in.scan += n;
      fwd_left_ -= n;
      continue;
    }
    return Walk::Boundary;
  }
}

}  // namespace sluice::session
