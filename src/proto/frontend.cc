// Whole-message decoders of client messages with variable-length parts (proto/frontend.h).
#include "proto/frontend.h"

namespace sluice::proto {
namespace {

// A non-negative int16 count, as Postgres reads them (a negative count is a malformed message).
std::optional<std::uint16_t> count(BodyReader& r) {
  auto n = r.u16();
  if (!n || *n > 0x7fff) return std::nullopt;
  return n;
}

// `n` values of (int32 length, bytes), a length of -1 being NULL; the raw span they take.
std::optional<std::string_view> values(BodyReader& r, std::uint16_t n) {
  std::string_view all = r.rest();
  BodyReader v(all);
  for (std::uint16_t i = 0; i < n; ++i) {
    auto len = v.i32();
    if (!len || *len < -1) return std::nullopt;
    if (*len > 0 && !v.bytes(static_cast<std::size_t>(*len))) return std::nullopt;
  }
  std::size_t used = all.size() - v.remaining();
  r = BodyReader(all.substr(used));
  return all.substr(0, used);
}

}  // namespace

std::optional<ParseView> ParseView::decode(std::string_view body) {
  BodyReader r(body);
  auto name = r.cstring();
  auto query = r.cstring();
  if (!name || !query) return std::nullopt;
  std::string_view types = r.rest();
  BodyReader t(types);
  auto n = count(t);
  if (!n || t.remaining() != 4 * std::size_t{*n}) return std::nullopt;
  return ParseView{*name, *query, types, *n};
}

std::optional<BindView> BindView::decode(std::string_view body) {
  auto names = BindNames::decode(body);
  if (!names) return std::nullopt;
  BodyReader r(body.substr(names->size()));
  BindView b{*names};
  auto nf = count(r);
  if (!nf) return std::nullopt;
  auto formats = r.bytes(2 * std::size_t{*nf});
  if (!formats) return std::nullopt;
  auto np = count(r);
  if (!np) return std::nullopt;
  // Postgres: as many formats as parameters, one for all, or none (text).
  if (*nf > 1 && *nf != *np) return std::nullopt;
  auto params = values(r, *np);
  if (!params) return std::nullopt;
  auto nr = count(r);
  if (!nr) return std::nullopt;
  auto results = r.bytes(2 * std::size_t{*nr});
  if (!results || !r.at_end()) return std::nullopt;
  b.param_format_count = *nf;
  b.param_count = *np;
  b.param_formats = *formats;
  b.params = *params;
  b.result_format_count = *nr;
  b.result_formats = *results;
  return b;
}

std::optional<FunctionCallView> FunctionCallView::decode(std::string_view body) {
  BodyReader r(body);
  auto oid = r.u32();
  if (!oid) return std::nullopt;
  auto nf = count(r);
  if (!nf || !r.bytes(2 * std::size_t{*nf})) return std::nullopt;
  auto na = count(r);
  if (!na || (*nf > 1 && *nf != *na)) return std::nullopt;
  auto args = values(r, *na);
  if (!args) return std::nullopt;
  auto result = r.u16();
  if (!result || !r.at_end()) return std::nullopt;
  return FunctionCallView{*oid, *nf, *na, *result, *args};
}

}  // namespace sluice::proto
