// A small HTTP/1.1 server on its own thread and event loop, for /metrics, /healthz, /readyz.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "net/loop.h"

namespace sluice::admin {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Request heads are read by parse_http_request (http_request.h); keep-alive as HTTP/1.1
// defines it; at most 64 connections, each closed after 30 s without a request.
class HttpServer {
 public:
  using Handler = std::function<HttpResponse(std::string_view path)>;

  explicit HttpServer(Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on every address of `addr` (comma separated, "*" = all) and starts the thread.
  // Returns an empty string, or why it could not listen.
  [[nodiscard]] std::string start(const std::string& addr, int port, int backlog);
  void stop();

 private:
  class Conn;
  class Acceptor;
  friend class Conn;
  friend class Acceptor;
  void accept_ready(int listen_fd);
  void on_tick();
  void drop(Conn* c);

  Handler handler_;
  net::EventLoop loop_;
  std::vector<int> listen_fds_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::vector<Conn*> conns_;
  std::thread thread_;
};

}  // namespace sluice::admin
