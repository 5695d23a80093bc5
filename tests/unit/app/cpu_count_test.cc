#include "app/cpu_count.h"

#include <gtest/gtest.h>

namespace sluice::app {
namespace {

TEST(CpuCount, CgroupQuotaRoundsUp) {
  EXPECT_EQ(cpus_from_cpu_max("200000 100000"), 2);
  EXPECT_EQ(cpus_from_cpu_max("150000 100000\n"), 2);
  EXPECT_EQ(cpus_from_cpu_max("50000 100000"), 1);
  EXPECT_EQ(cpus_from_cpu_max("max 100000"), std::nullopt);
  EXPECT_EQ(cpus_from_cpu_max(""), std::nullopt);
  EXPECT_EQ(cpus_from_cpu_max("0 100000"), std::nullopt);
  EXPECT_EQ(cpus_from_cpu_max("12x 100000"), std::nullopt);
}

TEST(CpuCount, OneWorkerOnOneOrTwoCpusElseOnePerCpu) {
  EXPECT_EQ(default_workers(1), 1);
  EXPECT_EQ(default_workers(2), 1);
  EXPECT_EQ(default_workers(3), 3);
  EXPECT_EQ(default_workers(16), 16);
  EXPECT_GE(usable_cpus(), 1);
}

}  // namespace
}  // namespace sluice::app
