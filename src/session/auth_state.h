// What a client carries only while it authenticates.
#pragma once

#include <optional>
#include <string>

#include "proto/auth/md5.h"
#include "proto/auth/scram_server.h"

namespace sluice::session {

struct AuthState {
  enum class Method : std::uint8_t { Cleartext, Md5, Scram };
  Method method = Method::Cleartext;
  bool user_known = false;
  std::string stored;  // the auth file secret: plaintext, md5 hash or SCRAM secret
  proto::auth::Md5Salt salt{};
  std::optional<proto::auth::ScramServer> scram;
  bool scram_started = false;
};

}  // namespace sluice::session
