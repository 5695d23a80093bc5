// HTTP/1.x request heads, parsed strictly.
#include "admin/http_request.h"

#include <algorithm>

#include "admin/command.h"

namespace sluice::admin {
namespace {

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// A request target is visible ASCII; control characters (a bare CR, NUL, tab, DEL) are refused.
bool is_visible(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c != '\x7f'; });
}

}  // namespace

long parse_http_request(std::string_view in, HttpRequest& req, int& error) {
  // The head ends with its first empty line, ended by CRLF or by a bare LF.
  const std::size_t lf = in.find("\n\n");
  const std::size_t crlf = in.find("\n\r\n");
  std::size_t head_len = 0;
  if (lf != std::string_view::npos) head_len = lf + 2;
  if (crlf != std::string_view::npos && (head_len == 0 || crlf + 3 < head_len)) {
    head_len = crlf + 3;
  }
  if (head_len == 0) {
    if (in.size() > kMaxHttpHead) {
      error = 431;
      return -1;
    }
    return 0;
  }
  if (head_len > kMaxHttpHead) {
    error = 431;
    return -1;
  }
  std::string_view head = in.substr(0, head_len);
  auto next_line = [&head]() {
    std::size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  std::string_view line = next_line();
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    error = 400;
    return -1;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || !is_visible(target)) {
    error = 400;
    return -1;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    error = version.substr(0, 5) == "HTTP/" ? 505 : 400;
    return -1;
  }
  req.method = std::string(method);
  req.keep_alive = version == "HTTP/1.1";
  if (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://") {
    std::size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  req.path = std::string(target.substr(0, target.find('?')));
  if (req.path.empty() || req.path.front() != '/') {
    error = 400;
    return -1;
  }
  for (line = next_line(); !line.empty(); line = next_line()) {
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      error = 400;
      return -1;
    }
    std::string name = lower(line.substr(0, colon));
    std::string value = lower(trim(line.substr(colon + 1)));
    if (name == "connection") {
      if (value.find("close") != std::string::npos) req.keep_alive = false;
      if (value.find("keep-alive") != std::string::npos) req.keep_alive = true;
    } else if (name == "content-length") {
      if (value != "0") {
        error = 413;
        return -1;
      }
    } else if (name == "transfer-encoding") {
      error = 413;
      return -1;
    }
  }
  if (req.method != "GET" && req.method != "HEAD") {
    error = 405;
    return -1;
  }
  return static_cast<long>(head_len);
}

}  // namespace sluice::admin
