// Process commands: SET, RELOAD, SHUTDOWN [WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS].
#include "admin/command.h"
#include "admin/console.h"
#include "core/log.h"

namespace sluice::admin {

Status Console::cmd_set(Request& r, std::string_view args) {
  std::string_view rest = args;
  std::string name = lower(name_of(next_word(rest)));
  std::string_view op = next_word(rest);
  if (name.empty() || (op != "=" && !iequals(op, "TO")) || rest.empty()) {
    write_error(r.out, "invalid command 'SET " + std::string(args) + "', use SHOW HELP;");
    return Status::Error;
  }
  std::string value = unquote(rest);
  core::log(core::LogLevel::Log, "SET {} = {}", name, value);
  std::string err = control_.set_setting(name, value);
  if (!err.empty()) {
    write_error(r.out, err);
    return Status::Error;
  }
  write_complete(r.out, "SET");
  return Status::Ok;
}

Status Console::cmd_reload(Request& r, std::string_view args) {
  if (!trim(args).empty()) {
    write_error(r.out, "invalid command 'RELOAD " + std::string(args) + "', use SHOW HELP;");
    return Status::Error;
  }
  core::log(core::LogLevel::Log, "RELOAD command issued");
  std::string err = control_.reload();
  if (!err.empty()) {
    write_error(r.out, "RELOAD failed, see logs for additional details", "F0000");
    return Status::Error;
  }
  write_complete(r.out, "RELOAD");
  return Status::Ok;
}

Status Console::cmd_shutdown(Request& r, std::string_view args) {
  std::string_view rest = args;
  std::string_view how = next_word(rest);
  Control::Shutdown mode = Control::Shutdown::Immediate;
  if (iequals(how, "WAIT_FOR_SERVERS")) {
    mode = Control::Shutdown::WaitForServers;
  } else if (iequals(how, "WAIT_FOR_CLIENTS")) {
    mode = Control::Shutdown::WaitForClients;
  } else if (!how.empty()) {
    write_error(r.out, "invalid command 'SHUTDOWN " + std::string(args) + "', use SHOW HELP;");
    return Status::Error;
  }
  if (!rest.empty()) {
    write_error(r.out, "invalid command 'SHUTDOWN " + std::string(args) + "', use SHOW HELP;");
    return Status::Error;
  }
  core::log(core::LogLevel::Log, "SHUTDOWN{}{} command issued", how.empty() ? "" : " ",
            std::string(how));
  write_complete(r.out, "SHUTDOWN");
  control_.shutdown(mode);
  return Status::Ok;
}

}  // namespace sluice::admin
