// HttpServer: responses written without blocking, one thread; heads read by http_request.h.
//
// It runs on a thread of its own rather than on a worker loop: a scrape renders every pool
// under the pool manager's lock and /readyz may wait up to 500 ms for a connect probe; neither
// may delay a worker's clients, and a stuck worker must not stop /healthz from saying so.
#include "admin/http_server.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "admin/command.h"
#include "admin/http_request.h"
#include "core/log.h"
#include "net/socket.h"

namespace sluice::admin {
namespace {

constexpr std::size_t kMaxConns = 64;
constexpr core::Micros kIdleTimeout = 30 * core::kMicrosPerSecond;

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

}  // namespace

class HttpServer::Acceptor final : public net::Pollable {
 public:
  Acceptor(HttpServer& s, int fd) : s_(s), fd_(fd) {}
  void on_io(std::uint32_t) override { s_.accept_ready(fd_); }

 private:
  HttpServer& s_;
  int fd_;
};

class HttpServer::Conn final : public net::Pollable, public net::Retirable {
 public:
  Conn(HttpServer& s, int fd) : s_(s), fd_(fd), last_(s.loop_.now()) {}
  ~Conn() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void on_io(std::uint32_t events) override {
    if (closed_) return;
    if ((events & EPOLLOUT) != 0 && !out_.empty() && !flush()) return;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 && !read()) return;
    serve();
  }

  [[nodiscard]] core::Micros last_active() const { return last_; }

  void close() {
    if (closed_) return;
    closed_ = true;
    s_.loop_.remove(fd_);
    ::close(fd_);
    fd_ = -1;
    s_.drop(this);
  }

 private:
  // Reads until the socket is drained; false if the connection ended.
  bool read() {
    char buf[4096];
    for (;;) {
      auto r = net::recv_some(fd_, buf, sizeof buf);
      if (r.kind == net::IoResult::Kind::Data && r.n > 0) {
        in_.append(buf, r.n);
        last_ = s_.loop_.now();
        if (in_.size() > 4 * kMaxHttpHead) break;  // parse() refuses it below
        if (r.n < sizeof buf) return true;
        continue;
      }
      if (r.kind == net::IoResult::Kind::WouldBlock) return true;
      close();  // EOF or error: a half-closed peer gets no more answers
      return false;
    }
    return true;
  }

  // Answers complete requests in order while nothing is waiting to be written.
  void serve() {
    while (!closed_ && out_.empty() && !close_after_write_) {
      HttpRequest req;
      int error = 0;
      long used = parse_http_request(in_, req, error);
      if (used == 0) return;
      if (used < 0) {
        respond({error, "text/plain; charset=utf-8", std::string(reason(error)) + "\n"}, false,
                false);
        return;
      }
      in_.erase(0, static_cast<std::size_t>(used));
      respond(s_.handler_(req.path), req.keep_alive, req.method == "HEAD");
    }
  }

  void respond(const HttpResponse& r, bool keep_alive, bool head_only) {
    out_ = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}"
        "Cache-Control: no-store\r\nConnection: {}\r\n\r\n",
        r.status, reason(r.status), r.content_type, r.body.size(),
        r.status == 405 ? "Allow: GET, HEAD\r\n" : "", keep_alive ? "keep-alive" : "close");
    if (!head_only) out_ += r.body;
    close_after_write_ = !keep_alive;
    (void)flush();
  }

  // Writes what the socket takes; false if the connection was closed.
  bool flush() {
    while (!out_.empty()) {
      auto r = net::send_some(fd_, out_.data(), out_.size());
      if (r.kind == net::IoResult::Kind::WouldBlock) return true;
      if (r.kind != net::IoResult::Kind::Data) {
        close();
        return false;
      }
      out_.erase(0, r.n);
    }
    if (close_after_write_) {
      ::shutdown(fd_, SHUT_WR);
      close();
      return false;
    }
    return true;
  }

  HttpServer& s_;
  int fd_;
  core::Micros last_;
  std::string in_;
  std::string out_;
  bool close_after_write_ = false;
  bool closed_ = false;
};

HttpServer::HttpServer(Handler handler) : handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  stop();
}

std::string HttpServer::start(const std::string& addr, int port, int backlog) {
  auto r = net::listen_tcp(net::ListenSpec{addr, port, backlog, false});
  if (!r) return r.error();
  listen_fds_ = r.value();
  for (int fd : listen_fds_) {
    acceptors_.push_back(std::make_unique<Acceptor>(*this, fd));
    if (!loop_.add(fd, acceptors_.back().get(), EPOLLIN)) return "cannot register listener";
  }
  loop_.set_tick(core::kMicrosPerSecond, [this] { on_tick(); });
  thread_ = std::thread([this] { loop_.run(); });
  return {};
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  loop_.post([this] {
    for (Conn* c : std::vector<Conn*>(conns_))
      c->close();
  });
  loop_.stop();
  thread_.join();
  for (int fd : listen_fds_)
    ::close(fd);
  listen_fds_.clear();
}

void HttpServer::accept_ready(int listen_fd) {
  for (int i = 0; i < 16; ++i) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (conns_.size() >= kMaxConns) {
      ::close(fd);
      continue;
    }
    auto* c = new Conn(*this, fd);
    if (!loop_.add(fd, c)) {
      delete c;
      continue;
    }
    conns_.push_back(c);
  }
}

void HttpServer::drop(Conn* c) {
  conns_.erase(std::remove(conns_.begin(), conns_.end(), c), conns_.end());
  loop_.retire(c);
}

void HttpServer::on_tick() {
  core::Micros now = loop_.now();
  for (Conn* c : std::vector<Conn*>(conns_)) {
    if (now - c->last_active() >= kIdleTimeout) c->close();
  }
}

}  // namespace sluice::admin
