// HTTP/1.x request heads as the metrics listener reads them: a pure parser, no sockets.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::admin {

// Longest request head accepted (request line and headers up to the blank line).
constexpr std::size_t kMaxHttpHead = 8192;

struct HttpRequest {
  std::string method;
  std::string path;  // the target's path, without a query; always starts with '/'
  bool keep_alive = true;
};

// Parses one request head (up to and including the blank line) from the front of `in`. Returns
// the number of bytes it took, 0 if more are needed, or -1 with `error` set (400, 405, 413, 431,
// 505). Requests with a body are refused (nothing here takes one); GET and HEAD only.
[[nodiscard]] long parse_http_request(std::string_view in, HttpRequest& req, int& error);

}  // namespace sluice::admin
