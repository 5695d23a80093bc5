// Tests for net::Outbox over a real socket pair: ordering, segment merging and limits, partial
// sends, materialize, errors without SIGPIPE.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>
#include <string>

#include "net/stream.h"
#include "socket_pair.h"

namespace sluice::net {
namespace {

using testing::SocketPair;

// Flushes until Done, draining the peer whenever the socket is full. Bounded: fails after
// too many rounds without progress.
std::string flush_all(Outbox& out, int fd, int peer) {
  std::string got;
  for (int round = 0; round < 100000; ++round) {
    int err = 0;
    auto r = out.flush(fd, err);
    if (r == Outbox::Flush::Error) {
      ADD_FAILURE() << "flush error " << err;
      break;
    }
    got += SocketPair::drain(peer);
    if (r == Outbox::Flush::Done) {
      got += SocketPair::drain(peer);
      return got;
    }
  }
  ADD_FAILURE() << "flush never completed";
  return got;
}

std::string numbered(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>(seed + (i * 7 + i / 251) % 23);
  return s;
}

TEST(Outbox, StartsEmpty) {
  Outbox out;
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(out.pending_bytes(), 0u);
  EXPECT_FALSE(out.has_forwarded());
  SocketPair sp;
  int err = 0;
  EXPECT_EQ(out.flush(sp.a(), err), Outbox::Flush::Done);
}

TEST(Outbox, ForwardedAndSyntheticInterleavedInOrder) {
  SocketPair sp;
  const std::string src1 = "forwarded-one|";
  const std::string src2 = "forwarded-two|";
  Outbox out;
  out.add_synth("synth-a|");
  ASSERT_TRUE(out.add_forward(src1.data(), static_cast<std::uint32_t>(src1.size())));
  std::size_t mark = out.synth_mark();
  out.synth() += "synth-b|";
  ASSERT_TRUE(out.commit_synth(mark));
  ASSERT_TRUE(out.add_forward(src2.data(), static_cast<std::uint32_t>(src2.size())));
  out.add_synth("synth-c");
  EXPECT_TRUE(out.has_forwarded());
  EXPECT_EQ(out.pending_bytes(), 8 + src1.size() + 8 + src2.size() + 7);
  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Done);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(out.pending_bytes(), 0u);
  EXPECT_EQ(SocketPair::drain(sp.b()), "synth-a|forwarded-one|synth-b|forwarded-two|synth-c");
}

TEST(Outbox, SingleSegmentFlush) {
  SocketPair sp;
  const std::string src = "only";
  Outbox out;
  ASSERT_TRUE(out.add_forward(src.data(), 4));
  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Done);
  EXPECT_EQ(SocketPair::drain(sp.b()), "only");
}

TEST(Outbox, EmptyAddsAddNothing) {
  Outbox out;
  const char c = 'x';
  EXPECT_TRUE(out.add_forward(&c, 0));
  EXPECT_TRUE(out.commit_synth(out.synth_mark()));
  EXPECT_TRUE(out.empty());
}

// Segments that continue the previous one in the same source buffer share a table entry.
TEST(Outbox, ContiguousForwardedSegmentsMerge) {
  std::string src = "0123456789";
  std::string others[Outbox::kMaxSegs];
  Outbox out;
  ASSERT_TRUE(out.add_forward(src.data(), 2));
  ASSERT_TRUE(out.add_forward(src.data() + 2, 3));  // merges
  ASSERT_TRUE(out.add_forward(src.data() + 5, 5));  // merges
  // Room is left for kMaxSegs - 1 separate segments.
  for (int i = 0; i < Outbox::kMaxSegs - 1; ++i) {
    others[i] = "other" + std::to_string(i);
    ASSERT_TRUE(out.add_forward(others[i].data(), static_cast<std::uint32_t>(others[i].size())))
        << i;
  }
  SocketPair sp;
  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Done);
  EXPECT_EQ(SocketPair::drain(sp.b()), "0123456789other0other1other2other3other4");
}

// Consecutive synthetic commits merge too.
TEST(Outbox, ConsecutiveSyntheticMerge) {
  Outbox out;
  for (int i = 0; i < 3 * Outbox::kMaxSegs; ++i) {
    std::size_t mark = out.synth_mark();
    out.synth() += std::to_string(i % 10);
    ASSERT_TRUE(out.commit_synth(mark)) << i;
  }
  std::string other = "-";
  for (int i = 0; i < Outbox::kMaxSegs - 1; ++i) {
    ASSERT_TRUE(out.add_forward(other.data(), 1)) << i;
  }
  EXPECT_FALSE(out.add_forward(other.data(), 1));
}

