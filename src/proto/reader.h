// Bounds-checked cursor over a message body; every read can fail, none throws or allocates.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "proto/frame.h"

namespace sluice::proto {

class BodyReader {
 public:
  BodyReader(const char* p, std::size_t n) : p_(p), n_(n) {}
  explicit BodyReader(std::string_view s) : p_(s.data()), n_(s.size()) {}
  BodyReader(std::string&&) = delete;  // would point into a temporary

  [[nodiscard]] std::optional<std::string_view> cstring() {
    const void* z = n_ == 0 ? nullptr : std::memchr(p_, 0, n_);
    if (z == nullptr) return std::nullopt;
    std::size_t len = static_cast<const char*>(z) - p_;
    std::string_view s(p_, len);
    p_ += len + 1;
    n_ -= len + 1;
    return s;
  }
  [[nodiscard]] std::optional<std::uint8_t> u8() {
    if (n_ < 1) return std::nullopt;
    auto v = static_cast<std::uint8_t>(*p_);
    ++p_;
    --n_;
    return v;
  }
  [[nodiscard]] std::optional<std::uint16_t> u16() {
    if (n_ < 2) return std::nullopt;
    auto v = read_be16(p_);
    p_ += 2;
    n_ -= 2;
    return v;
  }
  [[nodiscard]] std::optional<std::uint32_t> u32() {
    if (n_ < 4) return std::nullopt;
    auto v = read_be32(p_);
    p_ += 4;
    n_ -= 4;
    return v;
  }
  [[nodiscard]] std::optional<std::int32_t> i32() {
    auto v = u32();
    if (!v) return std::nullopt;
    return static_cast<std::int32_t>(*v);
  }
  [[nodiscard]] std::optional<std::string_view> bytes(std::size_t len) {
    if (n_ < len) return std::nullopt;
    std::string_view s(p_, len);
    p_ += len;
    n_ -= len;
    return s;
  }
  [[nodiscard]] std::string_view rest() {
    std::string_view s(p_, n_);
    p_ += n_;
    n_ = 0;
    return s;
  }
  [[nodiscard]] bool at_end() const { return n_ == 0; }
  [[nodiscard]] std::size_t remaining() const { return n_; }

 private:
  const char* p_;
  std::size_t n_;
};

}  // namespace sluice::proto
