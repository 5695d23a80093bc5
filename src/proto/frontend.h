// Views over client (frontend) message bodies: decode only, bounds-checked, never re-encode.
// Each decode() takes the body (after the 5-byte header) and answers nullopt for anything that
// is not a well-formed message of that type; the fields point into the body. The relay reads
// only what a feature needs (I7): names to rename, text to classify; the rest streams.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proto/reader.h"

namespace sluice::proto {

// Parse: statement name, query text, parameter type OIDs (kept raw: int16 count, count x int32).
struct ParseView {
  std::string_view name;
  std::string_view query;
  std::string_view param_types;  // the raw tail, count included
  std::uint16_t param_count = 0;
  [[nodiscard]] static std::optional<ParseView> decode(std::string_view body);
};

// Bind, as far as renaming needs: the portal and statement names at the start of the body.
// `prefix` may be only the start of the body (a large Bind streams past its names): nullopt
// until both names are complete in it.
struct BindNames {
  std::string_view portal;
  std::string_view statement;
  [[nodiscard]] std::size_t size() const { return portal.size() + statement.size() + 2; }
  [[nodiscard]] static std::optional<BindNames> decode(std::string_view prefix) {
    BodyReader r(prefix);
    auto portal = r.cstring();
    if (!portal) return std::nullopt;
    auto statement = r.cstring();
    if (!statement) return std::nullopt;
    return BindNames{*portal, *statement};
  }
};

// Bind, whole: names, parameter formats, values, result formats, each checked against the body.
struct BindView {
  BindNames names;
  std::uint16_t param_format_count = 0;
  std::uint16_t param_count = 0;
  std::uint16_t result_format_count = 0;
  std::string_view param_formats;  // raw: param_format_count x int16
  std::string_view params;  // the raw values: param_count x (int32 length, bytes or -1 for NULL)
  std::string_view result_formats;  // raw: result_format_count x int16
  [[nodiscard]] static std::optional<BindView> decode(std::string_view body);
};

// Describe and Close: 'S' (statement) or 'P' (portal), and the name.
struct TargetView {
  char kind = 0;
  std::string_view name;
  [[nodiscard]] bool statement() const { return kind == 'S'; }
  [[nodiscard]] static std::optional<TargetView> decode(std::string_view body) {
    BodyReader r(body);
    auto kind = r.u8();
    auto name = r.cstring();
    if (!kind || (*kind != 'S' && *kind != 'P') || !name || !r.at_end()) return std::nullopt;
    return TargetView{static_cast<char>(*kind), *name};
  }
};
using DescribeView = TargetView;
using CloseView = TargetView;

// Execute: portal name and the row limit (0: all).
struct ExecuteView {
  std::string_view portal;
  std::uint32_t max_rows = 0;
  [[nodiscard]] static std::optional<ExecuteView> decode(std::string_view body) {
    BodyReader r(body);
    auto portal = r.cstring();
    auto rows = r.u32();
    if (!portal || !rows || !r.at_end()) return std::nullopt;
    return ExecuteView{*portal, *rows};
  }
};

// Query: the text without its terminating NUL (which must be the last byte and the only one).
struct QueryView {
  std::string_view text;
  [[nodiscard]] static std::optional<QueryView> decode(std::string_view body) {
    BodyReader r(body);
    auto text = r.cstring();
    if (!text || !r.at_end()) return std::nullopt;
    return QueryView{*text};
  }
  // The text as sluice classifies it: the body up to a final NUL, without checking that there is
  // none before it (the server refuses such a message; the scan stops at the first NUL anyway).
  [[nodiscard]] static std::string_view text_of(std::string_view body) {
    if (!body.empty() && body.back() == '\0') body.remove_suffix(1);
    return body;
  }
};

// CopyData: any bytes. CopyDone: no body. CopyFail: the error message.
struct CopyDataView {
  std::string_view data;
  [[nodiscard]] static std::optional<CopyDataView> decode(std::string_view body) {
    return CopyDataView{body};
  }
};
struct CopyDoneView {
  [[nodiscard]] static std::optional<CopyDoneView> decode(std::string_view body) {
    if (!body.empty()) return std::nullopt;
    return CopyDoneView{};
  }
};
struct CopyFailView {
  std::string_view message;
  [[nodiscard]] static std::optional<CopyFailView> decode(std::string_view body) {
    BodyReader r(body);
    auto m = r.cstring();
    if (!m || !r.at_end()) return std::nullopt;
    return CopyFailView{*m};
  }
};

// FunctionCall (fast path): function OID, argument formats, arguments, result format.
struct FunctionCallView {
  std::uint32_t function_oid = 0;
  std::uint16_t arg_format_count = 0;
  std::uint16_t arg_count = 0;
  std::uint16_t result_format = 0;
  std::string_view args;  // raw: arg_count x (int32 length, bytes or -1 for NULL)
  [[nodiscard]] static std::optional<FunctionCallView> decode(std::string_view body);
};

// Peeks the relay's fast path makes at a body it holds whole or in part (`body` may be a prefix):
// cheaper than a decode, and false when the bytes to tell are not there.
// A Bind of the unnamed portal and the unnamed statement: nothing to rename.
[[nodiscard]] inline bool bind_is_unnamed(std::string_view body) {
  return body.size() >= 2 && body[0] == '\0' && body[1] == '\0';
}
// A Describe or Close of a portal: nothing to rename.
[[nodiscard]] inline bool targets_portal(std::string_view body) {
  return !body.empty() && body[0] == 'P';
}
// A Parse of the unnamed statement (its text follows the first byte).
[[nodiscard]] inline bool parse_is_unnamed(std::string_view body) {
  return body.size() >= 2 && body[0] == '\0';
}

}  // namespace sluice::proto
