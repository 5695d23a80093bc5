// Logger sinks: a log file opened O_APPEND (one write per line is atomic) and stderr.
#include "core/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
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

// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlongs, no surrogates).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  std::size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  }
  return n;
}

}  // namespace

void append_log_text(fmt::memory_buffer& out, std::string_view s) {
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7f) continue;
    out.append(s.substr(run, i - run));
    run = i + 1;
    switch (c) {
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
        fmt::format_to(std::back_inserter(out), "\\x{:02x}", static_cast<unsigned>(c));
    }
  }
  out.append(s.substr(run));
}

void append_json_string(fmt::memory_buffer& out, std::string_view s) {
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t n = utf8_sequence(s, i);
      if (n > 0) {
        out.append(s.substr(i, n));
        i += n;
      } else {  // not UTF-8: the byte as its Latin-1 code point
        fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        ++i;
      }
      continue;
    }
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
        if (c < 0x20 || c == 0x7f) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

Logger& Logger::instance() {
  // Never destroyed: threads may log until the process ends.
  static Logger* logger = new Logger;
  return *logger;
}

Logger::~Logger() {
  if (slot_ >= 0) ::close(slot_);
}

void Logger::configure(const LogOptions& opts) {
  max_level_.store(static_cast<int>(LogLevel::Log) + (opts.verbose > 2 ? 2 : opts.verbose));
  to_stderr_.store(opts.to_stderr);
  json_.store(opts.json);
  std::lock_guard<std::mutex> g(mu_);
  if (opts.path != path_ || file_fd_.load() < 0) {
    path_ = opts.path;
    reopen_locked();
  }
}

void Logger::reopen() {
  std::lock_guard<std::mutex> g(mu_);
  reopen_locked();
}

void Logger::reopen_locked() {
  if (path_.empty()) {
    // No file any more: writers stop using the slot; one that already loaded it writes to
    // /dev/null. The number stays ours for a later file.
    file_fd_.store(-1);
    if (slot_ >= 0) {
      int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (null_fd >= 0) {
        (void)::dup3(null_fd, slot_, O_CLOEXEC);
        ::close(null_fd);
      }
    }
    return;
  }
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    int e = errno;
    fmt::memory_buffer msg;
    fmt::format_to(std::back_inserter(msg), "cannot open log file {}: {}\n", path_,
                   std::strerror(e));
    write_all(2, msg.data(), msg.size());
    return;  // the previous file, if any, stays in use
  }
  if (slot_ < 0) {
    slot_ = fd;
  } else {
    // Atomically replaces the open file behind the number writers hold.
    if (::dup3(fd, slot_, O_CLOEXEC) < 0) {
      ::close(fd);
      return;
    }
    ::close(fd);
  }
  file_fd_.store(slot_);
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
    fmt::format_to(std::back_inserter(line), "{}.{:03d} UTC [{}] {} ", std::string_view(ts, tl),
                   static_cast<int>(tv.tv_usec / 1000), getpid(), level_name(level));
    append_log_text(line, text);
    line.push_back('\n');
  }
  int fd = file_fd_.load(std::memory_order_relaxed);
  if (fd >= 0) write_all(fd, line.data(), line.size());
  if (to_stderr_.load(std::memory_order_relaxed)) write_all(2, line.data(), line.size());
}

}  // namespace sluice::core
