// Logger sinks: a log file opened O_APPEND (one write per line is atomic) and stderr.
#include "core/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

namespace sluice::core {
namespace {

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Fatal:
      return "FATAL";
    case LogLevel::Error:
      return "ERROR";
    case LogLevel::Warning:
      return "WARNING";
    case LogLevel::Log:
      return "LOG";
    case LogLevel::Debug:
      return "DEBUG";
    case LogLevel::Noise:
      return "NOISE";
  }
  return "LOG";
}

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void append_json_string(fmt::memory_buffer& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace

Logger& Logger::instance() {
  static Logger logger;
  return logger;
}

void Logger::configure(const LogOptions& opts) {
  max_level_.store(static_cast<int>(LogLevel::Log) + (opts.verbose > 2 ? 2 : opts.verbose));
  to_stderr_.store(opts.to_stderr);
  json_.store(opts.json);
  if (opts.path != path_ || file_fd_.load() < 0) {
    path_ = opts.path;
    reopen();
  }
}

void Logger::reopen() {
  int fd = -1;
  if (!path_.empty()) {
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  }
  int old = file_fd_.exchange(fd);
  if (old >= 0) ::close(old);
}

void Logger::write(LogLevel level, std::string_view text) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm tmv{};
  gmtime_r(&tv.tv_sec, &tmv);
  char ts[40];
  std::size_t tl = std::strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tmv);
  fmt::memory_buffer line;
  if (json_.load(std::memory_order_relaxed)) {
    fmt::format_to(std::back_inserter(line),
                   "{{\"ts\":\"{}.{:03d}Z\",\"pid\":{},\"level\":", std::string_view(ts, tl),
                   static_cast<int>(tv.tv_usec / 1000), getpid());
    append_json_string(line, level_name(level));
    line.append(std::string_view(",\"msg\":"));
    append_json_string(line, text);
    line.append(std::string_view("}\n"));
  } else {
    fmt::format_to(std::back_inserter(line), "{}.{:03d} UTC [{}] {} {}\n", std::string_view(ts, tl),
                   static_cast<int>(tv.tv_usec / 1000), getpid(), level_name(level), text);
  }
  int fd = file_fd_.load(std::memory_order_relaxed);
  if (fd >= 0) write_all(fd, line.data(), line.size());
  if (to_stderr_.load(std::memory_order_relaxed)) write_all(2, line.data(), line.size());
}

}  // namespace sluice::core
