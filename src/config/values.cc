// Text helpers shared by the config readers: trimming, numbers, booleans, seconds, lists.
#include "config/values.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace sluice::config {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Upper bound for a seconds value so that the microsecond count cannot overflow.
constexpr double kMaxSeconds = 1e12;

}  // namespace

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  } else if (s.size() > 1 && s[0] == '0') {
    base = 8;
    s.remove_prefix(1);
  }
  if (s.empty() || s.front() == '+' || s.front() == '-') return std::nullopt;
  std::uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (magnitude > kMax) return std::nullopt;
  const auto v = static_cast<std::int64_t>(magnitude);
  return negative ? -v : v;
}

std::optional<bool> parse_bool(std::string_view s) {
  if (iequals(s, "on") || iequals(s, "true") || iequals(s, "yes")) return true;
  if (iequals(s, "off") || iequals(s, "false") || iequals(s, "no")) return false;
  if (auto n = parse_int(s)) return *n != 0;
  return std::nullopt;
}

std::optional<core::Micros> parse_seconds(std::string_view s) {
  if (s.empty() || s.front() == '+' || s.front() == '-') return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if (!std::isfinite(v) || v < 0 || v > kMaxSeconds) return std::nullopt;
  return static_cast<core::Micros>(std::llround(v * static_cast<double>(core::kMicrosPerSecond)));
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    const auto comma = s.find(',');
    const auto item = trim(s.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

std::string format_seconds(core::Micros us) {
  std::string out = us < 0 ? "-" : "";
  const std::uint64_t mag =
      us < 0 ? 0 - static_cast<std::uint64_t>(us) : static_cast<std::uint64_t>(us);
  constexpr auto kPerSecond = static_cast<std::uint64_t>(core::kMicrosPerSecond);
  out += std::to_string(mag / kPerSecond);
  const auto frac = mag % kPerSecond;
  if (frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 6 - digits.size(), '0');
    while (digits.back() == '0')
      digits.pop_back();
    out += '.';
    out += digits;
  }
  return out;
}

}  // namespace sluice::config
