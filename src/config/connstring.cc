// libpq-style "key=value key='quoted value'" strings used by [databases] and [users] entries.
#include "config/connstring.h"

#include "config/values.h"

namespace sluice::config {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void skip_blanks(std::string_view& s) {
  while (!s.empty() && is_blank(s.front()))
    s.remove_prefix(1);
}

}  // namespace

core::Result<ConnParams> parse_connstring(std::string_view s) {
  ConnParams out;
  skip_blanks(s);
  while (!s.empty()) {
    std::size_t i = 0;
    while (i < s.size() && s[i] != '=' && !is_blank(s[i]))
      ++i;
    std::string key = to_lower(s.substr(0, i));
    if (key.empty()) return core::Error{"missing parameter name before '='"};
    s.remove_prefix(i);
    skip_blanks(s);
    if (s.empty() || s.front() != '=') return core::Error{"expected '=' after '" + key + "'"};
    s.remove_prefix(1);
    skip_blanks(s);

    std::string value;
    if (!s.empty() && s.front() == '\'') {
      s.remove_prefix(1);
      bool closed = false;
      while (!s.empty()) {
        const char c = s.front();
        s.remove_prefix(1);
        if (c == '\\' && !s.empty() && (s.front() == '\'' || s.front() == '\\')) {
          value += s.front();
          s.remove_prefix(1);
        } else if (c == '\'' && !s.empty() && s.front() == '\'') {
          value += '\'';
          s.remove_prefix(1);
        } else if (c == '\'') {
          closed = true;
          break;
        } else {
          value += c;
        }
      }
      if (!closed) return core::Error{"unterminated quoted value for '" + key + "'"};
      if (!s.empty() && !is_blank(s.front())) {
        return core::Error{"unexpected text after quoted value for '" + key + "'"};
      }
    } else {
      std::size_t j = 0;
      while (j < s.size() && !is_blank(s[j]))
        ++j;
      value.assign(s.substr(0, j));
      s.remove_prefix(j);
      if (value.empty()) return core::Error{"missing value for '" + key + "'"};
    }
    out.emplace_back(std::move(key), std::move(value));
    skip_blanks(s);
  }
  return out;
}

}  // namespace sluice::config
