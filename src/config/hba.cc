// auth_hba_file rules: tokenizer, line parser (fail closed), first-match evaluation; ident maps.
#include "config/hba.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace sluice::config {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v';
}

bool one_of(std::string_view v, std::initializer_list<std::string_view> names) {
  for (auto n : names) {
    if (v == n) return true;
  }
  return false;
}

// Parses an IPv4 or IPv6 address text into family + 16 bytes (IPv4 in the first 4).
bool parse_ip(const std::string& text, int& family, std::array<std::uint8_t, 16>& out) {
  out.fill(0);
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    family = AF_INET;
    std::memcpy(out.data(), &a4, 4);
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    family = AF_INET6;
    std::memcpy(out.data(), &a6, 16);
    return true;
  }
  return false;
}

bool prefix_mask(int family, int bits, std::array<std::uint8_t, 16>& mask) {
  int max = family == AF_INET ? 32 : 128;
  if (bits < 0 || bits > max) return false;
  mask.fill(0);
  for (int i = 0; i < bits; ++i)
    mask[static_cast<std::size_t>(i / 8)] |= 0x80u >> (i % 8);
  return true;
}

struct LineParser {
  int line;
  const std::function<core::Result<std::string>(std::string_view)>& load_list;
  std::vector<std::string>& problems;
  std::string where;

  void note(const std::string& what) { problems.push_back(where + what); }

  // A database or user list: keywords, names, @file lists. False on a malformed @file.
  bool expand(const std::vector<HbaToken>& field, std::vector<HbaToken>& out, int depth) {
    for (const HbaToken& t : field) {
      if (!t.quoted && t.text.size() > 1 && t.text[0] == '@') {
        if (depth > 3) {
          note("@ lists nest too deeply");
          return false;
        }
        auto text = load_list(std::string_view(t.text).substr(1));
        if (!text) {
          note("cannot read " + t.text + ": " + text.error());
          return false;
        }
        std::string_view rest = *text;
        while (!rest.empty()) {
          auto nl = rest.find('\n');
          auto one = rest.substr(0, nl);
          auto fields = split_hba_line(one);
          if (!fields) {
            note(t.text + ": " + fields.error());
            return false;
          }
          for (const auto& f : *fields) {
            if (!expand(f, out, depth + 1)) return false;
          }
          if (nl == std::string_view::npos) break;
          rest.remove_prefix(nl + 1);
        }
        continue;
      }
      out.push_back(t);
    }
    return true;
  }

