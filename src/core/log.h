// Process-wide logging: one formatted line, one write(2) per sink; lines carry a connection id.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <mutex>
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

// What a line carries may come from the wire (user and database names, application_name,
// server errors): these keep one log line one line. The text format writes control bytes
// (< 0x20, 0x7f) as \n, \r, \t or \xNN; JSON strings escape them as \uNNNN and write a byte
// that is not part of valid UTF-8 as \u00NN (its Latin-1 reading), so every line is valid JSON.
void append_log_text(fmt::memory_buffer& out, std::string_view s);
void append_json_string(fmt::memory_buffer& out, std::string_view s);

class Logger {
 public:
  static Logger& instance();
  Logger() = default;  // tests make their own; the process uses instance()
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // Opens (or reopens) sinks; safe to call again on reload.
  void configure(const LogOptions& opts);
  // Opens the log file again (SIGHUP, after rotation). Writers on other threads never see a
  // closed descriptor: the new file is put on the descriptor number the logger already owns
  // (dup3), so a line is written to the old file or the new one, never to whatever socket the
  // kernel would give a freed number.
  void reopen();
  [[nodiscard]] bool enabled(LogLevel level) const {
    return static_cast<int>(level) <= max_level_.load(std::memory_order_relaxed);
  }
  void write(LogLevel level, std::string_view text);
  // The descriptor lines go to (-1: no file); for tests.
  [[nodiscard]] int file_descriptor() const { return file_fd_.load(); }

 private:
  void reopen_locked();

  std::atomic<int> max_level_{static_cast<int>(LogLevel::Log)};
  std::atomic<int> file_fd_{-1};  // what writers use: slot_ or -1
  std::atomic<bool> to_stderr_{true};
  std::atomic<bool> json_{false};
  std::mutex mu_;  // configure and reopen (the signal thread, a console SET)
  std::string path_;
  int slot_ = -1;  // the descriptor number owned for the log file, once opened; never closed
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
