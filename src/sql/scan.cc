// needs_parse: statement-start keywords and function names, no full lexing. This runs for every
// query in transaction pooling, so it is written for the common case: a few dozen instructions
// for "SELECT ... WHERE id = 42".
#include "sql/scan.h"

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::sql {
namespace {

constexpr std::array<bool, 256> make_ident_table() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[static_cast<std::size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                     (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
  }
  return t;
}
constexpr std::array<bool, 256> kIdent = make_ident_table();

inline bool ident(char c) {
  return kIdent[static_cast<unsigned char>(c)];
}
inline char lower(char c) {
  return static_cast<char>(c | 0x20);
}  // letters only

// Case-insensitive compare of exactly n = strlen(kw) bytes (kw lower case, letters and '_').
inline bool ieq(const char* w, const char* kw, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    char c = w[i];
    if (c != kw[i] && lower(c) != kw[i]) return false;
  }
  return true;
}

inline bool blank(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

// After "/*": past the matching "*/" (block comments nest in Postgres), or `end`.
const char* skip_block_comment(const char* p, const char* end) {
  int depth = 1;
  while (p + 1 < end) {
    if (p[0] == '*' && p[1] == '/') {
      p += 2;
      if (--depth == 0) return p;
    } else if (p[0] == '/' && p[1] == '*') {
      p += 2;
      ++depth;
    } else {
      ++p;
    }
  }
  return end;
}

// Skips blanks, opening parentheses and comments.
const char* skip_noise(const char* p, const char* end) {
  while (p < end) {
    char c = *p;
    if (blank(c) || c == '(') {
      ++p;
    } else if (c == '-' && p + 1 < end && p[1] == '-') {
      const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
      p = nl == nullptr ? end : static_cast<const char*>(nl) + 1;
    } else if (c == '/' && p + 1 < end && p[1] == '*') {
      p = skip_block_comment(p + 2, end);
    } else {
      break;
    }
  }
  return p;
}

// The keywords' first two letters, lower case: a word not starting with one of these is not one
// of them, decided without reading it.
// The keywords' first three letters ("do" has two): a word that does not start with one of
// them is not one of them, decided without reading it. `c` may be the byte after a word.
[[gnu::always_inline]] inline bool keyword_prefix(char a, char b, char c) {
  b = lower(b);
  c = lower(c);
  switch (lower(a)) {
    case 's':
      return b == 'e' && c == 't';  // set
    case 'r':
      return b == 'e' && c == 's';  // reset
    case 'd':
      return (b == 'i' && c == 's') || (b == 'e' && (c == 'a' || c == 'c')) ||
             (b == 'r' && c == 'o') || (b == 'o' && !ident(c));  // discard dea dec drop do
    case 'l':
      return (b == 'i' && c == 's') || (b == 'o' && c == 'a');  // listen, load
    case 'u':
      return b == 'n' && c == 'l';  // unlisten
    case 'p':
      return b == 'r' && c == 'e';  // prepare
    case 'e':
      return b == 'x' && (c == 'e' || c == 'p');  // execute, explain
    case 'c':
      return (b == 'l' && c == 'o') || (b == 'r' && c == 'e') || (b == 'a' && c == 'l');
    default:
      return false;
  }
}

bool first_word_hits(const char* p, const char* end) {
  if (p + 2 < end && ident(p[0]) && ident(p[1]) && !keyword_prefix(p[0], p[1], p[2])) {
    return false;  // "SELECT ...", "INSERT ...", "UPDATE ...": the common case, decided here
  }
  p = skip_noise(p, end);
  if (p + 2 >= end || !keyword_prefix(p[0], p[1], p[2])) {
    // "do" as the whole remaining text
    return p + 2 == end && lower(p[0]) == 'd' && lower(p[1]) == 'o';
  }
  const char* w = p;
  while (p < end && ident(*p))
    ++p;
  switch (p - w) {
    case 2:
      return ieq(w, "do", 2);
    case 3:
      return ieq(w, "set", 3);
    case 4:
      return ieq(w, "drop", 4) || ieq(w, "load", 4) || ieq(w, "call", 4);
    case 5:
      return ieq(w, "reset", 5) || ieq(w, "close", 5);
    case 6:
      return ieq(w, "listen", 6) || ieq(w, "create", 6);
    case 7:
      return ieq(w, "discard", 7) || ieq(w, "declare", 7) || ieq(w, "prepare", 7) ||
             ieq(w, "execute", 7) || ieq(w, "explain", 7);
    case 8:
      return ieq(w, "unlisten", 8);
    case 10:
      return ieq(w, "deallocate", 10);
    default:
      return false;
  }
}

// The identifier ending right before `paren`: set_config, pg_[try_]advisory_*.
// Whatever is unusual before the '(' (a comment, a quoted name) counts as a hit: a parse settles
// it.
bool function_hits(const char* begin, const char* paren) {
  const char* j = paren;
  bool newline = false;
  while (j > begin && blank(j[-1])) {
    newline |= j[-1] == '\n';
    --j;
  }
  if (j - begin >= 2 && j[-1] == '/' && j[-2] == '*') return true;  // name /* ... */ (
  if (j > begin && j[-1] == '"') return true;                       // "quoted name"(
  if (newline) {
    // name -- comment NEWLINE (: a "--" on the line before.
    const char* line = j;
    while (line > begin && line[-1] != '\n')
      --line;
    for (const char* q = line; q + 1 < j; ++q) {
      if (q[0] == '-' && q[1] == '-') return true;
    }
  }
  const char* i = j;
  while (i > begin && ident(i[-1]))
    --i;
  std::size_t n = static_cast<std::size_t>(j - i);
  if (n < 10) return false;
  if (n == 10 && ieq(i, "set_config", 10)) return true;
  if (!ieq(i, "pg_", 3)) return false;
  i += 3;
  n -= 3;
  if (n >= 4 && ieq(i, "try_", 4)) {
    i += 4;
    n -= 4;
  }
  return n >= 8 && ieq(i, "advisory", 8);
}

// "SELECT": most queries start with it, and it is none of the keywords; one compare.
inline bool select_start(const char* begin, const char* end) {
  if (end - begin < 4) return false;
  std::uint32_t w;
  std::memcpy(&w, begin, 4);
  return (w | 0x20202020u) == 0x656c6573u;  // "sele", little-endian, lower-cased
}

// What a ';' or '(' at q means for the text before it.
inline bool special_hits(const char* begin, const char* q, const char* limit) {
  if (*q == ';') {
    if (q + 1 >= limit || q[1] == '\0') return false;
    // The next statement's first word, not past the NUL (a comment may look beyond it).
    const void* nul = std::memchr(q + 1, 0, static_cast<std::size_t>(limit - q - 1));
    return first_word_hits(q + 1, nul != nullptr ? static_cast<const char*>(nul) : limit);
  }
  return function_hits(begin, q);
}

}  // namespace

TextScan scan_text(const char* begin, const char* limit) {
  const char* end = limit;  // narrowed to the NUL when found
  bool hit = false;
#if defined(__SSE2__)
  // One pass, 16 bytes per step (SSE2 is baseline on x86-64): a bit per ';', '(' or NUL, each
  // handled in order. Loads stay inside [begin, limit): the last one ends at limit, overlapping
  // the one before, with the bytes already seen masked off.
  const __m128i semi = _mm_set1_epi8(';');
  const __m128i paren = _mm_set1_epi8('(');
  const __m128i zero = _mm_setzero_si128();
  auto mask_at = [&](const char* b) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, semi), _mm_cmpeq_epi8(v, paren)),
                             _mm_cmpeq_epi8(v, zero));
    return static_cast<unsigned>(_mm_movemask_epi8(m));
  };
  for (const char* base = begin; base < limit; base += 16) {
    unsigned bits;
    if (limit - base >= 16) {
      bits = mask_at(base);
    } else if (limit - begin >= 16) {
      const char* b = limit - 16;
      bits = mask_at(b) & (~0u << (base - b));
      base = b;
    } else {
      bits = 0;
      for (std::size_t k = 0; base + k < limit; ++k) {
        char c = base[k];
        if (c == ';' || c == '(' || c == '\0') bits |= 1u << k;
      }
    }
    for (; bits != 0; bits &= bits - 1) {
      const char* q = base + __builtin_ctz(bits);
      if (*q == '\0') {
        end = q;
        goto done;
      }
      if (!hit) hit = special_hits(begin, q, limit);
    }
  }
done:
#else
  for (const char* q = begin; q < limit; ++q) {
    char c = *q;
    if (c == '\0') {
      end = q;
      break;
    }
    if (!hit && (c == ';' || c == '(')) hit = special_hits(begin, q, limit);
  }
#endif
  if (!hit && !select_start(begin, end) && first_word_hits(begin, end)) hit = true;
  return TextScan{static_cast<std::size_t>(end - begin), end < limit, hit};
}

}  // namespace sluice::sql
