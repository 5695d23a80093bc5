// Invariant checks for fuzz targets: a violated invariant aborts, which libFuzzer reports.
#pragma once

#include <cstdlib>

#define SLUICE_FUZZ_CHECK(cond) \
  do {                          \
    if (!(cond)) std::abort();  \
  } while (0)
