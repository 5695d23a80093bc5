// Fuzz target: the backend views (ParameterStatus, BackendKeyData, ErrorView) on any body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "proto/backend.h"
#include "proto/writer.h"

using namespace sluice::proto;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool clean(std::string_view field, std::string_view body) {
  return inside(field, body) && field.find('\0') == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  if (auto ps = ParameterStatusView::decode(body)) {
    SLUICE_FUZZ_CHECK(clean(ps->name, body) && clean(ps->value, body));
    SLUICE_FUZZ_CHECK(ps->name.size() + ps->value.size() + 2 == body.size());
    std::string out;
    write_parameter_status(out, ps->name, ps->value);
    SLUICE_FUZZ_CHECK(std::string_view(out).substr(5) == body);
  }

  auto kd = BackendKeyDataView::decode(body);
  SLUICE_FUZZ_CHECK(kd.has_value() == (body.size() == 8));
  if (kd) {
    std::string out;
    write_backend_key_data(out, kd->pid, kd->secret);
    SLUICE_FUZZ_CHECK(std::string_view(out).substr(5) == body);
  }

  if (auto e = ErrorView::decode(body)) {
    SLUICE_FUZZ_CHECK(clean(e->severity, body) && clean(e->sqlstate, body));
    SLUICE_FUZZ_CHECK(clean(e->message, body) && clean(e->detail, body));
    SLUICE_FUZZ_CHECK(body.find('\0') != std::string_view::npos);  // it has a terminator
  }
  return 0;
}
