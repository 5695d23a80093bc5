// MessageCursor over real sockets: bytes written to one end of a socket pair arrive in a
// net::Stream in pieces; what the cursor forwards is sent through an Outbox to a second pair and
// read back exactly.
#include "session/message_cursor.h"

#include <gtest/gtest.h>

#include <string>

#include "core/buffer.h"
#include "unit/net/socket_pair.h"

namespace sluice::session {
namespace {

using net::testing::SocketPair;
using Walk = MessageCursor::Walk;

// A backend-style message: type, length, `body_len` bytes of `fill`.
std::string message(char type, std::uint32_t body_len, char fill) {
  std::string m(1, type);
  std::uint32_t len = body_len + 4;
  m.push_back(static_cast<char>(len >> 24));
  m.push_back(static_cast<char>(len >> 16));
  m.push_back(static_cast<char>(len >> 8));
  m.push_back(static_cast<char>(len));
  m.append(body_len, fill);
  return m;
}

class MessageCursorTest : public ::testing::Test {
 protected:
  MessageCursorTest() : buffers_(4096) { in_.fd = source_.a(); }
  ~MessageCursorTest() override {
    in_.out.clear();
    out_.clear();
    buffers_.release(in_.in);
  }

  // The peer sends `bytes`; the stream reads all of them.
  void arrive(const std::string& bytes) {
    SocketPair::write_all(source_.b(), bytes);
    std::size_t got = 0;
    while (got < bytes.size()) {
      auto r = in_.read(buffers_);
      ASSERT_EQ(r.kind, net::IoResult::Kind::Data);
      ASSERT_GT(r.n, 0u);
      got += r.n;
    }
  }

  // Sends what `out_` holds and returns what the destination received.
  std::string delivered() {
    int err = 0;
    EXPECT_EQ(out_.flush(dest_.a(), err), net::Outbox::Flush::Done);
    return SocketPair::drain(dest_.b());
  }

  // What a relay does with a message it forwards: the buffered part queued, the rest to follow.
  void forward_start(std::uint32_t wire) {
    std::uint32_t avail = std::min(wire, in_.unscanned());
    ASSERT_TRUE(out_.add_forward(in_.scan_ptr(), avail));
    cursor_.forwarded_start(in_, avail, wire);
  }

  SocketPair source_;
  SocketPair dest_;
  core::BufferPool buffers_;
  net::Stream in_;
  net::Outbox out_;
  MessageCursor cursor_;
};

TEST_F(MessageCursorTest, NothingUnderWayIsABoundary) {
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::Boundary);
  arrive(message('Z', 1, 'I'));
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::Boundary);
  EXPECT_EQ(in_.scan, 0u);  // the next message is the relay's to read
  EXPECT_TRUE(out_.empty());
}

TEST_F(MessageCursorTest, ForwardsTheRestOfAMessageAsItArrives) {
  std::string big = message('D', 300, 'x');
  std::string next = message('C', 7, 'y');
  arrive(big.substr(0, 40));
  forward_start(static_cast<std::uint32_t>(big.size()));
  EXPECT_EQ(cursor_.forwarding(), big.size() - 40);
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::NeedInput);
  arrive(big.substr(40, 100));
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::NeedInput);
  EXPECT_EQ(cursor_.forwarding(), big.size() - 140);
  arrive(big.substr(140) + next);
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::Boundary);
  EXPECT_EQ(cursor_.forwarding(), 0u);
  // The scan stops at the next message, and exactly the first one went through.
  EXPECT_EQ(in_.unscanned(), next.size());
  EXPECT_EQ(std::string(in_.scan_ptr(), next.size()), next);
  EXPECT_EQ(delivered(), big);
}

TEST_F(MessageCursorTest, SkipsTheRestOfAMessageAsItArrives) {
  std::string dropped = message('N', 200, 'n');
  std::string next = message('Z', 1, 'I');
  arrive(dropped.substr(0, 10));
  cursor_.skip(in_, static_cast<std::uint32_t>(dropped.size()));
  EXPECT_EQ(in_.unscanned(), 0u);
  EXPECT_EQ(cursor_.skipping(), dropped.size() - 10);
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::NeedInput);
  arrive(dropped.substr(10) + next);
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::Boundary);
  EXPECT_EQ(cursor_.skipping(), 0u);
  EXPECT_EQ(std::string(in_.scan_ptr(), in_.unscanned()), next);
  EXPECT_TRUE(out_.empty());
}

TEST_F(MessageCursorTest, AWholeMessageSkippedAtOnceLeavesNothingUnderWay) {
  std::string m = message('S', 20, 's');
  arrive(m + message('Z', 1, 'I'));
  cursor_.skip(in_, static_cast<std::uint32_t>(m.size()));
  EXPECT_EQ(cursor_.skipping(), 0u);
  EXPECT_EQ(in_.scan, m.size());
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::Boundary);
}

TEST_F(MessageCursorTest, TheRestIsDroppedWhenTheDestinationIsGone) {
  std::string big = message('d', 500, 'c');
  std::string next = message('S', 4, 0);
  arrive(big.substr(0, 100));
  forward_start(static_cast<std::uint32_t>(big.size()));
  EXPECT_EQ(delivered(), big.substr(0, 100));
  arrive(big.substr(100, 50));
  // The server closed under the client: no destination any more.
  EXPECT_EQ(cursor_.walk(in_, nullptr), Walk::NeedInput);
  EXPECT_EQ(cursor_.forwarding(), 0u);
  EXPECT_EQ(cursor_.skipping(), big.size() - 150);
  arrive(big.substr(150) + next);
  EXPECT_EQ(cursor_.walk(in_, nullptr), Walk::Boundary);
  EXPECT_EQ(std::string(in_.scan_ptr(), in_.unscanned()), next);
  EXPECT_EQ(delivered(), "");
}

TEST_F(MessageCursorTest, AFullSegmentTableBlocksUntilFlushed) {
  std::string big = message('D', 100, 'q');
  arrive(big.substr(0, 20));
  forward_start(static_cast<std::uint32_t>(big.size()));
  // Fill the destination's segment table with other (non-adjacent) segments.
  static const char other[64] = "0123456789abcdef0123456789abcdef0123456789abcdef";
  std::string expect = big.substr(0, 20);
  for (int i = 0; out_.free_segs() > 0; ++i) {
    ASSERT_TRUE(out_.add_forward(other + 4 * i, 1));
    expect += other[4 * i];
  }
  arrive(big.substr(20));
  std::uint32_t scan = in_.scan;
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::Blocked);
  EXPECT_EQ(in_.scan, scan);  // nothing taken
  EXPECT_EQ(delivered(), expect);
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::Boundary);
  EXPECT_EQ(delivered(), big.substr(20));
}

TEST_F(MessageCursorTest, ANewDestinationHasNothingUnderWay) {
  std::string big = message('D', 100, 'r');
  arrive(big.substr(0, 10));
  forward_start(static_cast<std::uint32_t>(big.size()));
  cursor_.reset_forward();
  EXPECT_EQ(cursor_.forwarding(), 0u);
  EXPECT_EQ(cursor_.walk(in_, &out_), Walk::Boundary);
}

}  // namespace
}  // namespace sluice::session
