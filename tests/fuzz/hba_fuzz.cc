// Fuzz target: auth_hba_file and auth_ident_file text, parsed and evaluated.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "config/hba.h"
#include "fuzz_check.h"

using namespace sluice::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // "@name" lists resolve to the input itself, so nesting is exercised too.
  auto load = [&](std::string_view) -> sluice::core::Result<std::string> {
    return std::string(text.substr(0, 256));
  };
  HbaRules rules = HbaRules::parse(text, "fuzz.conf", load);
  SLUICE_FUZZ_CHECK(!rules.broken() || !rules.problems().empty());
  for (const HbaRule& r : rules.rules()) {
    SLUICE_FUZZ_CHECK(r.line >= 1);
    SLUICE_FUZZ_CHECK(r.type == HbaRule::Type::Local || r.addr_all || r.addr_never ||
                      r.family == AF_INET || r.family == AF_INET6);
  }
  sockaddr_storage v4{};
  auto* a4 = reinterpret_cast<sockaddr_in*>(&v4);
  a4->sin_family = AF_INET;
  a4->sin_addr.s_addr = htonl(0x7f000001);
  sockaddr_storage v6{};
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&v6);
  a6->sin6_family = AF_INET6;
  a6->sin6_addr.s6_addr[15] = 1;
  for (int i = 0; i < 4; ++i) {
    HbaClient c;
    c.unix_socket = i == 0;
    c.tls = i == 2;
    c.addr = i == 0 ? nullptr : (i == 3 ? &v6 : &v4);
    c.database = "db";
    c.user = i == 1 ? "db" : "user";
    const HbaRule* r = rules.match(c);
    SLUICE_FUZZ_CHECK(r == nullptr || !rules.broken());
  }
  std::vector<std::string> problems;
  IdentMap map = IdentMap::parse(text, problems);
  (void)map.allows("m", "sys", "user");
  return 0;
}
