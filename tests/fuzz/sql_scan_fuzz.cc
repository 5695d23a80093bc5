// Fuzz target: the statement-text pre-scan (scan_text over an exact-size buffer, so any read
// past it is caught), and the parser-backed classifier on what the scan sends to it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "fuzz_check.h"
#include "sql/classify.h"
#include "sql/scan.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto buf = std::make_unique<char[]>(size == 0 ? 1 : size);
  if (size > 0) std::memcpy(buf.get(), data, size);
  const char* begin = buf.get();
  sluice::sql::TextScan s = sluice::sql::scan_text(begin, begin + size);
  const void* nul = size == 0 ? nullptr : std::memchr(begin, 0, size);
  SLUICE_FUZZ_CHECK(s.terminated == (nul != nullptr));
  SLUICE_FUZZ_CHECK(s.length == (nul != nullptr ? static_cast<const char*>(nul) - begin : size));
  std::string_view text(begin, s.length);
  // Over text of known length the answer is the same.
  SLUICE_FUZZ_CHECK(sluice::sql::needs_parse(text) == s.needs_parse);
  if (s.needs_parse && text.size() <= 4096) {
    auto e = sluice::sql::classify(text);
    SLUICE_FUZZ_CHECK(e != nullptr);
    for (const auto& op : e->prepared_ops) {
      SLUICE_FUZZ_CHECK(op.op != sluice::sql::Effects::Op::Prepare || !op.name.empty());
    }
  }
  return 0;
}
