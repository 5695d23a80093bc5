// Fuzz target: the INI reader with %include. The input is split at lines "%%" into a main text
// and up to three files /fuzz/1.ini../fuzz/3.ini, served through the reader's file seam (no
// file system, nothing kept between inputs). The items read are checked for their invariants
// and written back as INI text, which must read back to the same items.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/ini.h"
#include "config/values.h"
#include "fuzz_check.h"

using namespace sluice;
using namespace sluice::config;

namespace {

constexpr std::size_t kMaxFiles = 4;

std::size_t count_lines(std::string_view text) {
  std::size_t n = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++n;
  }
  return n;
}

std::string quote_key(std::string_view key) {
  std::string out = "\"";
  for (char c : key) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < kMaxFiles) {
    const auto sep = in.find("\n%%\n");
    if (sep == std::string_view::npos) break;
    parts.push_back(in.substr(0, sep + 1));
    in.remove_prefix(sep + 4);
  }
  parts.push_back(in);

  std::map<std::string, std::string_view> files;  // lexically normal path -> text
  for (std::size_t i = 1; i < parts.size(); ++i) {
    files["/fuzz/" + std::to_string(i) + ".ini"] = parts[i];
  }
  auto lines_of = [&](const std::string& file) -> std::size_t {
    if (file == "main.ini") return count_lines(parts[0]);
    auto it = files.find(std::filesystem::path(file).lexically_normal().string());
    SLUICE_FUZZ_CHECK(it != files.end());  // an item can only come from a file that was read
    return count_lines(it->second);
  };
  // Files that include others several times multiply (k include lines per level read the
  // deepest file k^3 times): a budget keeps every input fast; past it a read fails.
  int reads_left = 256;
  IniFileReader read = [&](const std::string& path) -> core::Result<std::string> {
    if (--reads_left < 0) return core::Error{"read budget spent at " + path};
    auto it = files.find(std::filesystem::path(path).lexically_normal().string());
    if (it == files.end()) return core::Error{"no such file: " + path};
    return std::string(it->second);
  };

  auto items = read_ini_text(parts[0], "main.ini", "/fuzz", read);
  if (!items.ok()) {
    const std::string& e = items.error();
    // It names main.ini or an included file as its %include line wrote it (made absolute
    // against /fuzz, but not normalised: "//fuzz/a/../1.ini" stays as written).
    SLUICE_FUZZ_CHECK(e.rfind("main.ini:", 0) == 0 || e.rfind("/", 0) == 0);
    return 0;
  }
  std::string text;
  for (const IniItem& item : *items) {
    SLUICE_FUZZ_CHECK(item.line >= 1);
    SLUICE_FUZZ_CHECK(static_cast<std::size_t>(item.line) <= lines_of(item.file));
    SLUICE_FUZZ_CHECK(item.name.find('\n') == std::string::npos);
    if (item.kind == IniItem::Kind::Section) {
      SLUICE_FUZZ_CHECK(item.value.empty());
      SLUICE_FUZZ_CHECK(to_lower(item.name) == item.name);
      SLUICE_FUZZ_CHECK(trim(item.name) == item.name);
      SLUICE_FUZZ_CHECK(item.name.find(']') == std::string::npos);
      text += "[" + item.name + "]\n";
    } else {
      SLUICE_FUZZ_CHECK(!item.name.empty());
      SLUICE_FUZZ_CHECK(trim(item.value) == item.value);
      SLUICE_FUZZ_CHECK(item.value.find('\n') == std::string::npos);
      text += quote_key(item.name) + " = " + item.value + "\n";
    }
  }

  // Written back as one file, the items read back the same, in order, one per line.
  IniFileReader none = [](const std::string& path) -> core::Result<std::string> {
    return core::Error{"unexpected include of " + path};
  };
  auto again = read_ini_text(text, "rt.ini", "/rt", none);
  SLUICE_FUZZ_CHECK(again.ok());
  SLUICE_FUZZ_CHECK(again->size() == items->size());
  for (std::size_t i = 0; i < items->size(); ++i) {
    const IniItem& a = (*items)[i];
    const IniItem& b = (*again)[i];
    SLUICE_FUZZ_CHECK(a.kind == b.kind && a.name == b.name && a.value == b.value);
    SLUICE_FUZZ_CHECK(b.file == "rt.ini" && b.line == static_cast<int>(i) + 1);
  }
  return 0;
}
