// Fuzz target: auth_file text. Users come out unique and non-empty, each secret classified as
// classify_secret says, and the entries written back as an auth file read back the same.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "config/auth_file.h"
#include "fuzz_check.h"

using namespace sluice::config;

namespace {

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto entries = parse_auth_text(text, "fuzz.txt");
  if (!entries.ok()) {
    SLUICE_FUZZ_CHECK(entries.error().rfind("fuzz.txt:", 0) == 0);
    return 0;
  }
  std::set<std::string> users;
  std::string back;
  for (const AuthEntry& e : *entries) {
    SLUICE_FUZZ_CHECK(!e.user.empty());
    SLUICE_FUZZ_CHECK(users.insert(e.user).second);
    SLUICE_FUZZ_CHECK(e.kind == classify_secret(e.secret));
    SLUICE_FUZZ_CHECK(e.user.find('\n') == std::string::npos);
    SLUICE_FUZZ_CHECK(e.secret.find('\n') == std::string::npos);
    if (e.kind == AuthEntry::Kind::Md5) SLUICE_FUZZ_CHECK(e.secret.size() == 35);
    back += quoted(e.user) + " " + quoted(e.secret) + "\n";
  }
  auto again = parse_auth_text(back, "back.txt");
  SLUICE_FUZZ_CHECK(again.ok());
  SLUICE_FUZZ_CHECK(again->size() == entries->size());
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const AuthEntry& a = (*entries)[i];
    const AuthEntry& b = (*again)[i];
    SLUICE_FUZZ_CHECK(a.user == b.user && a.secret == b.secret && a.kind == b.kind);
  }
  return 0;
}
