// Process-wide logging: one formatted line, one write(2) per sink; lines carry a connection id.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <string>
#include <string_view>

namespace sluice::core {

enum class LogLevel : int { Fatal = 0, Error = 1, Warning = 2, Log = 3, Debug = 4, Noise = 5 };

struct LogOptions {
  std::string path;       // logfile; empty = none
  bool to_stderr = true;  // false with -q / daemonized
  int verbose = 0;        // 0: LOG and up, 1: DEBUG, 2: NOISE
  bool json = false;      // one JSON object per line
};

class Logger {
 public:
  static Logger& instance();

  // Opens (or reopens) sinks; safe to call again on reload.
  void configure(const LogOptions& opts);
  void reopen();
  [[nodiscard]] bool enabled(LogLevel level) const {
    return static_cast<int>(level) <= max_level_.load(std::memory_order_relaxed);
  }
  void write(LogLevel level, std::string_view text);

 private:
  Logger() = default;
  std::atomic<int> max_level_{static_cast<int>(LogLevel::Log)};
  std::atomic<int> file_fd_{-1};
  std::atomic<bool> to_stderr_{true};
  std::atomic<bool> json_{false};
  std::string path_;
};

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  Logger& l = Logger::instance();
  if (!l.enabled(level)) return;
  fmt::memory_buffer buf;
  fmt::format_to(std::back_inserter(buf), f, std::forward<Args>(args)...);
  l.write(level, std::string_view(buf.data(), buf.size()));
}

#define SLUICE_LOG(...) ::sluice::core::log(::sluice::core::LogLevel::Log, __VA_ARGS__)
#define SLUICE_WARN(...) ::sluice::core::log(::sluice::core::LogLevel::Warning, __VA_ARGS__)
#define SLUICE_ERROR(...) ::sluice::core::log(::sluice::core::LogLevel::Error, __VA_ARGS__)
#define SLUICE_DEBUG(...)                                                            \
  do {                                                                               \
    if (::sluice::core::Logger::instance().enabled(::sluice::core::LogLevel::Debug)) \
      ::sluice::core::log(::sluice::core::LogLevel::Debug, __VA_ARGS__);             \
  } while (0)
#define SLUICE_NOISE(...)                                                            \
  do {                                                                               \
    if (::sluice::core::Logger::instance().enabled(::sluice::core::LogLevel::Noise)) \
      ::sluice::core::log(::sluice::core::LogLevel::Noise, __VA_ARGS__);             \
  } while (0)

}  // namespace sluice::core
