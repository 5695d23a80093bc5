// What a socket-pair peer received, split into protocol messages (unit tests of session/).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/frame.h"

namespace sluice::session::testing {

struct Message {
  char type = 0;
  std::string body;
};

// Splits `bytes` into messages; a trailing partial message fails the test.
inline std::vector<Message> split_messages(std::string_view bytes) {
  std::vector<Message> out;
  while (!bytes.empty()) {
    if (bytes.size() < 5) {
      ADD_FAILURE() << "partial message header";
      break;
    }
    std::uint32_t len = proto::read_be32(bytes.data() + 1);
    if (len < 4 || bytes.size() < 1 + len) {
      ADD_FAILURE() << "partial message";
      break;
    }
    out.push_back({bytes[0], std::string(bytes.substr(5, len - 4))});
    bytes.remove_prefix(1 + len);
  }
  return out;
}

}  // namespace sluice::session::testing
