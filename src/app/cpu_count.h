// How many worker threads `workers = 0` (the default) means: the CPUs this process may use,
// as a container sees them, and 1 where there are only one or two.
#pragma once

#include <optional>
#include <string_view>

namespace sluice::app {

// CPUs a cgroup v2 `cpu.max` line ("200000 100000", "max 100000") allows, rounded up; nullopt
// when unlimited or unreadable.
[[nodiscard]] std::optional<int> cpus_from_cpu_max(std::string_view line);

// The default worker count for `cpus` usable CPUs. With one or two, one worker: the pooler
// then shares its cores with the processes around it (on a 2-core machine with the load and
// Postgres, workers = 2 cost 12-50% more CPU per transaction than 1 and gave less throughput
// whenever clients waited for servers; 2% more CPU and 15% more throughput only with idle
// servers at hand: bench/RESULTS.md). Above that, one per CPU.
[[nodiscard]] int default_workers(int cpus);

// The CPUs this process may run on (affinity mask), capped by the cgroup's cpu.max quota.
[[nodiscard]] int usable_cpus();

}  // namespace sluice::app
