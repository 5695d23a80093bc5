// usable_cpus(): sched_getaffinity and the cgroup v2 CPU quota.
#include "app/cpu_count.h"

#include <sched.h>

#include <charconv>
#include <fstream>
#include <string>
#include <thread>

namespace sluice::app {

std::optional<int> cpus_from_cpu_max(std::string_view line) {
  auto space = line.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::string_view quota = line.substr(0, space);
  std::string_view period = line.substr(space + 1);
  while (!period.empty() && (period.back() == '\n' || period.back() == ' '))
    period.remove_suffix(1);
  long long q = 0;
  long long p = 0;
  auto r1 = std::from_chars(quota.data(), quota.data() + quota.size(), q);
  auto r2 = std::from_chars(period.data(), period.data() + period.size(), p);
  if (r1.ec != std::errc() || r1.ptr != quota.data() + quota.size() || r2.ec != std::errc() ||
      r2.ptr != period.data() + period.size() || q <= 0 || p <= 0) {
    return std::nullopt;  // "max" (unlimited) or something unexpected
  }
  return static_cast<int>((q + p - 1) / p);
}

int default_workers(int cpus) {
  return cpus <= 2 ? 1 : cpus;
}

int usable_cpus() {
  int cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::thread::hardware_concurrency());
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string line;
  if (f && std::getline(f, line)) {
    if (auto q = cpus_from_cpu_max(line); q && *q < cpus) cpus = *q;
  }
  return cpus < 1 ? 1 : cpus;
}

}  // namespace sluice::app
