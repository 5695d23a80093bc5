// `sluice budget` output: one server's budget as text tables, problems and notes.
#include "app/budget_report.h"

#include <algorithm>

namespace sluice::app::budget {

namespace {

bool numeric(const std::string& s) {
  if (s.empty()) return false;
  if (s == "-") return true;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string limit_text(int n) {
  return n < 0 ? "-" : std::to_string(n);
}
std::string config_limit_text(int n) {
  return n <= 0 ? "-" : std::to_string(n);
}

std::string open_text(const LimitRow& r) {
  if (r.open_now == 0) return "0";
  return std::to_string(r.open_now) + " (" + r.states + ")";
}

void line(std::string& out, const std::string& label, const std::string& value,
          const std::string& comment = "") {
  constexpr std::size_t kLabel = 34, kValue = 5;
  std::string l = "  " + label;
  l.resize(std::max(l.size() + 1, kLabel), ' ');
  l += std::string(kValue - std::min(kValue, value.size()), ' ') + value;
  if (!comment.empty()) l += "  (" + comment + ")";
  out += l + "\n";
}

void findings(std::string& out, const ServerBudget& b, Severity which, const char* title) {
  bool any = false;
  for (const auto& f : b.findings) {
    if (f.severity != which) continue;
    if (!any) out += std::string("\n  ") + title + ":\n";
    any = true;
    out += "    - " + f.text + "\n";
  }
}

}  // namespace

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::string& indent) {
  std::vector<std::size_t> width(header.size(), 0);
  std::vector<bool> right(header.size(), !rows.empty());
  for (std::size_t c = 0; c < header.size(); ++c)
    width[c] = header[c].size();
  for (const auto& r : rows) {
    for (std::size_t c = 0; c < r.size() && c < header.size(); ++c) {
      width[c] = std::max(width[c], r[c].size());
      if (!numeric(r[c])) right[c] = false;
    }
  }
  auto emit = [&](const std::vector<std::string>& cells, std::string& out) {
    std::string l = indent;
    for (std::size_t c = 0; c < header.size(); ++c) {
      const std::string cell = c < cells.size() ? cells[c] : "";
      const std::string pad(width[c] - std::min(width[c], cell.size()), ' ');
      if (c > 0) l += "  ";
      l += right[c] ? pad + cell : cell + pad;
    }
    while (!l.empty() && l.back() == ' ')
      l.pop_back();
    out += l + "\n";
  };
  std::string out;
  emit(header, out);
  for (const auto& r : rows)
    emit(r, out);
  return out;
}

std::string render(const ServerBudget& b) {
  const ServerFacts& f = b.facts;
  std::string out = "server " + b.address.display() + ": PostgreSQL " + f.version +
                    ", checked as \"" + f.login_user + "\"" +
                    (f.login_superuser ? " (superuser)" : "") + "\n";
  line(out, "max_connections", std::to_string(f.max_connections));
  line(out, "superuser_reserved_connections", std::to_string(f.superuser_reserved));
  if (f.reserved) {
    line(out, "reserved_connections", std::to_string(*f.reserved));
  } else {
    line(out, "reserved_connections", "-", "not on this server: new in PostgreSQL 16");
  }
  line(out, "slots for non-superuser roles", std::to_string(b.available));
  line(out, "open now", std::to_string(b.open_now), "client backends, not counting this check");
  if (b.with_config) {
    std::string how = "sum of pool_size + reserve_pool_size";
    if (b.sluice_max != b.pools_sum) {
      how += " " + std::to_string(b.pools_sum) +
             ", capped by max_db_connections / max_user_connections";
    }
    line(out, "pools may open", std::to_string(b.sluice_max), how);

    std::vector<std::vector<std::string>> rows;
    for (const auto& p : b.pools) {
      std::string note;
      if (p.forced_user) note = "forced user";
      if (!p.counted) note += std::string(note.empty() ? "" : ", ") + "not counted";
      rows.push_back({p.database + "/" + p.user, p.dbname, std::to_string(p.pool_size),
                      std::to_string(p.reserve_size), std::to_string(p.max()), note});
    }
    out += "\n";
    if (rows.empty()) {
      out += "  no pools on this server\n";
    } else {
      out += render_table(
          {"pool (database/user)", "server database", "pool_size", "reserve", "max", ""}, rows,
          "  ");
    }
  }

  auto limit_rows = [&](const std::vector<LimitRow>& list, bool role) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : list) {
      const std::string name = r.name + (role && r.exempt ? " (superuser)" : "");
      const std::string limit = limit_text(r.limit);
      if (b.with_config) {
        rows.push_back({name, std::to_string(r.sluice_max), config_limit_text(r.config_limit),
                        limit, open_text(r)});
      } else {
        rows.push_back({name, limit, open_text(r)});
      }
    }
    return rows;
  };
  if (!b.roles.empty()) {
    out += "\n";
    if (b.with_config) {
      out += render_table(
          {"role", "pools may open", "max_user_connections", "CONNECTION LIMIT", "open now"},
          limit_rows(b.roles, true), "  ");
    } else {
      out +=
          render_table({"role", "CONNECTION LIMIT", "open now"}, limit_rows(b.roles, true), "  ");
    }
  }
  if (!b.databases.empty()) {
    out += "\n";
    if (b.with_config) {
      out += render_table(
          {"database", "pools may open", "max_db_connections", "CONNECTION LIMIT", "open now"},
          limit_rows(b.databases, false), "  ");
    } else {
      out += render_table({"database", "CONNECTION LIMIT", "open now"},
                          limit_rows(b.databases, false), "  ");
    }
  }

  findings(out, b, Severity::Problem, "problems");
  findings(out, b, Severity::Note, "notes");
  std::size_t problems = static_cast<std::size_t>(
      std::count_if(b.findings.begin(), b.findings.end(),
                    [](const Finding& x) { return x.severity == Severity::Problem; }));
  out += "\n  budget " + std::string(problems == 0 ? "holds" : "does not hold");
  if (problems > 0) {
    out += " (" + std::to_string(problems) + (problems == 1 ? " problem" : " problems") + ")";
  }
  out += "\n";
  return out;
}

}  // namespace sluice::app::budget
