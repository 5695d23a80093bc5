// Monotonic and wall clocks; the Clock seam lets pool logic run under a fake clock in tests.
#pragma once

#include <cstdint>
#include <ctime>

namespace sluice::core {

// Microseconds on the monotonic clock (vDSO: no system call).
using Micros = std::int64_t;

inline constexpr Micros kMicrosPerSecond = 1'000'000;
inline constexpr Micros kMicrosPerMilli = 1'000;

[[nodiscard]] inline Micros monotonic_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Micros>(ts.tv_sec) * kMicrosPerSecond + ts.tv_nsec / 1000;
}

// Seconds given as a double in config ("2.5") to microseconds.
[[nodiscard]] constexpr Micros seconds_to_micros(double s) {
  return static_cast<Micros>(s * static_cast<double>(kMicrosPerSecond));
}

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Micros now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  [[nodiscard]] Micros now() const override { return monotonic_now(); }
};

class FakeClock final : public Clock {
 public:
  [[nodiscard]] Micros now() const override { return now_; }
  void advance(Micros d) { now_ += d; }
  void set(Micros t) { now_ = t; }

 private:
  Micros now_ = 1'000'000;
};

}  // namespace sluice::core