TEST(Outbox, FullSegmentTableRefusesForward) {
  // Slices of one source with a gap between them, so none continues the previous one.
  const std::string src = "seg0;_seg1;_seg2;_seg3;_seg4;_seg5;tail_refused";
  Outbox out;
  for (int i = 0; i < Outbox::kMaxSegs; ++i) {
    ASSERT_TRUE(out.add_forward(src.data() + i * 6, 5)) << i;
  }
  EXPECT_FALSE(out.add_forward(src.data() + 40, 7)) << "seventh separate segment";
  // A continuation of the last segment needs no entry.
  EXPECT_TRUE(out.add_forward(src.data() + 35, 4));
  std::size_t mark = out.synth_mark();
  out.synth() += "dropped";
  EXPECT_FALSE(out.commit_synth(mark));
  EXPECT_EQ(out.synth_mark(), mark) << "a refused commit takes its bytes back";
  SocketPair sp;
  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Done);
  EXPECT_EQ(SocketPair::drain(sp.b()), "seg0;seg1;seg2;seg3;seg4;seg5;tail");
}

// add_synth never fails: with the table full it folds everything into one synthetic segment.
TEST(Outbox, AddSynthFoldsWhenFull) {
  std::string srcs[Outbox::kMaxSegs];
  Outbox out;
  // Alternating, ending with a forwarded segment so the next synthetic bytes cannot merge.
  for (int i = 0; i < Outbox::kMaxSegs; ++i) {
    if (i % 2 == 1) {
      srcs[i] = "F" + std::to_string(i);
      ASSERT_TRUE(out.add_forward(srcs[i].data(), static_cast<std::uint32_t>(srcs[i].size())));
    } else {
      out.add_synth("S" + std::to_string(i));
    }
  }
  EXPECT_FALSE(out.add_forward("x", 1));
  out.add_synth("<folded>");
  EXPECT_FALSE(out.has_forwarded()) << "forwarded bytes were copied";
  EXPECT_EQ(out.pending_bytes(), 12u + 8u);
  for (auto& s : srcs)
    s.assign(s.size(), '#');  // sources may change now
  // The table has room again.
  std::string more = "+more";
  EXPECT_TRUE(out.add_forward(more.data(), 5));
  SocketPair sp;
  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Done);
  EXPECT_EQ(SocketPair::drain(sp.b()), "S0F1S2F3S4F5<folded>+more");
}

TEST(Outbox, MaterializeCopiesForwardedBytes) {
  std::string src1 = "first-source;";
  std::string src2 = "second-source";
  Outbox out;
  ASSERT_TRUE(out.add_forward(src1.data(), static_cast<std::uint32_t>(src1.size())));
  out.add_synth("[s]");
  ASSERT_TRUE(out.add_forward(src2.data(), static_cast<std::uint32_t>(src2.size())));
  out.materialize();
  EXPECT_FALSE(out.has_forwarded());
  EXPECT_EQ(out.pending_bytes(), src1.size() + 3 + src2.size());
  src1.assign(src1.size(), '#');
  src2.assign(src2.size(), '#');
  SocketPair sp;
  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Done);
  EXPECT_EQ(SocketPair::drain(sp.b()), "first-source;[s]second-source");
}

// After a partial send, what is left of a forwarded segment is materialized too.
TEST(Outbox, MaterializeAfterPartialSend) {
  SocketPair sp;
  SocketPair::set_sndbuf(sp.a(), 4096);
  std::string src = numbered(512 * 1024, 'a');
  const std::string expected = src;
  Outbox out;
  ASSERT_TRUE(out.add_forward(src.data(), static_cast<std::uint32_t>(src.size())));
  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Blocked);
  std::size_t left = out.pending_bytes();
  ASSERT_GT(left, 0u);
  ASSERT_LT(left, src.size());
  out.materialize();
  EXPECT_FALSE(out.has_forwarded());
  EXPECT_EQ(out.pending_bytes(), left);
  src.assign(src.size(), '#');
  EXPECT_EQ(flush_all(out, sp.a(), sp.b()), expected);
}