  // Fills `r` from the fields; false: the line is malformed.
  bool parse(const std::vector<std::vector<HbaToken>>& f, HbaRule& r) {
    auto single = [&](std::size_t i, const char* what) -> const HbaToken* {
      if (i >= f.size()) {
        note(std::string("missing ") + what);
        return nullptr;
      }
      if (f[i].size() != 1) {
        note(std::string("a list is not allowed as ") + what);
        return nullptr;
      }
      return &f[i][0];
    };
    const HbaToken* type = single(0, "connection type");
    if (type == nullptr) return false;
    if (type->text == "local") {
      r.type = HbaRule::Type::Local;
    } else if (type->text == "host") {
      r.type = HbaRule::Type::Host;
    } else if (type->text == "hostssl") {
      r.type = HbaRule::Type::HostSsl;
    } else if (type->text == "hostnossl") {
      r.type = HbaRule::Type::HostNoSsl;
    } else {
      note("unsupported connection type \"" + type->text + "\"");
      return false;
    }
    if (f.size() < 2) {
      note("missing database");
      return false;
    }
    std::vector<HbaToken> dbs;
    if (!expand(f[1], dbs, 0)) return false;
    for (const HbaToken& t : dbs) {
      if (!t.quoted && t.text == "all") {
        r.db_all = true;
      } else if (!t.quoted && t.text == "sameuser") {
        r.db_sameuser = true;
      } else if (!t.quoted && t.text == "replication") {
        r.db_replication = true;
      } else if (!t.quoted && one_of(t.text, {"samerole", "samegroup"})) {
        note("database keyword " + t.text + " is not supported; it matches nothing");
      } else {
        r.databases.push_back(t.text);
      }
    }
    if (f.size() < 3) {
      note("missing user name");
      return false;
    }
    std::vector<HbaToken> users;
    if (!expand(f[2], users, 0)) return false;
    for (const HbaToken& t : users) {
      if (!t.quoted && t.text == "all") {
        r.user_all = true;
      } else if (!t.quoted && !t.text.empty() && t.text[0] == '+') {
        note("group membership (" + t.text + ") is not supported; it matches nothing");
      } else {
        r.users.push_back(t.text);
      }
    }
    std::size_t next = 3;
    if (r.type != HbaRule::Type::Local) {
      const HbaToken* a = single(3, "address");
      if (a == nullptr) return false;
      next = 4;
      std::string text = a->text;
      if (!a->quoted && text == "all") {
        r.addr_all = true;
      } else if (!a->quoted && one_of(text, {"samehost", "samenet"})) {
        note(text + " is not supported; the rule matches no address");
        r.addr_never = true;
      } else if (auto slash = text.find('/'); slash != std::string::npos) {
        int bits = -1;
        std::string_view b = std::string_view(text).substr(slash + 1);
        if (!b.empty() && b.size() <= 3 && b.find_first_not_of("0123456789") == b.npos) {
          bits = std::stoi(std::string(b));
        }
        if (!parse_ip(text.substr(0, slash), r.family, r.addr) ||
            !prefix_mask(r.family, bits, r.mask)) {
          note("invalid address \"" + text + "\"");
          return false;
        }
      } else if (parse_ip(text, r.family, r.addr)) {
        const HbaToken* m = single(4, "address mask");
        if (m == nullptr) return false;
        next = 5;
        int mf = 0;
        if (!parse_ip(m->text, mf, r.mask) || mf != r.family) {
          note("invalid address mask \"" + m->text + "\"");
          return false;
        }
      } else {
        note("host names (\"" + text + "\") are not supported; the rule matches no address");
        r.addr_never = true;
      }
      for (std::size_t i = 0; i < 16; ++i)
        r.addr[i] &= r.mask[i];
    }
    const HbaToken* m = single(next, "authentication method");
    if (m == nullptr) return false;
    const std::string& method = m->text;
    if (method == "trust") {
      r.method = HbaMethod::Trust;
    } else if (method == "reject") {
      r.method = HbaMethod::Reject;
    } else if (method == "password") {
      r.method = HbaMethod::Password;
    } else if (method == "md5") {
      r.method = HbaMethod::Md5;
    } else if (method == "scram-sha-256") {
      r.method = HbaMethod::ScramSha256;
    } else if (method == "cert") {
      r.method = HbaMethod::Cert;
    } else if (method == "peer") {
      r.method = HbaMethod::Peer;
      if (r.type != HbaRule::Type::Local) {
        note("peer works only on local lines; the rule refuses");
        r.method = HbaMethod::Reject;
      }
    } else {
      note("unsupported method \"" + method + "\"; the rule refuses");
      r.method = HbaMethod::Reject;
    }
    for (std::size_t i = next + 1; i < f.size(); ++i) {
      for (const HbaToken& opt : f[i]) {
        auto eq = opt.text.find('=');
        if (eq != std::string::npos && opt.text.substr(0, eq) == "map") {
          r.map = opt.text.substr(eq + 1);
        } else {
          note("option \"" + opt.text + "\" ignored");
        }
      }
    }
    return true;
  }
};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  for (const auto& x : v) {
    if (x == s) return true;
  }
  return false;
}

}  // namespace

std::string_view to_string(HbaMethod m) {
  switch (m) {
    case HbaMethod::Trust:
      return "trust";
    case HbaMethod::Reject:
      return "reject";
    case HbaMethod::Password:
      return "password";
    case HbaMethod::Md5:
      return "md5";
    case HbaMethod::ScramSha256:
      return "scram-sha-256";
    case HbaMethod::Cert:
      return "cert";
    case HbaMethod::Peer:
      return "peer";
  }
  return "?";
}

