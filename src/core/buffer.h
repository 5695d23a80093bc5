// I/O buffers: fixed-size blocks recycled per worker, taken only while a connection has bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace sluice::core {

// Window over one block: [0, lo) consumed, [lo, hi) received and not yet consumed, [hi, cap) free.
struct IoBuf {
  char* data = nullptr;
  std::uint32_t cap = 0;
  std::uint32_t lo = 0;
  std::uint32_t hi = 0;

  [[nodiscard]] bool allocated() const { return data != nullptr; }
  [[nodiscard]] std::uint32_t size() const { return hi - lo; }
  [[nodiscard]] bool empty() const { return hi == lo; }
  [[nodiscard]] char* begin() const { return data + lo; }
  [[nodiscard]] char* end() const { return data + hi; }
  [[nodiscard]] std::uint32_t free_tail() const { return cap - hi; }
  void consume(std::uint32_t n) {
    lo += n;
    if (lo == hi) lo = hi = 0;
  }
  // Moves the unconsumed bytes to the front so the tail is as large as possible.
  void compact() {
    if (lo == 0) return;
    std::memmove(data, data + lo, hi - lo);
    hi -= lo;
    lo = 0;
  }
};

// Per-worker block allocator; single-threaded by contract (one per event loop).
class BufferPool {
 public:
  explicit BufferPool(std::uint32_t block_size, std::size_t keep_free = 1024)
      : block_size_(block_size), keep_free_(keep_free) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  [[nodiscard]] std::uint32_t block_size() const { return block_size_; }

  // Gives `buf` a block if it has none.
  void acquire(IoBuf& buf);
  // Returns the block if the buffer holds no bytes; true if it was returned.
  bool release_if_empty(IoBuf& buf);
  // Returns the block unconditionally (drops any bytes).
  void release(IoBuf& buf);
  // Makes room for at least `need` unconsumed bytes in total, growing past the block size
  // (the caller has already checked `need` against its cap). False if allocation failed.
  [[nodiscard]] bool reserve(IoBuf& buf, std::uint32_t need);

  [[nodiscard]] std::size_t blocks_in_use() const { return in_use_; }
  [[nodiscard]] std::size_t blocks_free() const { return free_.size(); }

 private:
  std::uint32_t block_size_;
  std::size_t keep_free_;
  std::vector<char*> free_;
  std::size_t in_use_ = 0;
};

}  // namespace sluice::core
