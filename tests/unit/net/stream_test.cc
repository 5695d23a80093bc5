// Tests for net::Stream reads over a real socket pair: free tail, `readable`, EOF, errors.
#include "net/stream.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/buffer.h"
#include "socket_pair.h"

namespace sluice::net {
namespace {

using testing::SocketPair;

std::string held(const Stream& s) {
  return std::string(s.in.begin(), s.in.size());
}

TEST(StreamRead, AcquiresABlockAndReadsIntoIt) {
  SocketPair sp;
  core::BufferPool pool(4096);
  Stream s;
  s.fd = sp.a();
  SocketPair::write_all(sp.b(), "hello");
  s.readable = true;
  IoResult r = s.read(pool);
  ASSERT_EQ(r.kind, IoResult::Kind::Data);
  EXPECT_EQ(r.n, 5u);
  EXPECT_TRUE(s.in.allocated());
  EXPECT_EQ(s.in.cap, 4096u);
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  EXPECT_EQ(held(s), "hello");
  EXPECT_FALSE(s.readable) << "a short read means the socket is drained";
  EXPECT_FALSE(s.eof);
  pool.release(s.in);
}

TEST(StreamRead, WouldBlockClearsReadable) {
  SocketPair sp;
  core::BufferPool pool(4096);
  Stream s;
  s.fd = sp.a();
  s.readable = true;
  IoResult r = s.read(pool);
  EXPECT_EQ(r.kind, IoResult::Kind::WouldBlock);
  EXPECT_FALSE(s.readable);
  EXPECT_FALSE(s.eof);
  EXPECT_TRUE(s.in.empty());
  pool.release(s.in);
}

// A read that fills the whole free tail leaves `readable` set: more may be waiting.
TEST(StreamRead, FullReadKeepsReadable) {
  SocketPair sp;
  core::BufferPool pool(16);
  Stream s;
  s.fd = sp.a();
  SocketPair::write_all(sp.b(), "0123456789abcdefXYZ");
  s.readable = true;
  IoResult r = s.read(pool);
  ASSERT_EQ(r.kind, IoResult::Kind::Data);
  EXPECT_EQ(r.n, 16u);
  EXPECT_TRUE(s.readable);
  EXPECT_EQ(s.in.free_tail(), 0u);
  // No room: Data with n == 0 and nothing consumed from the socket.
  r = s.read(pool);
  EXPECT_EQ(r.kind, IoResult::Kind::Data);
  EXPECT_EQ(r.n, 0u);
  EXPECT_TRUE(s.readable);
  // The caller handles some frames and compacts: the next read goes into the free tail.
  s.scan = 10;
  s.consume_scanned();
  EXPECT_EQ(s.in.lo, 10u);
  s.compact();
  EXPECT_EQ(s.scan, 0u);
  EXPECT_EQ(held(s), "abcdef");
  r = s.read(pool);
  ASSERT_EQ(r.kind, IoResult::Kind::Data);
  EXPECT_EQ(r.n, 3u);
  EXPECT_FALSE(s.readable);
  EXPECT_EQ(held(s), "abcdefXYZ");
  pool.release(s.in);
}

// Reads append after the bytes already held (the free tail), never over them.
TEST(StreamRead, AppendsAfterUnconsumedBytes) {
  SocketPair sp;
  core::BufferPool pool(64);
  Stream s;
  s.fd = sp.a();
  SocketPair::write_all(sp.b(), "abc");
  ASSERT_EQ(s.read(pool).n, 3u);
  s.scan = 1;
  s.consume_scanned();  // "a" handled; "bc" still held at [1, 3)
  SocketPair::write_all(sp.b(), "def");
  IoResult r = s.read(pool);
  ASSERT_EQ(r.kind, IoResult::Kind::Data);
  EXPECT_EQ(r.n, 3u);
  EXPECT_EQ(s.in.lo, 1u);
  EXPECT_EQ(held(s), "bcdef");
  EXPECT_EQ(s.unscanned(), 5u);
  EXPECT_EQ(std::string(s.scan_ptr(), s.unscanned()), "bcdef");
  pool.release(s.in);
}

TEST(StreamRead, ConsumeScannedResetsWhenEverythingWasHandled) {
  SocketPair sp;
  core::BufferPool pool(64);
  Stream s;
  s.fd = sp.a();
  SocketPair::write_all(sp.b(), "abcd");
  ASSERT_EQ(s.read(pool).n, 4u);
  s.scan = 4;
  s.consume_scanned();
  EXPECT_EQ(s.in.lo, 0u);
  EXPECT_EQ(s.in.hi, 0u);
  EXPECT_EQ(s.scan, 0u);
  EXPECT_TRUE(pool.release_if_empty(s.in));
  EXPECT_FALSE(s.in.allocated());
}

TEST(StreamRead, EofSetsEof) {
  SocketPair sp;
  core::BufferPool pool(4096);
  Stream s;
  s.fd = sp.a();
  SocketPair::write_all(sp.b(), "last words");
  sp.close_b();
  s.readable = true;
  IoResult r = s.read(pool);
  ASSERT_EQ(r.kind, IoResult::Kind::Data);
  EXPECT_EQ(held(s), "last words");
  EXPECT_FALSE(s.eof) << "bytes before the end are delivered first";
  s.readable = true;
  r = s.read(pool);
  EXPECT_EQ(r.kind, IoResult::Kind::Eof);
  EXPECT_TRUE(s.eof);
  EXPECT_FALSE(s.readable);
  EXPECT_EQ(held(s), "last words") << "EOF keeps what was read";
  pool.release(s.in);
}

TEST(StreamRead, ErrorClearsReadable) {
  core::BufferPool pool(4096);
  Stream s;
  s.fd = -1;  // EBADF
  s.readable = true;
  IoResult r = s.read(pool);
  EXPECT_EQ(r.kind, IoResult::Kind::Error);
  EXPECT_NE(r.err, 0);
  EXPECT_FALSE(s.readable);
  EXPECT_FALSE(s.eof);
  pool.release(s.in);
}

}  // namespace
}  // namespace sluice::net
