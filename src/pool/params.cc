// The registry of tracked parameter names, and quote_literal.
#include "pool/params.h"

#include <strings.h>

namespace sluice::pool {

ParamRegistry::ParamRegistry() {
  const char* builtin[] = {"client_encoding", "DateStyle", "TimeZone",
                           "standard_conforming_strings", "application_name"};
  int n = 0;
  for (const char* b : builtin)
    names_[n++] = b;
  count_.store(n);
}

void ParamRegistry::configure(const std::vector<std::string>& extra) {
  std::lock_guard<std::mutex> g(mu_);
  int n = count_.load();
  for (const auto& e : extra) {
    if (slot(e) >= 0 || n >= kMaxSlots) continue;
    names_[n] = e;
    ++n;
    count_.store(n, std::memory_order_release);
  }
}

int ParamRegistry::slot(std::string_view name) const {
  int n = count_.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    if (names_[i].size() == name.size() &&
        strncasecmp(names_[i].data(), name.data(), name.size()) == 0) {
      return i;
    }
  }
  return -1;
}

std::string quote_literal(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 2);
  bool backslash = v.find('\\') != std::string_view::npos;
  if (backslash) out.push_back('E');
  out.push_back('\'');
  for (char c : v) {
    if (c == '\'') out.push_back('\'');
    if (c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

}  // namespace sluice::pool