core::Result<std::vector<std::vector<HbaToken>>> split_hba_line(std::string_view line) {
  std::vector<std::vector<HbaToken>> fields;
  std::size_t i = 0;
  const std::size_t n = line.size();
  auto skip_space = [&] {
    while (i < n && is_space(line[i]))
      ++i;
  };
  for (;;) {
    skip_space();
    if (i >= n || line[i] == '#') break;
    std::vector<HbaToken> field;
    for (;;) {
      HbaToken tok;
      bool in_quotes = false;
      while (i < n) {
        char c = line[i];
        if (in_quotes) {
          if (c == '"') {
            if (i + 1 < n && line[i + 1] == '"') {
              tok.text.push_back('"');
              i += 2;
              continue;
            }
            in_quotes = false;
            ++i;
            continue;
          }
          tok.text.push_back(c);
          ++i;
          continue;
        }
        if (is_space(c) || c == ',' || c == '#') break;
        if (c == '"') {
          in_quotes = true;
          tok.quoted = true;
          ++i;
          continue;
        }
        tok.text.push_back(c);
        ++i;
      }
      if (in_quotes) return core::Error{"unterminated quote"};
      if (tok.text.empty() && !tok.quoted) return core::Error{"empty list element"};
      field.push_back(std::move(tok));
      skip_space();
      if (i < n && line[i] == ',') {
        ++i;
        skip_space();
        if (i >= n || line[i] == '#') return core::Error{"list ends with a comma"};
        continue;
      }
      break;
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

HbaRules HbaRules::parse(
    std::string_view text, std::string_view file_name,
    const std::function<core::Result<std::string>(std::string_view)>& load_list) {
  HbaRules out;
  out.file_ = std::string(file_name);
  int line_no = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    ++line_no;
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    std::string where = out.file_ + ":" + std::to_string(line_no) + ": ";
    auto fields = split_hba_line(line);
    if (!fields) {
      out.problems_.push_back(where + fields.error());
      out.broken_ = true;
      continue;
    }
    if (fields->empty()) continue;
    LineParser p{line_no, load_list, out.problems_, where};
    HbaRule r;
    r.line = line_no;
    if (!p.parse(*fields, r)) {
      out.broken_ = true;
      continue;
    }
    out.rules_.push_back(std::move(r));
  }
  if (out.broken_)
    out.problems_.push_back(out.file_ + ": errors in the file: every login is refused");
  return out;
}

HbaRules HbaRules::refuse_all(std::string problem) {
  HbaRules out;
  out.broken_ = true;
  out.problems_.push_back(std::move(problem));
  return out;
}

const HbaRule* HbaRules::match(const HbaClient& c) const {
  if (broken_) return nullptr;
  int family = 0;
  std::array<std::uint8_t, 16> addr{};
  if (!c.unix_socket && c.addr != nullptr) {
    if (c.addr->ss_family == AF_INET) {
      family = AF_INET;
      std::memcpy(addr.data(), &reinterpret_cast<const sockaddr_in*>(c.addr)->sin_addr, 4);
    } else if (c.addr->ss_family == AF_INET6) {
      const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(c.addr)->sin6_addr;
      if (IN6_IS_ADDR_V4MAPPED(a6)) {
        family = AF_INET;
        std::memcpy(addr.data(), a6->s6_addr + 12, 4);
      } else {
        family = AF_INET6;
        std::memcpy(addr.data(), a6->s6_addr, 16);
      }
    }
  }
  for (const HbaRule& r : rules_) {
    switch (r.type) {
      case HbaRule::Type::Local:
        if (!c.unix_socket) continue;
        break;
      case HbaRule::Type::Host:
        if (c.unix_socket) continue;
        break;
      case HbaRule::Type::HostSsl:
        if (c.unix_socket || !c.tls) continue;
        break;
      case HbaRule::Type::HostNoSsl:
        if (c.unix_socket || c.tls) continue;
        break;
    }
    bool db_ok = c.replication ? r.db_replication
                               : (r.db_all || (r.db_sameuser && c.database == c.user) ||
                                  contains(r.databases, c.database));
    if (!db_ok) continue;
    if (!r.user_all && !contains(r.users, c.user)) continue;
    if (r.type != HbaRule::Type::Local && !r.addr_all) {
      if (r.addr_never || family == 0 || family != r.family) continue;
      bool same = true;
      for (std::size_t i = 0; i < 16 && same; ++i)
        same = (addr[i] & r.mask[i]) == r.addr[i];
      if (!same) continue;
    }
    return &r;
  }
  return nullptr;
}

IdentMap IdentMap::parse(std::string_view text, std::vector<std::string>& problems) {
  IdentMap out;
  int line_no = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    ++line_no;
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    auto fields = split_hba_line(line);
    if (!fields) {
      problems.push_back("line " + std::to_string(line_no) + ": " + fields.error());
      continue;
    }
    if (fields->empty()) continue;
    if (fields->size() != 3 || (*fields)[0].size() != 1 || (*fields)[1].size() != 1 ||
        (*fields)[2].size() != 1) {
      problems.push_back("line " + std::to_string(line_no) +
                         ": expected \"map system-user database-user\"; line ignored");
      continue;
    }
    const HbaToken& sys = (*fields)[1][0];
    if (!sys.quoted && !sys.text.empty() && sys.text[0] == '/') {
      problems.push_back("line " + std::to_string(line_no) +
                         ": regular expressions are not supported; line ignored");
      continue;
    }
    const HbaToken& user = (*fields)[2][0];
    Entry e;
    e.map = (*fields)[0][0].text;
    e.system_user = sys.text;
    e.user_all = !user.quoted && user.text == "all";
    e.user = user.text;
    out.entries_.push_back(std::move(e));
  }
  return out;
}

bool IdentMap::allows(std::string_view map, std::string_view system_user,
                      std::string_view user) const {
  for (const Entry& e : entries_) {
    if (e.map == map && e.system_user == system_user && (e.user_all || e.user == user)) {
      return true;
    }
  }
  return false;
}

}  // namespace sluice::config
