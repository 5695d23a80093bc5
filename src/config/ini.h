// INI reader for pgbouncer.ini: sections, key = value, comments and nested %include.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace sluice::config {

// One meaningful line of the file (or of an included file), in reading order.
struct IniItem {
  enum class Kind : std::uint8_t { Section, Entry };
  Kind kind = Kind::Entry;
  std::string name;   // Section: its name, lowercased. Entry: the key, unquoted, case kept.
  std::string value;  // Entry only: the rest of the line after '=', trimmed.
  std::string file;   // where the line is, for messages
  int line = 0;

  [[nodiscard]] std::string where() const { return file + ":" + std::to_string(line); }
};

// Whole file as text; the error names the path and the system's reason.
[[nodiscard]] core::Result<std::string> read_text_file(const std::string& path);

// Reads `path` and every file it includes. A relative %include path is taken relative to the
// directory of the file that contains the directive.
[[nodiscard]] core::Result<std::vector<IniItem>> read_ini_file(const std::string& path);

// Same for text held in memory; `name` labels messages and includes resolve against base_dir.
[[nodiscard]] core::Result<std::vector<IniItem>> read_ini_text(std::string_view text,
                                                               const std::string& name,
                                                               const std::string& base_dir);

// Where %include reads its files from: given the path (base_dir joined with a relative target),
// the whole text or why not. Tests and the fuzz target use this instead of the file system; two
// paths name the same file (for include loops) when they are equal once lexically normalised.
using IniFileReader = std::function<core::Result<std::string>(const std::string& path)>;

[[nodiscard]] core::Result<std::vector<IniItem>> read_ini_text(std::string_view text,
                                                               const std::string& name,
                                                               const std::string& base_dir,
                                                               const IniFileReader& read);

}  // namespace sluice::config
