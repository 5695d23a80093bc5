// The admin console: the virtual database `pgbouncer` (alias `sluice`) and its commands.
#pragma once

#include <string>
#include <string_view>

#include "admin/control.h"
#include "session/client.h"
#include "session/session_worker.h"

namespace sluice::admin {

[[nodiscard]] std::string version_string();

class Console final : public session::AdminHandler {
 public:
  Console(session::Shared& shared, Control& control) : shared_(shared), control_(control) {}
  bool handle_query(session::Client& c, std::string_view sql, std::string& out) override;
  [[nodiscard]] std::string version() const override { return version_string(); }

 private:
  void run_one(session::Client& c, std::string_view stmt, std::string& out);
  void show(session::Client& c, std::string_view what, std::string& out);

  session::Shared& shared_;
  Control& control_;
};

}  // namespace sluice::admin
