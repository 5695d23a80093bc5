// Fuzz target: libpq-style connection strings of [databases] and [users]. Keys come out
// lower-case and well formed; the pairs written back (values single-quoted with escapes, and
// plain where a value allows it) parse back to the same pairs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/connstring.h"
#include "config/values.h"
#include "fuzz_check.h"

using namespace sluice::config;

namespace {

bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string quoted(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

bool plain_ok(std::string_view v) {
  if (v.empty() || v.front() == '\'') return false;
  for (char c : v) {
    if (blank(c)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto params = parse_connstring(text);
  if (!params.ok()) {
    SLUICE_FUZZ_CHECK(!params.error().empty());
    return 0;
  }
  std::string all_quoted;
  std::string mixed;
  for (const auto& [key, value] : *params) {
    SLUICE_FUZZ_CHECK(!key.empty());
    SLUICE_FUZZ_CHECK(to_lower(key) == key);
    for (char c : key)
      SLUICE_FUZZ_CHECK(c != '=' && !blank(c));
    all_quoted += key + " = " + quoted(value) + "\t";
    mixed += key + "=" + (plain_ok(value) ? value : quoted(value)) + " ";
  }
  for (const std::string& back : {all_quoted, mixed}) {
    auto again = parse_connstring(back);
    SLUICE_FUZZ_CHECK(again.ok());
    SLUICE_FUZZ_CHECK(*again == *params);
  }
  return 0;
}
