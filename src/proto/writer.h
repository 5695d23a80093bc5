// Message builders: the writer owns the length field; named builders for what sluice originates.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::proto {

class MessageWriter {
 public:
  explicit MessageWriter(std::string& out) : out_(out) {}
  MessageWriter& begin(char type);  // type byte + length placeholder
  MessageWriter& begin_untyped();   // startup-style: length placeholder only
  MessageWriter& u8(std::uint8_t v);
  MessageWriter& u16(std::uint16_t v);
  MessageWriter& u32(std::uint32_t v);
  MessageWriter& i32(std::int32_t v) { return u32(static_cast<std::uint32_t>(v)); }
  MessageWriter& cstring(std::string_view s);  // bytes + NUL
  MessageWriter& bytes(std::string_view s);
  void finish();  // patches the length

 private:
  std::string& out_;
  std::size_t len_pos_ = 0;
};

// ---- backend messages sluice originates (to clients) ----
enum class Severity : std::uint8_t { Error, Fatal, Notice, Warning };

struct ErrorFields {
  Severity severity = Severity::Error;
  std::string_view sqlstate;
  std::string_view message;
  std::string_view detail = {};
  std::string_view hint = {};
};

void write_error(std::string& out, const ErrorFields& e);
void write_notice(std::string& out, std::string_view message);
void write_ready_for_query(std::string& out, char status);
void write_auth_request(std::string& out, std::uint32_t code, std::string_view extra = {});
void write_auth_sasl(std::string& out, std::initializer_list<std::string_view> mechanisms);
void write_parameter_status(std::string& out, std::string_view name, std::string_view value);
void write_backend_key_data(std::string& out, std::uint32_t pid, std::uint32_t secret);
void write_negotiate_protocol_version(std::string& out, std::uint32_t newest_minor,
                                      const std::vector<std::string>& unrecognized);

struct Column {
  std::string_view name;
  std::uint32_t type_oid;  // 25 text, 20 int8, 23 int4, 1700 numeric, 16 bool
};
void write_row_description(std::string& out, const std::vector<Column>& cols);
void write_data_row(std::string& out, const std::vector<std::optional<std::string>>& values);
void write_command_complete(std::string& out, std::string_view tag);
void write_empty_query_response(std::string& out);

// ---- frontend messages sluice originates (to servers) ----
void write_startup(std::string& out,
                   const std::vector<std::pair<std::string, std::string>>& params);
void write_query(std::string& out, std::string_view sql);
void write_password(std::string& out, std::string_view password);
void write_sasl_initial(std::string& out, std::string_view mechanism, std::string_view data);
void write_sasl_response(std::string& out, std::string_view data);
void write_cancel_request(std::string& out, std::uint32_t pid, std::uint32_t secret);
void write_terminate(std::string& out);
void write_sync(std::string& out);

}  // namespace sluice::proto