TEST(Outbox, ClearDropsEverything) {
  std::string src = "abc";
  Outbox out;
  ASSERT_TRUE(out.add_forward(src.data(), 3));
  out.add_synth("def");
  out.clear();
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(out.pending_bytes(), 0u);
  SocketPair sp;
  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Done);
  EXPECT_EQ(SocketPair::drain(sp.b()), "");
}

// A socket that takes nothing: Blocked, and nothing is lost.
TEST(Outbox, BlockedWhenSocketIsFull) {
  SocketPair sp;
  SocketPair::set_sndbuf(sp.a(), 4096);
  std::size_t filler = SocketPair::fill(sp.a());
  ASSERT_GT(filler, 0u);
  std::string src = "payload";
  Outbox out;
  ASSERT_TRUE(out.add_forward(src.data(), 7));
  out.add_synth("!");
  int err = 0;
  EXPECT_EQ(out.flush(sp.a(), err), Outbox::Flush::Blocked);
  EXPECT_EQ(out.pending_bytes(), 8u);
  std::string got = flush_all(out, sp.a(), sp.b());
  ASSERT_EQ(got.size(), filler + 8);
  EXPECT_EQ(got.substr(filler), "payload!");
}

// Large segments through a small send buffer: each flush sends part, possibly stopping inside
// a segment; the rest stays queued in order and later flushes complete it.
TEST(Outbox, PartialSendsKeepOrder) {
  SocketPair sp;
  SocketPair::set_sndbuf(sp.a(), 4096);
  const std::string f1 = numbered(300 * 1024, 'A');
  const std::string f2 = numbered(200 * 1024 + 17, 'a');
  const std::string f3 = numbered(77, '0');
  Outbox out;
  ASSERT_TRUE(out.add_forward(f1.data(), static_cast<std::uint32_t>(f1.size())));
  out.add_synth("<synthetic-1>");
  ASSERT_TRUE(out.add_forward(f2.data(), static_cast<std::uint32_t>(f2.size())));
  std::string big_synth = numbered(150 * 1024, 'K');
  out.add_synth(big_synth);
  ASSERT_TRUE(out.add_forward(f3.data(), static_cast<std::uint32_t>(f3.size())));
  const std::string expected = f1 + "<synthetic-1>" + f2 + big_synth + f3;
  ASSERT_EQ(out.pending_bytes(), expected.size());

  int err = 0;
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Blocked);
  std::size_t pending = out.pending_bytes();
  EXPECT_LT(pending, expected.size());
  EXPECT_GT(pending, expected.size() - f1.size()) << "stopped inside the first segment";
  // The peer reads; the next flush resumes in the middle of that segment.
  std::string got = SocketPair::drain(sp.b());
  ASSERT_EQ(got.size(), expected.size() - pending);
  ASSERT_EQ(out.flush(sp.a(), err), Outbox::Flush::Blocked);
  EXPECT_LT(out.pending_bytes(), pending);
  got += flush_all(out, sp.a(), sp.b());
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "bytes reordered or corrupted";
  // The outbox is reusable after it drained.
  out.add_synth("again");
  EXPECT_EQ(flush_all(out, sp.a(), sp.b()), "again");
}

// Blocks SIGPIPE in this thread for the scope and reports whether one was raised.
class SigpipeWatch {
 public:
  SigpipeWatch() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
  }
  ~SigpipeWatch() {
    consume();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  // True if a SIGPIPE is pending; takes it.
  bool consume() {
    sigset_t p;
    sigemptyset(&p);
    sigpending(&p);
    if (sigismember(&p, SIGPIPE) != 1) return false;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    timespec zero{};
    sigtimedwait(&s, nullptr, &zero);
    return true;
  }

 private:
  sigset_t old_;
};

TEST(Outbox, FlushToClosedPeerIsErrorWithoutSigpipe) {
  for (bool several : {false, true}) {
    SCOPED_TRACE(several ? "sendmsg path" : "send path");
    SocketPair sp;
    sp.close_b();
    std::string src = "to nobody";
    Outbox out;
    ASSERT_TRUE(out.add_forward(src.data(), 9));
    if (several) out.add_synth("and more");
    SigpipeWatch watch;
    int err = 0;
    EXPECT_EQ(out.flush(sp.a(), err), Outbox::Flush::Error);
    EXPECT_EQ(err, EPIPE);
    EXPECT_FALSE(watch.consume()) << "SIGPIPE raised: MSG_NOSIGNAL missing";
  }
}

}  // namespace
}  // namespace sluice::net
