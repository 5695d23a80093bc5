// The `options` startup parameter, split into the settings it carries.
#include "proto/startup_options.h"

namespace sluice::proto {

bool parse_startup_options(std::string_view opts,
                           std::vector<std::pair<std::string, std::string>>& out) {
  std::vector<std::string> words;
  std::string cur;
  bool esc = false;
  for (char c : opts) {
    if (esc) {
      cur.push_back(c);
      esc = false;
    } else if (c == '\\') {
      esc = true;
    } else if (c == ' ' || c == '\t') {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string kv;
    if (words[i] == "-c" && i + 1 < words.size()) {
      kv = words[++i];
    } else if (words[i].rfind("-c", 0) == 0 && words[i].size() > 2) {
      kv = words[i].substr(2);
    } else if (words[i].rfind("--", 0) == 0) {
      kv = words[i].substr(2);
    } else {
      return false;
    }
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    std::string name = kv.substr(0, eq);
    for (char& ch : name) {
      if (ch == '-') ch = '_';
    }
    out.emplace_back(std::move(name), kv.substr(eq + 1));
  }
  return true;
}

}  // namespace sluice::proto
