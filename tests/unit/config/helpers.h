// Shortcuts for config tests: parse text that must load, or must fail with a message.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"

namespace sluice::config::testing {

inline std::shared_ptr<Config> must_parse(std::string_view text, const std::string& dir = ".") {
  auto r = parse(text, dir);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  return r.ok() ? *r : std::make_shared<Config>();
}

inline std::string parse_error(std::string_view text, const std::string& dir = ".") {
  auto r = parse(text, dir);
  EXPECT_FALSE(r.ok()) << "expected an error for:\n" << text;
  return r.ok() ? std::string() : r.error();
}

inline bool has_warning(const Config& cfg, std::string_view needle) {
  return std::any_of(cfg.warnings.begin(), cfg.warnings.end(),
                     [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

}  // namespace sluice::config::testing
