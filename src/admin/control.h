// What the console may ask of the process: reload, change a setting, shut down.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"

namespace sluice::admin {

class Control {
 public:
  virtual ~Control() = default;
  // Re-reads the configuration file; empty on success, else why it was kept.
  virtual std::string reload() = 0;
  // SET name = value at run time; empty on success, else the error.
  virtual std::string set_setting(std::string_view name, std::string_view value) = 0;
  enum class Shutdown { Immediate, WaitForServers, WaitForClients };
  virtual void shutdown(Shutdown how) = 0;
  [[nodiscard]] virtual config::ConfigPtr config() const = 0;
};

}  // namespace sluice::admin
