// Console statement syntax and reply helpers.
#include "admin/command.h"

#include <fmt/format.h>
#include <strings.h>
#include <sys/time.h>

#include <cctype>
#include <ctime>

#include "proto/codes.h"
#include "proto/writer.h"

namespace sluice::admin {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0)
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0)
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::vector<std::string_view> split_statements(std::string_view sql) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  char quote = 0;
  for (std::size_t i = 0; i <= sql.size(); ++i) {
    if (i < sql.size() && (sql[i] == '\'' || sql[i] == '"')) {
      if (quote == 0) {
        quote = sql[i];
      } else if (quote == sql[i]) {
        quote = 0;
      }
    }
    if (i == sql.size() || (sql[i] == ';' && quote == 0)) {
      std::string_view stmt = trim(sql.substr(start, i - start));
      if (!stmt.empty()) out.push_back(stmt);
      start = i + 1;
    }
  }
  return out;
}

std::string_view next_word(std::string_view& s) {
  s = trim(s);
  if (s.empty()) return s;
  std::size_t i = 0;
  if (s[0] == '"' || s[0] == '\'') {
    char q = s[0];
    i = 1;
    while (i < s.size()) {
      if (s[i] == q) {
        if (i + 1 < s.size() && s[i + 1] == q) {
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      ++i;
    }
  } else if (s[0] == '=') {
    i = 1;
  } else {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) == 0 && s[i] != '=' &&
           s[i] != '\'' && s[i] != '"') {
      ++i;
    }
  }
  std::string_view w = s.substr(0, i);
  s = trim(s.substr(i));
  return w;
}

std::string unquote(std::string_view v) {
  v = trim(v);
  if (v.size() >= 2 && (v.front() == '\'' || v.front() == '"') && v.back() == v.front()) {
    char q = v.front();
    std::string out;
    for (std::size_t i = 1; i + 1 < v.size(); ++i) {
      if (v[i] == q && i + 2 < v.size() && v[i + 1] == q) ++i;
      out.push_back(v[i]);
    }
    return out;
  }
  return std::string(v);
}

std::string name_of(std::string_view word) {
  if (!word.empty() && word.front() == '"') return unquote(word);
  return std::string(word);
}

void write_error(std::string& out, std::string_view message, const char* sqlstate) {
  proto::write_error(out, {proto::Severity::Error, sqlstate, message});
}

void write_notice(std::string& out, std::string_view message, std::string_view detail) {
  proto::MessageWriter w(out);
  w.begin(proto::be::kNoticeResponse)
      .u8('S')
      .cstring("NOTICE")
      .u8('V')
      .cstring("NOTICE")
      .u8('C')
      .cstring("00000")
      .u8('M')
      .cstring(message);
  if (!detail.empty()) w.u8('D').cstring(detail);
  w.u8(0).finish();
}

void write_complete(std::string& out, std::string_view tag) {
  proto::write_command_complete(out, tag);
}

std::string wall_time_text(core::Micros monotonic, core::Micros mono_now) {
  if (monotonic == 0) return {};
  timeval tv{};
  gettimeofday(&tv, nullptr);
  core::Micros wall_now =
      static_cast<core::Micros>(tv.tv_sec) * core::kMicrosPerSecond + tv.tv_usec;
  std::time_t secs =
      static_cast<std::time_t>((wall_now - (mono_now - monotonic)) / core::kMicrosPerSecond);
  std::tm tmv{};
  localtime_r(&secs, &tmv);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tmv);
  return std::string(buf, n);
}

std::string ptr_text(const void* p) {
  return p == nullptr ? std::string() : fmt::format("{}", p);
}

}  // namespace sluice::admin
