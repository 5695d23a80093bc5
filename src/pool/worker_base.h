// What the pool layer needs of a worker thread: its loop, buffers, config view and servers.
#pragma once

#include <cstdint>

#include "config/config.h"
#include "core/buffer.h"
#include "core/intrusive_list.h"
#include "net/loop.h"
#include "net/resolver.h"

namespace sluice::pool {

class ServerConn;
class PoolManager;
struct Registries;
struct WorkerServersTag;

class WorkerBase {
 public:
  // `registries` outlives the worker (the app's, or a test's own).
  WorkerBase(int id, std::uint32_t block_size, Registries& registries)
      : id_(id), buffers_(block_size), registries_(registries) {}
  virtual ~WorkerBase() = default;
  WorkerBase(const WorkerBase&) = delete;
  WorkerBase& operator=(const WorkerBase&) = delete;

  [[nodiscard]] int id() const { return id_; }
  [[nodiscard]] net::EventLoop& loop() { return loop_; }
  [[nodiscard]] core::BufferPool& buffers() { return buffers_; }
  [[nodiscard]] const config::Config& cfg() const { return *cfg_; }
  [[nodiscard]] const config::ConfigPtr& cfg_ptr() const { return cfg_; }
  void set_cfg(config::ConfigPtr c) { cfg_ = std::move(c); }
  // The process's shared tables (TLS contexts, parameter names, prepared statements, learned
  // secrets): one load from the worker, no static to look up.
  [[nodiscard]] Registries& registries() const { return registries_; }

  PoolManager* pools = nullptr;  // the process-wide pool manager
  // Server host names are looked up here (null in tests without one: then a blocking lookup).
  net::Resolver* resolver = nullptr;

  // Every server connection this worker's loop drives, whatever its state.
  core::IntrusiveList<ServerConn, WorkerServersTag> servers;

 private:
  int id_;
  net::EventLoop loop_;
  core::BufferPool buffers_;
  config::ConfigPtr cfg_;
  Registries& registries_;
};

}  // namespace sluice::pool
