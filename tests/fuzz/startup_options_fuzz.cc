// Fuzz target: the `options` startup parameter. Names come out non-empty without '=' or '-';
// the pairs written back in either switch spelling, escaped, parse back to the same pairs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.h"
#include "proto/startup_options.h"

using namespace sluice::proto;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string escaped(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view opts(reinterpret_cast<const char*>(data), size);
  Pairs pairs;
  if (!parse_startup_options(opts, pairs)) return 0;
  std::string c_form;
  std::string dash_form;
  std::string glued;
  for (const auto& [name, value] : pairs) {
    SLUICE_FUZZ_CHECK(!name.empty());
    SLUICE_FUZZ_CHECK(name.find('=') == std::string::npos);
    SLUICE_FUZZ_CHECK(name.find('-') == std::string::npos);
    c_form += "-c " + escaped(name) + "=" + escaped(value) + "  ";
    dash_form += "\t--" + escaped(name) + "=" + escaped(value);
    glued += " -c" + escaped(name) + "=" + escaped(value);
  }
  for (const std::string& back : {c_form, dash_form, glued}) {
    Pairs again;
    SLUICE_FUZZ_CHECK(parse_startup_options(back, again));
    SLUICE_FUZZ_CHECK(again == pairs);
  }
  return 0;
}
