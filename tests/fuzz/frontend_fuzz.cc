// Fuzz target: the client message views (proto/frontend.h) on any body. Every field a view gives
// lies inside the body, counts agree with the bytes, a whole decode accounts for every byte, and
// the relay's cheap peeks agree with the full decodes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "proto/frontend.h"

using namespace sluice::proto;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool clean(std::string_view field, std::string_view body) {
  return inside(field, body) && field.find('\0') == std::string_view::npos;
}

// param_count x (int32 length, bytes or -1): walks `raw` and says whether it is exactly that.
bool values_fit(std::string_view raw, std::uint16_t n) {
  std::size_t at = 0;
  for (std::uint16_t i = 0; i < n; ++i) {
    if (raw.size() - at < 4) return false;
    auto len =
        static_cast<std::int32_t>((std::uint32_t{static_cast<unsigned char>(raw[at])} << 24) |
                                  (std::uint32_t{static_cast<unsigned char>(raw[at + 1])} << 16) |
                                  (std::uint32_t{static_cast<unsigned char>(raw[at + 2])} << 8) |
                                  std::uint32_t{static_cast<unsigned char>(raw[at + 3])});
    at += 4;
    if (len < -1) return false;
    if (len > 0) {
      if (raw.size() - at < static_cast<std::size_t>(len)) return false;
      at += static_cast<std::size_t>(len);
    }
  }
  return at == raw.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  if (auto p = ParseView::decode(body)) {
    SLUICE_FUZZ_CHECK(clean(p->name, body) && clean(p->query, body));
    SLUICE_FUZZ_CHECK(inside(p->param_types, body));
    SLUICE_FUZZ_CHECK(p->param_types.size() == 2 + 4 * std::size_t{p->param_count});
    SLUICE_FUZZ_CHECK(p->name.size() + p->query.size() + 2 + p->param_types.size() == size);
    SLUICE_FUZZ_CHECK(parse_is_unnamed(body) == p->name.empty());
  }

  auto names = BindNames::decode(body);
  if (names) {
    SLUICE_FUZZ_CHECK(clean(names->portal, body) && clean(names->statement, body));
    SLUICE_FUZZ_CHECK(names->size() <= size);
    SLUICE_FUZZ_CHECK(bind_is_unnamed(body) == (names->portal.empty() && names->statement.empty()));
    // A prefix that holds both names decodes the same names.
    auto again = BindNames::decode(body.substr(0, names->size()));
    SLUICE_FUZZ_CHECK(again && again->portal == names->portal &&
                      again->statement == names->statement);
  }
  if (auto b = BindView::decode(body)) {
    SLUICE_FUZZ_CHECK(names && b->names.portal == names->portal);
    SLUICE_FUZZ_CHECK(b->names.statement == names->statement);
    SLUICE_FUZZ_CHECK(inside(b->params, body) && values_fit(b->params, b->param_count));
    SLUICE_FUZZ_CHECK(b->param_format_count <= 1 || b->param_format_count == b->param_count);
    SLUICE_FUZZ_CHECK(names->size() + 2 + 2 * std::size_t{b->param_format_count} + 2 +
                          b->params.size() + 2 + 2 * std::size_t{b->result_format_count} ==
                      size);
  }

  if (auto t = TargetView::decode(body)) {
    SLUICE_FUZZ_CHECK(t->kind == 'S' || t->kind == 'P');
    SLUICE_FUZZ_CHECK(clean(t->name, body) && t->name.size() + 2 == size);
    SLUICE_FUZZ_CHECK(targets_portal(body) == !t->statement());
  }

  if (auto e = ExecuteView::decode(body)) {
    SLUICE_FUZZ_CHECK(clean(e->portal, body) && e->portal.size() + 5 == size);
  }

  auto q = QueryView::decode(body);
  if (q) {
    SLUICE_FUZZ_CHECK(clean(q->text, body) && q->text.size() + 1 == size);
    SLUICE_FUZZ_CHECK(QueryView::text_of(body) == q->text);
  }
  std::string_view text = QueryView::text_of(body);
  SLUICE_FUZZ_CHECK(inside(text, body) && (text.size() == size || text.size() + 1 == size));

  auto cd = CopyDataView::decode(body);
  SLUICE_FUZZ_CHECK(cd && cd->data.size() == size);
  SLUICE_FUZZ_CHECK(CopyDoneView::decode(body).has_value() == (size == 0));
  if (auto f = CopyFailView::decode(body)) {
    SLUICE_FUZZ_CHECK(clean(f->message, body) && f->message.size() + 1 == size);
    SLUICE_FUZZ_CHECK(q && q->text == f->message);
  }

  if (auto fc = FunctionCallView::decode(body)) {
    SLUICE_FUZZ_CHECK(inside(fc->args, body) && values_fit(fc->args, fc->arg_count));
    SLUICE_FUZZ_CHECK(fc->arg_format_count <= 1 || fc->arg_format_count == fc->arg_count);
    SLUICE_FUZZ_CHECK(4 + 2 + 2 * std::size_t{fc->arg_format_count} + 2 + fc->args.size() + 2 ==
                      size);
  }
  return 0;
}
