// Message builders.
#include "proto/writer.h"

#include "proto/codes.h"
#include "proto/frame.h"

namespace sluice::proto {

MessageWriter& MessageWriter::begin(char type) {
  out_.push_back(type);
  return begin_untyped();
}

MessageWriter& MessageWriter::begin_untyped() {
  len_pos_ = out_.size();
  out_.append(4, '\0');
  return *this;
}

MessageWriter& MessageWriter::u8(std::uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

MessageWriter& MessageWriter::u16(std::uint16_t v) {
  char b[2];
  write_be16(b, v);
  out_.append(b, 2);
  return *this;
}

MessageWriter& MessageWriter::u32(std::uint32_t v) {
  char b[4];
  write_be32(b, v);
  out_.append(b, 4);
  return *this;
}

MessageWriter& MessageWriter::cstring(std::string_view s) {
  out_.append(s);
  out_.push_back('\0');
  return *this;
}

MessageWriter& MessageWriter::bytes(std::string_view s) {
  out_.append(s);
  return *this;
}

void MessageWriter::finish() {
  write_be32(out_.data() + len_pos_, static_cast<std::uint32_t>(out_.size() - len_pos_));
}

namespace {
std::string_view severity_text(Severity s) {
  switch (s) {
    case Severity::Error:
      return "ERROR";
    case Severity::Fatal:
      return "FATAL";
    case Severity::Notice:
      return "NOTICE";
    case Severity::Warning:
      return "WARNING";
  }
  return "ERROR";
}
}  // namespace

void write_error(std::string& out, const ErrorFields& e) {
  MessageWriter w(out);
  w.begin(be::kErrorResponse);
  auto sev = severity_text(e.severity);
  w.u8('S')
      .cstring(sev)
      .u8('V')
      .cstring(sev)
      .u8('C')
      .cstring(e.sqlstate)
      .u8('M')
      .cstring(e.message);
  if (!e.detail.empty()) w.u8('D').cstring(e.detail);
  if (!e.hint.empty()) w.u8('H').cstring(e.hint);
  w.u8(0).finish();
}

void write_notice(std::string& out, std::string_view message) {
  MessageWriter w(out);
  w.begin(be::kNoticeResponse)
      .u8('S')
      .cstring("NOTICE")
      .u8('V')
      .cstring("NOTICE")
      .u8('C')
      .cstring("00000")
      .u8('M')
      .cstring(message)
      .u8(0)
      .finish();
}

void write_ready_for_query(std::string& out, char status) {
  MessageWriter(out).begin(be::kReadyForQuery).u8(static_cast<std::uint8_t>(status)).finish();
}

void write_auth_request(std::string& out, std::uint32_t code, std::string_view extra) {
  MessageWriter(out).begin(be::kAuthentication).u32(code).bytes(extra).finish();
}

void write_auth_sasl(std::string& out, std::initializer_list<std::string_view> mechanisms) {
  MessageWriter w(out);
  w.begin(be::kAuthentication).u32(auth::kSasl);
  for (auto m : mechanisms)
    w.cstring(m);
  w.u8(0).finish();
}

void write_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  MessageWriter(out).begin(be::kParameterStatus).cstring(name).cstring(value).finish();
}

void write_backend_key_data(std::string& out, std::uint32_t pid, std::uint32_t secret) {
  MessageWriter(out).begin(be::kBackendKeyData).u32(pid).u32(secret).finish();
}

void write_negotiate_protocol_version(std::string& out, std::uint32_t newest_minor,
                                      const std::vector<std::string>& unrecognized) {
  MessageWriter w(out);
  w.begin(be::kNegotiateProtocolVersion)
      .u32(newest_minor)
      .u32(static_cast<std::uint32_t>(unrecognized.size()));
  for (const auto& o : unrecognized)
    w.cstring(o);
  w.finish();
}

void write_row_description(std::string& out, const std::vector<Column>& cols) {
  MessageWriter w(out);
  w.begin(be::kRowDescription).u16(static_cast<std::uint16_t>(cols.size()));
  for (const auto& c : cols) {
    std::int16_t typlen = -1;
    if (c.type_oid == 20) typlen = 8;
    if (c.type_oid == 23) typlen = 4;
    if (c.type_oid == 16) typlen = 1;
    w.cstring(c.name)
        .u32(0)
        .u16(0)
        .u32(c.type_oid)
        .u16(static_cast<std::uint16_t>(typlen))
        .i32(-1)
        .u16(0);
  }
  w.finish();
}

void write_data_row(std::string& out, const std::vector<std::optional<std::string>>& values) {
  MessageWriter w(out);
  w.begin(be::kDataRow).u16(static_cast<std::uint16_t>(values.size()));
  for (const auto& v : values) {
    if (!v) {
      w.i32(-1);
    } else {
      w.u32(static_cast<std::uint32_t>(v->size())).bytes(*v);
    }
  }
  w.finish();
}

void write_command_complete(std::string& out, std::string_view tag) {
  MessageWriter(out).begin(be::kCommandComplete).cstring(tag).finish();
}

void write_empty_query_response(std::string& out) {
  MessageWriter(out).begin(be::kEmptyQueryResponse).finish();
}

void write_startup(std::string& out,
                   const std::vector<std::pair<std::string, std::string>>& params) {
  MessageWriter w(out);
  w.begin_untyped().u32(kProtocolV3);
  for (const auto& [k, v] : params)
    w.cstring(k).cstring(v);
  w.u8(0).finish();
}

void write_query(std::string& out, std::string_view sql) {
  MessageWriter(out).begin(fe::kQuery).cstring(sql).finish();
}

void write_password(std::string& out, std::string_view password) {
  MessageWriter(out).begin(fe::kPassword).cstring(password).finish();
}

void write_sasl_initial(std::string& out, std::string_view mechanism, std::string_view data) {
  MessageWriter(out)
      .begin(fe::kPassword)
      .cstring(mechanism)
      .u32(static_cast<std::uint32_t>(data.size()))
      .bytes(data)
      .finish();
}

void write_sasl_response(std::string& out, std::string_view data) {
  MessageWriter(out).begin(fe::kPassword).bytes(data).finish();
}

void write_cancel_request(std::string& out, std::uint32_t pid, std::uint32_t secret) {
  MessageWriter(out).begin_untyped().u32(kCancelRequestCode).u32(pid).u32(secret).finish();
}

void write_terminate(std::string& out) {
  MessageWriter(out).begin(fe::kTerminate).finish();
}

void write_sync(std::string& out) {
  MessageWriter(out).begin(fe::kSync).finish();
}

}  // namespace sluice::proto
