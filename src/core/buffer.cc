// BufferPool: recycles fixed-size blocks; oversize buffers are plain heap blocks.
#include "core/buffer.h"

#include <cstdlib>

namespace sluice::core {

BufferPool::~BufferPool() {
  for (char* p : free_)
    std::free(p);
}

void BufferPool::acquire(IoBuf& buf) {
  if (buf.data != nullptr) return;
  char* p;
  if (!free_.empty()) {
    p = free_.back();
    free_.pop_back();
  } else {
    p = static_cast<char*>(std::malloc(block_size_));
    if (p == nullptr) std::abort();  // out of memory is fatal
  }
  ++in_use_;
  buf.data = p;
  buf.cap = block_size_;
  buf.lo = buf.hi = 0;
}

bool BufferPool::release_if_empty(IoBuf& buf) {
  if (buf.data == nullptr) return true;
  if (!buf.empty()) return false;
  release(buf);
  return true;
}

void BufferPool::release(IoBuf& buf) {
  if (buf.data == nullptr) return;
  --in_use_;
  if (buf.cap == block_size_ && free_.size() < keep_free_) {
    free_.push_back(buf.data);
  } else {
    std::free(buf.data);
  }
  buf = IoBuf{};
}

bool BufferPool::reserve(IoBuf& buf, std::uint32_t need) {
  acquire(buf);
  if (buf.cap - buf.lo >= need) {
    if (buf.cap - buf.hi < need - buf.size()) buf.compact();
    return true;
  }
  if (need <= buf.cap) {
    buf.compact();
    return true;
  }
  char* p = static_cast<char*>(std::malloc(need));
  if (p == nullptr) return false;
  std::uint32_t n = buf.size();
  std::memcpy(p, buf.data + buf.lo, n);
  if (buf.cap == block_size_ && free_.size() < keep_free_) {
    free_.push_back(buf.data);
  } else {
    std::free(buf.data);
  }
  buf.data = p;
  buf.cap = need;
  buf.lo = 0;
  buf.hi = n;
  return true;
}

}  // namespace sluice::core
