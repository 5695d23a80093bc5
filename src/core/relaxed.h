// A value one thread writes and other threads may read at any time without a lock, where a
// stale read is harmless (a state shown by SHOW SERVERS, a pool mode read per transaction while a
// reload changes it): relaxed atomic loads and stores, which cost plain moves on x86.
#pragma once

#include <atomic>

namespace sluice::core {

template <typename T>
class Relaxed {
 public:
  Relaxed() = default;
  Relaxed(T v) : v_(v) {}  // NOLINT(google-explicit-constructor): reads like the plain value
  Relaxed(const Relaxed& o) : v_(o.get()) {}
  Relaxed& operator=(const Relaxed& o) {
    set(o.get());
    return *this;
  }
  Relaxed& operator=(T v) {
    set(v);
    return *this;
  }
  operator T() const { return get(); }  // NOLINT(google-explicit-constructor)
  [[nodiscard]] T get() const { return v_.load(std::memory_order_relaxed); }
  void set(T v) { v_.store(v, std::memory_order_relaxed); }

 private:
  std::atomic<T> v_{};
};

}  // namespace sluice::core
