// The tables every worker shares: owned by the app, reached through a worker (WorkerBase).
#pragma once

#include "net/tls.h"
#include "pool/learned_secrets.h"
#include "pool/params.h"
#include "pool/prepared.h"

namespace sluice::pool {

// One per process in sluice, one per test where a test needs them: nothing here is a static, so
// two instances never share state. Each member is thread-safe on its own.
struct Registries {
  Registries() = default;
  Registries(const Registries&) = delete;
  Registries& operator=(const Registries&) = delete;

  net::TlsStore tls;          // the TLS contexts new handshakes use (both sides)
  ParamRegistry params;       // tracked ParameterStatus names
  PreparedRegistry prepared;  // named prepared statements (max_prepared_statements)
  LearnedSecrets learned;     // secrets auth_query found, for server logins
};

}  // namespace sluice::pool
