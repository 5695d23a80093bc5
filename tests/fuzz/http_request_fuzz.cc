// Fuzz target: request heads of the metrics listener (parse_http_request). Beyond the shape of
// what it returns, the parse must not depend on how the bytes arrive: a request taken from the
// whole input is taken the same from just its head, and no shorter prefix yields a request
// (the server parses whatever has arrived so far).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "admin/http_request.h"
#include "fuzz_check.h"

using namespace sluice::admin;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HttpRequest req;
  int error = 0;
  const long n = parse_http_request(in, req, error);
  if (n == 0) {
    SLUICE_FUZZ_CHECK(in.size() <= kMaxHttpHead);
    return 0;
  }
  if (n < 0) {
    SLUICE_FUZZ_CHECK(n == -1);
    SLUICE_FUZZ_CHECK(error == 400 || error == 405 || error == 413 || error == 431 || error == 505);
    return 0;
  }
  const auto used = static_cast<std::size_t>(n);
  SLUICE_FUZZ_CHECK(used <= in.size() && used <= kMaxHttpHead);
  SLUICE_FUZZ_CHECK(in.substr(0, used).ends_with("\n\n") || in.substr(0, used).ends_with("\n\r\n"));
  SLUICE_FUZZ_CHECK(req.method == "GET" || req.method == "HEAD");
  SLUICE_FUZZ_CHECK(!req.path.empty() && req.path.front() == '/');
  SLUICE_FUZZ_CHECK(req.path.find('?') == std::string::npos);
  for (char c : req.path)
    SLUICE_FUZZ_CHECK(c > ' ' && c != '\x7f');  // visible, no control characters

  HttpRequest head_only;
  int head_error = 0;
  SLUICE_FUZZ_CHECK(parse_http_request(in.substr(0, used), head_only, head_error) == n);
  SLUICE_FUZZ_CHECK(head_only.method == req.method && head_only.path == req.path &&
                    head_only.keep_alive == req.keep_alive);

  // Every shorter prefix is incomplete. All of them for short heads, a sample for long ones.
  const std::size_t step = used <= 512 ? 1 : used / 256;
  for (std::size_t k = 0; k < used; k += step) {
    HttpRequest partial;
    int partial_error = 0;
    SLUICE_FUZZ_CHECK(parse_http_request(in.substr(0, k), partial, partial_error) == 0);
  }
  return 0;
}
