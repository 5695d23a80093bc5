// One id sequence shared by client and server sockets, so SHOW SOCKETS ids never collide.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::core {

// Next socket id (1, 2, ...); clients and servers draw from the same counter, as PgBouncer does.
[[nodiscard]] inline std::uint64_t next_socket_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace sluice::core
