// The TLS contexts new handshakes use, rebuilt from the configuration whenever one is installed.
#pragma once

#include "config/config.h"
#include "net/tls.h"

namespace sluice::session {

// Rebuilds the client-facing and server-facing contexts in `store` (the app's) from cfg's
// *_tls_* settings (files are read again, so a RELOAD picks up renewed certificates). A side
// whose new settings fail keeps the context it had, and the reason is logged; connections
// already open are not touched.
void install_tls(const config::Config& cfg, net::TlsStore& store);

}  // namespace sluice::session
