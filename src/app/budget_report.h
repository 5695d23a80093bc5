// `sluice budget` output: one server's budget as text tables, problems and notes.
#pragma once

#include <string>
#include <vector>

#include "app/budget_model.h"

namespace sluice::app::budget {

// Columns padded to their widest cell; numbers (cells of digits, or "-") right-aligned.
[[nodiscard]] std::string render_table(const std::vector<std::string>& header,
                                       const std::vector<std::vector<std::string>>& rows,
                                       const std::string& indent);

// The whole report of one server, ending with its verdict line.
[[nodiscard]] std::string render(const ServerBudget& b);

}  // namespace sluice::app::budget
