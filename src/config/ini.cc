// INI reader for pgbouncer.ini: sections, key = value, comments and nested %include.
#include "config/ini.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <variant>

#include "config/values.h"

namespace sluice::config {

namespace {

namespace fs = std::filesystem;

constexpr int kMaxIncludeDepth = 10;
constexpr std::uintmax_t kMaxFileSize = 64u << 20;  // a config file is never this large

using Status = core::Result<std::monostate>;

core::Error error_at(const std::string& file, int line, std::string_view what) {
  return core::Error{file + ":" + std::to_string(line) + ": " + std::string(what)};
}

// Reads a key that may be quoted with "..." (doubled "" inside) or '...'. Advances `s`.
bool read_key(std::string_view& s, std::string& key) {
  key.clear();
  if (s.empty()) return false;
  const char quote = s.front();
  if (quote == '"' || quote == '\'') {
    std::size_t i = 1;
    for (;; ++i) {
      if (i >= s.size()) return false;
      if (s[i] != quote) {
        key += s[i];
        continue;
      }
      if (quote == '"' && i + 1 < s.size() && s[i + 1] == '"') {
        key += '"';
        ++i;
        continue;
      }
      break;
    }
    s.remove_prefix(i + 1);
    return !key.empty();
  }
  std::size_t i = 0;
  while (i < s.size() && s[i] != '=' && s[i] != ' ' && s[i] != '\t')
    ++i;
  key.assign(s.substr(0, i));
  s.remove_prefix(i);
  return !key.empty();
}

class IniReader {
 public:
  // Without `read`, included files come from the file system.
  IniReader(std::vector<IniItem>& out, const IniFileReader* read) : out_(out), read_(read) {}

  // Reads one file. Failing to open it (or a loop) is reported with `origin` in front: the
  // place of the %include, or nothing for the top file; errors inside carry their own place.
  Status read_file(const std::string& path, int depth, const std::string& origin) {
    std::string key;
    if (read_ != nullptr) {
      key = fs::path(path).lexically_normal().string();
    } else {
      std::error_code ec;
      const fs::path canonical = fs::weakly_canonical(path, ec);
      key = ec ? path : canonical.string();
    }
    for (const auto& open : stack_) {
      if (open == key) return core::Error{origin + "include loop: " + chain() + " -> " + key};
    }
    auto text = read_ != nullptr ? (*read_)(path) : read_text_file(path);
    if (!text.ok()) return core::Error{origin + text.error()};
    stack_.push_back(key);
    const std::string dir = fs::path(path).parent_path().string();
    Status st = read_text(*text, path, dir.empty() ? "." : dir, depth);
    stack_.pop_back();
    return st;
  }

  Status read_text(std::string_view text, const std::string& name, const std::string& base_dir,
                   int depth) {
    int lineno = 0;
    while (!text.empty()) {
      const auto nl = text.find('\n');
      const std::string_view raw = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      ++lineno;
      std::string_view line = trim(raw);
      if (line.empty() || line.front() == ';' || line.front() == '#') continue;

      if (line.substr(0, 8) == "%include" &&
          (line.size() == 8 || line[8] == ' ' || line[8] == '\t')) {
        const std::string_view target = trim(line.substr(8));
        if (target.empty()) return error_at(name, lineno, "%include needs a file name");
        if (depth >= kMaxIncludeDepth) {
          return error_at(
              name, lineno,
              "include nesting deeper than " + std::to_string(kMaxIncludeDepth) + " levels");
        }
        fs::path p(target);
        if (p.is_relative()) p = fs::path(base_dir) / p;
        Status st = read_file(p.string(), depth + 1, name + ":" + std::to_string(lineno) + ": ");
        if (!st.ok()) return st;
        continue;
      }

      if (line.front() == '[') {
        const auto close = line.find(']');
        if (close == std::string_view::npos) {
          return error_at(name, lineno, "syntax error: missing ']' in section header");
        }
        const std::string_view after = trim(line.substr(close + 1));
        if (!after.empty() && after.front() != ';' && after.front() != '#') {
          return error_at(name, lineno, "syntax error: text after section header");
        }
        IniItem item;
        item.kind = IniItem::Kind::Section;
        item.name = to_lower(trim(line.substr(1, close - 1)));
        item.file = name;
        item.line = lineno;
        out_.push_back(std::move(item));
        continue;
      }

      IniItem item;
      std::string_view rest = line;
      if (!read_key(rest, item.name)) {
        return error_at(name, lineno, "syntax error: expected 'key = value'");
      }
      rest = trim(rest);
      if (rest.empty() || rest.front() != '=') {
        return error_at(name, lineno, "syntax error: expected '=' after '" + item.name + "'");
      }
      item.value = std::string(trim(rest.substr(1)));
      item.file = name;
      item.line = lineno;
      out_.push_back(std::move(item));
    }
    return std::monostate{};
  }

 private:
  std::string chain() const {
    std::string out;
    for (const auto& s : stack_) {
      if (!out.empty()) out += " -> ";
      out += s;
    }
    return out;
  }

  std::vector<IniItem>& out_;
  const IniFileReader* read_;
  std::vector<std::string> stack_;  // files being read, outermost first
};

}  // namespace

core::Result<std::string> read_text_file(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return core::Error{"cannot read '" + path + "': " + ec.message()};
  if (size > kMaxFileSize) return core::Error{"cannot read '" + path + "': file too large"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Error{"cannot read '" + path + "': " + std::strerror(errno)};
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return core::Error{"cannot read '" + path + "': read error"};
  return buf.str();
}

core::Result<std::vector<IniItem>> read_ini_file(const std::string& path) {
  std::vector<IniItem> items;
  IniReader reader(items, nullptr);
  auto st = reader.read_file(path, 0, "");
  if (!st.ok()) return core::Error{st.error()};
  return items;
}

namespace {

core::Result<std::vector<IniItem>> read_text_with(std::string_view text, const std::string& name,
                                                  const std::string& base_dir,
                                                  const IniFileReader* read) {
  std::vector<IniItem> items;
  IniReader reader(items, read);
  auto st = reader.read_text(text, name, base_dir.empty() ? "." : base_dir, 0);
  if (!st.ok()) return core::Error{st.error()};
  return items;
}

}  // namespace

core::Result<std::vector<IniItem>> read_ini_text(std::string_view text, const std::string& name,
                                                 const std::string& base_dir) {
  return read_text_with(text, name, base_dir, nullptr);
}

core::Result<std::vector<IniItem>> read_ini_text(std::string_view text, const std::string& name,
                                                 const std::string& base_dir,
                                                 const IniFileReader& read) {
  return read_text_with(text, name, base_dir, &read);
}

}  // namespace sluice::config
