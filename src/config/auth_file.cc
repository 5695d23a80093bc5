// The auth_file ("userlist.txt"): one `"user" "secret"` pair per line.
#include "config/auth_file.h"

#include <unordered_map>

#include "config/values.h"

namespace sluice::config {

namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Reads a "..." field at the front of `s` ("" inside stands for one quote). Advances `s`.
bool read_quoted(std::string_view& s, std::string& out) {
  out.clear();
  if (s.empty() || s.front() != '"') return false;
  std::size_t i = 1;
  for (;; ++i) {
    if (i >= s.size()) return false;
    if (s[i] != '"') {
      out += s[i];
    } else if (i + 1 < s.size() && s[i + 1] == '"') {
      out += '"';
      ++i;
    } else {
      break;
    }
  }
  s.remove_prefix(i + 1);
  return true;
}

}  // namespace

AuthEntry::Kind classify_secret(std::string_view secret) {
  if (secret.size() == 35 && secret.substr(0, 3) == "md5") {
    bool hex = true;
    for (char c : secret.substr(3))
      hex = hex && is_hex(c);
    if (hex) return AuthEntry::Kind::Md5;
  }
  if (secret.substr(0, 14) == "SCRAM-SHA-256$") return AuthEntry::Kind::Scram;
  return AuthEntry::Kind::Plain;
}

core::Result<std::vector<AuthEntry>> parse_auth_text(std::string_view text,
                                                     const std::string& origin) {
  std::vector<AuthEntry> out;
  std::unordered_map<std::string, std::size_t> index;  // user -> position in out
  int lineno = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++lineno;
    if (line.empty() || line.front() == ';') continue;
    auto fail = [&](std::string_view why) {
      return core::Error{origin + ":" + std::to_string(lineno) + ": " + std::string(why)};
    };
    AuthEntry entry;
    if (!read_quoted(line, entry.user)) return fail("expected a double-quoted user name");
    if (entry.user.empty()) return fail("empty user name");
    line = trim(line);
    if (!read_quoted(line, entry.secret)) return fail("expected a double-quoted password");
    entry.kind = classify_secret(entry.secret);
    auto [it, fresh] = index.try_emplace(entry.user, out.size());
    if (fresh) {
      out.push_back(std::move(entry));
    } else {
      out[it->second] = std::move(entry);
    }
  }
  return out;
}

core::Result<std::vector<AuthEntry>> parse_auth_file(std::string_view text) {
  return parse_auth_text(text, "auth_file");
}

}  // namespace sluice::config
