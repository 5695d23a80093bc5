// Logger: escaping of what came from the wire, and a reopen that never frees the descriptor.
#include "core/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice::core {
namespace {

std::string text(std::string_view s) {
  fmt::memory_buffer b;
  append_log_text(b, s);
  return fmt::to_string(b);
}

std::string json(std::string_view s) {
  fmt::memory_buffer b;
  append_json_string(b, s);
  return fmt::to_string(b);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-log-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(LogEscape, TextKeepsOneLineOneLine) {
  EXPECT_EQ(text("plain user"), "plain user");
  EXPECT_EQ(text("evil\n2024-01-01 00:00:00.000 UTC [1] LOG forged"),
            "evil\\n2024-01-01 00:00:00.000 UTC [1] LOG forged");
  EXPECT_EQ(text("a\rb\tc"), "a\\rb\\tc");
  EXPECT_EQ(text(std::string("nul\0byte", 8)), "nul\\x00byte");
  EXPECT_EQ(text("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
  EXPECT_EQ(text("caf\xc3\xa9 \xff"), "caf\xc3\xa9 \xff");  // other bytes are left as they are
}

TEST(LogEscape, JsonIsAlwaysValidJsonInUtf8) {
  EXPECT_EQ(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(json("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  // Not UTF-8: a lone byte, a truncated sequence, an overlong form, a surrogate.
  EXPECT_EQ(json("\xff"), "\"\\u00ff\"");
  EXPECT_EQ(json("\xc3"), "\"\\u00c3\"");
  EXPECT_EQ(json("\xc0\xaf"), "\"\\u00c0\\u00af\"");
  EXPECT_EQ(json("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");
}

TEST(LogFile, LinesFromTheWireAreEscapedInTheFile) {
  TempDir d;
  Logger l;
  l.configure({d.file("a.log"), false, 0, false});
  l.write(LogLevel::Log, "C-1: db/evil\nFAKE LOG LINE@unix login attempt");
  std::string got = slurp(d.file("a.log"));
  EXPECT_EQ(std::count(got.begin(), got.end(), '\n'), 1) << got;
  EXPECT_NE(got.find("evil\\nFAKE LOG LINE"), std::string::npos) << got;
}

// Rotation: the file is renamed, SIGHUP reopens. The descriptor number writers hold stays the
// same and now points at the new file; the old number is never free for another socket.
TEST(LogFile, ReopenKeepsTheDescriptorNumber) {
  TempDir d;
  Logger l;
  l.configure({d.file("a.log"), false, 0, false});
  int fd = l.file_descriptor();
  ASSERT_GE(fd, 0);
  l.write(LogLevel::Log, "before rotation");
  ASSERT_EQ(std::rename(d.file("a.log").c_str(), d.file("a.log.1").c_str()), 0);
  l.reopen();
  EXPECT_EQ(l.file_descriptor(), fd);
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  l.write(LogLevel::Log, "after rotation");
  std::string old_text = slurp(d.file("a.log.1"));
  std::string new_text = slurp(d.file("a.log"));
  EXPECT_NE(old_text.find("before rotation"), std::string::npos);
  EXPECT_EQ(old_text.find("after rotation"), std::string::npos);
  EXPECT_NE(new_text.find("after rotation"), std::string::npos);
  EXPECT_EQ(new_text.find("before rotation"), std::string::npos);
  // No log file any more, then one again: still the same number.
  l.configure({"", false, 0, false});
  EXPECT_EQ(l.file_descriptor(), -1);
  l.write(LogLevel::Log, "nowhere");
  l.configure({d.file("b.log"), false, 0, false});
  EXPECT_EQ(l.file_descriptor(), fd);
  l.write(LogLevel::Log, "to b");
  EXPECT_NE(slurp(d.file("b.log")).find("to b"), std::string::npos);
  EXPECT_EQ(slurp(d.file("a.log")).find("nowhere"), std::string::npos);
}

// Writers on several threads while the file is reopened and other descriptors come and go:
// no log text ever lands in a socket opened meanwhile, and no line is torn or lost.
TEST(LogFile, ReopenWhileOtherThreadsWrite) {
  TempDir d;
  Logger l;
  l.configure({d.file("a.log"), false, 0, false});
  std::atomic<bool> stop{false};
  std::atomic<int> leaked{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&l, &stop, t] {
      for (int i = 0; !stop.load(); ++i)
        l.write(LogLevel::Log, fmt::format("writer {} line {}", t, i));
    });
  }
  std::thread opener([&] {  // sockets that may get a number the logger freed
    while (!stop.load()) {
      int p[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p) != 0) continue;
      char buf[256];
      if (read(p[0], buf, sizeof buf) > 0 || read(p[1], buf, sizeof buf) > 0) leaked.fetch_add(1);
      ::close(p[0]);
      ::close(p[1]);
    }
  });
  for (int i = 0; i < 500; ++i) {
    std::rename(d.file("a.log").c_str(), d.file("a.log.old").c_str());
    l.reopen();
  }
  stop.store(true);
  for (auto& w : writers)
    w.join();
  opener.join();
  EXPECT_EQ(leaked.load(), 0);
  for (const char* f : {"a.log", "a.log.old"}) {
    std::istringstream lines(slurp(d.file(f)));
    for (std::string line; std::getline(lines, line);) {
      ASSERT_NE(line.find(" LOG writer "), std::string::npos) << f << ": " << line;
    }
  }
}

}  // namespace
}  // namespace sluice::core
