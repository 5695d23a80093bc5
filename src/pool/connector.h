// The seam through which pools open server connections (tests substitute a fake).
#pragma once

#include <memory>

namespace sluice::pool {

class Pool;
class WorkerBase;
struct ConnectTarget;

class Connector {
 public:
  virtual ~Connector() = default;
  // Opens a new server connection for `p`, driven by worker `w`, on w's thread. Success ends in
  // PoolManager::server_ready, failure in connect_failed and server_closed.
  virtual void open(Pool& p, std::shared_ptr<const ConnectTarget> target, WorkerBase& w) = 0;
};

// Real connections to Postgres (ServerConn::start).
class PostgresConnector final : public Connector {
 public:
  void open(Pool& p, std::shared_ptr<const ConnectTarget> target, WorkerBase& w) override;
};

}  // namespace sluice::pool
