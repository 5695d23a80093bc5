// Views over backend messages whose fields sluice needs; decode only, never re-encode.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proto/reader.h"

namespace sluice::proto {

struct ParameterStatusView {
  std::string_view name;
  std::string_view value;
  [[nodiscard]] static std::optional<ParameterStatusView> decode(std::string_view body) {
    BodyReader r(body);
    auto n = r.cstring();
    auto v = r.cstring();
    if (!n || !v || !r.at_end()) return std::nullopt;
    return ParameterStatusView{*n, *v};
  }
};

struct BackendKeyDataView {
  std::uint32_t pid;
  std::uint32_t secret;
  [[nodiscard]] static std::optional<BackendKeyDataView> decode(std::string_view body) {
    BodyReader r(body);
    auto p = r.u32();
    auto s = r.u32();
    if (!p || !s || !r.at_end()) return std::nullopt;
    return BackendKeyDataView{*p, *s};
  }
};

// ErrorResponse / NoticeResponse: the fields a pooler acts on.
struct ErrorView {
  std::string_view severity;
  std::string_view sqlstate;
  std::string_view message;
  std::string_view detail;
  [[nodiscard]] static std::optional<ErrorView> decode(std::string_view body) {
    BodyReader r(body);
    ErrorView e{};
    for (;;) {
      auto code = r.u8();
      if (!code) return std::nullopt;
      if (*code == 0) break;
      auto v = r.cstring();
      if (!v) return std::nullopt;
      switch (*code) {
        case 'V':
          e.severity = *v;
          break;
        case 'S':
          if (e.severity.empty()) e.severity = *v;
          break;
        case 'C':
          e.sqlstate = *v;
          break;
        case 'M':
          e.message = *v;
          break;
        case 'D':
          e.detail = *v;
          break;
        default:
          break;
      }
    }
    return e;
  }
};

}  // namespace sluice::proto
