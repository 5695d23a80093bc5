// Tests for core::BufferPool: block recycling, release_if_empty, reserve beyond the block size.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/buffer.h"

namespace sluice::core {
namespace {

void put(IoBuf& b, const std::string& bytes) {
  ASSERT_LE(bytes.size(), b.free_tail());
  std::memcpy(b.end(), bytes.data(), bytes.size());
  b.hi += static_cast<std::uint32_t>(bytes.size());
}

std::string held(const IoBuf& b) {
  return std::string(b.begin(), b.size());
}

TEST(BufferPool, AcquireGivesAnEmptyBlock) {
  BufferPool pool(4096);
  IoBuf b;
  EXPECT_FALSE(b.allocated());
  pool.acquire(b);
  ASSERT_TRUE(b.allocated());
  EXPECT_EQ(b.cap, 4096u);
  EXPECT_EQ(b.lo, 0u);
  EXPECT_EQ(b.hi, 0u);
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  // A second acquire on a buffer that has a block is a no-op.
  put(b, "x");
  char* p = b.data;
  pool.acquire(b);
  EXPECT_EQ(b.data, p);
  EXPECT_EQ(held(b), "x");
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  pool.release(b);
}

TEST(BufferPool, ReleasedBlocksAreRecycled) {
  BufferPool pool(1024);
  IoBuf a, b;
  pool.acquire(a);
  pool.acquire(b);
  EXPECT_NE(a.data, b.data);
  EXPECT_EQ(pool.blocks_in_use(), 2u);
  char* pa = a.data;
  put(a, "dirty");
  pool.release(a);
  EXPECT_FALSE(a.allocated());
  EXPECT_EQ(a.cap, 0u);
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  EXPECT_EQ(pool.blocks_free(), 1u);
  IoBuf c;
  pool.acquire(c);
  EXPECT_EQ(c.data, pa) << "the free block is reused";
  EXPECT_TRUE(c.empty()) << "a recycled block comes back with no bytes";
  EXPECT_EQ(pool.blocks_free(), 0u);
  pool.release(b);
  pool.release(c);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  EXPECT_EQ(pool.blocks_free(), 2u);
  pool.release(c);  // releasing an empty IoBuf again is harmless
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  EXPECT_EQ(pool.blocks_free(), 2u);
}

TEST(BufferPool, KeepsAtMostKeepFreeBlocks) {
  BufferPool pool(256, 2);
  IoBuf bufs[4];
  for (auto& b : bufs)
    pool.acquire(b);
  for (auto& b : bufs)
    pool.release(b);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  EXPECT_EQ(pool.blocks_free(), 2u);
}

TEST(BufferPool, ReleaseIfEmpty) {
  BufferPool pool(512);
  IoBuf b;
  EXPECT_TRUE(pool.release_if_empty(b)) << "no block: nothing to keep";
  pool.acquire(b);
  put(b, "held");
  EXPECT_FALSE(pool.release_if_empty(b));
  EXPECT_TRUE(b.allocated());
  EXPECT_EQ(held(b), "held");
  b.consume(4);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(pool.release_if_empty(b));
  EXPECT_FALSE(b.allocated());
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  EXPECT_EQ(pool.blocks_free(), 1u);
}

TEST(BufferPool, ReserveWithinTheBlockCompacts) {
  BufferPool pool(64);
  IoBuf b;
  pool.acquire(b);
  put(b, std::string(60, 'a') + "KEEP");
  b.consume(60);
  ASSERT_EQ(b.free_tail(), 0u);
  ASSERT_TRUE(pool.reserve(b, 40));
  EXPECT_EQ(b.cap, 64u);
  EXPECT_EQ(held(b), "KEEP");
  EXPECT_GE(b.free_tail(), 36u);
  pool.release(b);
}

TEST(BufferPool, ReserveGrowsPastTheBlockSizeKeepingBytes) {
  BufferPool pool(64);
  IoBuf b;
  pool.acquire(b);
  put(b, "xxxx" + std::string("partial frame"));
  b.consume(4);
  ASSERT_TRUE(pool.reserve(b, 1000));
  EXPECT_GE(b.cap, 1000u);
  EXPECT_EQ(b.lo, 0u);
  EXPECT_EQ(held(b), "partial frame");
  EXPECT_GE(b.free_tail(), 1000u - 13u);
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  EXPECT_EQ(pool.blocks_free(), 1u) << "the original block went back to the pool";
  // Growing again keeps the bytes too.
  put(b, std::string(900, 'y'));
  ASSERT_TRUE(pool.reserve(b, 5000));
  EXPECT_GE(b.cap, 5000u);
  EXPECT_EQ(held(b), "partial frame" + std::string(900, 'y'));
  EXPECT_EQ(pool.blocks_free(), 1u) << "an oversize block is not kept as a pool block";
  // Releasing the oversize buffer frees it rather than recycling it as a block.
  pool.release(b);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  EXPECT_EQ(pool.blocks_free(), 1u);
  IoBuf c;
  pool.acquire(c);
  EXPECT_EQ(c.cap, 64u) << "acquire always hands out block-sized buffers";
  pool.release(c);
}

TEST(BufferPool, ReserveOnAnEmptyBufferAcquires) {
  BufferPool pool(64);
  IoBuf b;
  ASSERT_TRUE(pool.reserve(b, 16));
  EXPECT_TRUE(b.allocated());
  EXPECT_EQ(b.cap, 64u);
  IoBuf big;
  ASSERT_TRUE(pool.reserve(big, 200));
  EXPECT_GE(big.cap, 200u);
  EXPECT_EQ(pool.blocks_in_use(), 2u);
  pool.release(b);
  pool.release(big);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

}  // namespace
}  // namespace sluice::core
