// Fuzz target: console statement syntax (admin/command.h). Statements are trimmed, non-empty,
// ordered pieces of the input, and splitting them again once joined gives them back; words
// are non-empty ordered pieces of a statement; a quoted word unquotes and quotes back to
// itself, and any text quoted is read back as one word that unquotes to the text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "admin/command.h"
#include "fuzz_check.h"

using namespace sluice::admin;

namespace {

std::string quoted(std::string_view s, char q) {
  std::string out(1, q);
  for (char c : s) {
    out += c;
    if (c == q) out += q;
  }
  return out + q;
}

// A word "q...q" whose inside is only other characters and doubled quotes.
bool well_quoted(std::string_view w) {
  if (w.size() < 2 || (w.front() != '\'' && w.front() != '"') || w.back() != w.front()) {
    return false;
  }
  const char q = w.front();
  for (std::size_t i = 1; i + 1 < w.size(); ++i) {
    if (w[i] != q) continue;
    if (i + 2 >= w.size() || w[i + 1] != q) return false;
    ++i;
  }
  return true;
}

bool within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> stmts = split_statements(sql);
  const char* after = sql.data();
  std::string joined;
  for (std::string_view st : stmts) {
    SLUICE_FUZZ_CHECK(!st.empty() && trim(st) == st);
    SLUICE_FUZZ_CHECK(within(st, sql) && st.data() >= after);
    after = st.data() + st.size();
    if (!joined.empty()) joined += ';';
    joined += st;

    std::string_view rest = st;
    const char* word_after = st.data();
    for (int guard = 0;; ++guard) {
      SLUICE_FUZZ_CHECK(guard <= static_cast<int>(st.size()));  // every word takes something
      std::string_view w = next_word(rest);
      if (w.empty()) break;
      SLUICE_FUZZ_CHECK(within(w, st) && w.data() >= word_after);
      word_after = w.data() + w.size();
      SLUICE_FUZZ_CHECK(trim(rest) == rest);
      if (well_quoted(w)) {
        SLUICE_FUZZ_CHECK(quoted(unquote(w), w.front()) == w);
        if (w.front() == '"') SLUICE_FUZZ_CHECK(name_of(w) == unquote(w));
      } else if (w.front() != '"') {
        SLUICE_FUZZ_CHECK(name_of(w) == w);
      }
    }
    SLUICE_FUZZ_CHECK(rest.empty());
  }
  const std::vector<std::string_view> again = split_statements(joined);
  SLUICE_FUZZ_CHECK(again.size() == stmts.size());
  for (std::size_t i = 0; i < stmts.size(); ++i)
    SLUICE_FUZZ_CHECK(again[i] == stmts[i]);

  // Any text, quoted either way, is one word that unquotes to the text.
  for (char q : {'\'', '"'}) {
    const std::string word = quoted(sql, q);
    const std::string line = "SET x = " + word + "  ";
    std::string_view rest = line;
    SLUICE_FUZZ_CHECK(next_word(rest) == "SET");
    SLUICE_FUZZ_CHECK(next_word(rest) == "x");
    SLUICE_FUZZ_CHECK(next_word(rest) == "=");
    std::string_view w = next_word(rest);
    SLUICE_FUZZ_CHECK(w == word && rest.empty());
    SLUICE_FUZZ_CHECK(unquote(w) == sql);
  }
  return 0;
}
