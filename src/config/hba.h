// pg_hba.conf-style access rules (auth_hba_file) and user name maps (auth_ident_file).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace sluice::config {

enum class HbaMethod : std::uint8_t { Trust, Reject, Password, Md5, ScramSha256, Cert, Peer };
[[nodiscard]] std::string_view to_string(HbaMethod m);

// One line of the file. Lists hold names as written (quotes removed); keywords are flags.
struct HbaRule {
  enum class Type : std::uint8_t { Local, Host, HostSsl, HostNoSsl };
  int line = 0;
  Type type = Type::Local;
  std::vector<std::string> databases;
  bool db_all = false;
  bool db_sameuser = false;
  bool db_replication = false;
  std::vector<std::string> users;
  bool user_all = false;
  // Address (host* rules): all, or family + address + mask. `addr_never` marks forms sluice
  // does not support (host names, samehost, samenet): such a rule never matches.
  bool addr_all = false;
  bool addr_never = false;
  int family = 0;  // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> addr{};
  std::array<std::uint8_t, 16> mask{};
  HbaMethod method = HbaMethod::Reject;
  std::string map;  // map= option: user name map for cert and peer
};

// Who is connecting, as far as the rules care.
struct HbaClient {
  bool unix_socket = false;
  bool tls = false;
  const sockaddr_storage* addr = nullptr;  // TCP peer; null for unix sockets
  std::string_view database;
  std::string_view user;
  bool replication = false;
};

class HbaRules {
 public:
  // Reads `text`; `load_list(name)` returns the text of an "@name" list file. Lines that cannot
  // be parsed leave the rules "broken": every login is then refused (fail closed) and
  // `problems` say why; unsupported but harmless forms only add to `problems`.
  static HbaRules parse(
      std::string_view text, std::string_view file_name,
      const std::function<core::Result<std::string>(std::string_view)>& load_list);
  // A rule set that refuses everybody (the file could not be read).
  static HbaRules refuse_all(std::string problem);

  // The first rule that matches, or null (no entry: refused).
  [[nodiscard]] const HbaRule* match(const HbaClient& c) const;
  [[nodiscard]] bool broken() const { return broken_; }
  [[nodiscard]] const std::vector<std::string>& problems() const { return problems_; }
  [[nodiscard]] const std::vector<HbaRule>& rules() const { return rules_; }
  [[nodiscard]] const std::string& file_name() const { return file_; }

 private:
  std::vector<HbaRule> rules_;
  std::vector<std::string> problems_;
  std::string file_;
  bool broken_ = false;
};

// auth_ident_file: "map-name system-user database-user" lines; database-user may be "all".
class IdentMap {
 public:
  static IdentMap parse(std::string_view text, std::vector<std::string>& problems);
  // Whether map `map` lets system (certificate or OS) user `system_user` log in as `user`.
  [[nodiscard]] bool allows(std::string_view map, std::string_view system_user,
                            std::string_view user) const;
  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string map;
    std::string system_user;
    std::string user;
    bool user_all = false;
  };
  std::vector<Entry> entries_;
};

// Splits one rule line into fields, each a list of tokens; `quoted` says which tokens were in
// double quotes (and so are never keywords). Exposed for tests.
struct HbaToken {
  std::string text;
  bool quoted = false;
};
[[nodiscard]] core::Result<std::vector<std::vector<HbaToken>>> split_hba_line(
    std::string_view line);

}  // namespace sluice::config
