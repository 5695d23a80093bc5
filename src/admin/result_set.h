// Builds a console result: RowDescription, DataRows, CommandComplete.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/writer.h"

namespace sluice::admin {

class ResultSet {
 public:
  enum class Type : std::uint32_t { Text = 25, Int8 = 20, Int4 = 23, Numeric = 1700 };
  void column(std::string name, Type t = Type::Text) { cols_.push_back({std::move(name), t}); }
  void row(std::vector<std::optional<std::string>> values) { rows_.push_back(std::move(values)); }
  void write(std::string& out, std::string_view tag) const {
    std::vector<proto::Column> c;
    c.reserve(cols_.size());
    for (const auto& col : cols_)
      c.push_back({col.name, static_cast<std::uint32_t>(col.type)});
    proto::write_row_description(out, c);
    for (const auto& r : rows_)
      proto::write_data_row(out, r);
    proto::write_command_complete(out, tag);
  }

 private:
  struct Col {
    std::string name;
    Type type;
  };
  std::vector<Col> cols_;
  std::vector<std::vector<std::optional<std::string>>> rows_;
};

}  // namespace sluice::admin
