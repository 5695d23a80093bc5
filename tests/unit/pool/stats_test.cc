// TimedCounter: every duration lands in the bucket of the first bound it does not exceed.
#include "pool/stats.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace sluice::pool {
namespace {

std::size_t expected_bucket(std::uint64_t us) {
  std::size_t i = 0;
  while (i < kLatencyBoundsUs.size() && us > kLatencyBoundsUs[i])
    ++i;
  return i;
}

std::size_t bucket_of(std::uint64_t us) {
  TimedCounter c;
  c.add(us);
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    if (c.bucket(i) == 1) return i;
  }
  return kLatencyBuckets;
}

TEST(TimedCounter, EveryBoundAndItsNeighboursLandRight) {
  std::vector<std::uint64_t> values = {0, 1, 2, 3, UINT64_MAX, UINT64_MAX / 2};
  for (std::uint64_t b : kLatencyBoundsUs) {
    for (std::uint64_t v : {b - 1, b, b + 1})
      values.push_back(v);
  }
  for (int w = 0; w < 64; ++w) {
    std::uint64_t p = std::uint64_t{1} << w;
    for (std::uint64_t v : {p - 1, p, p + 1})
      values.push_back(v);
  }
  for (std::uint64_t v : values)
    EXPECT_EQ(bucket_of(v), expected_bucket(v)) << v;
}

TEST(TimedCounter, SumsDurations) {
  TimedCounter c;
  c.add(10);
  c.add(1000);
  c.add(70'000'000);
  EXPECT_EQ(c.get(), 70'001'010u);
  EXPECT_EQ(c.bucket(0), 1u);
  EXPECT_EQ(c.bucket(3), 1u);
  EXPECT_EQ(c.bucket(kLatencyBuckets - 1), 1u);
}

}  // namespace
}  // namespace sluice::pool
