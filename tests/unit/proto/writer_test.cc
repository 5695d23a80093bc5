// Tests for writer.h: exact bytes of the messages sluice originates.
#include "proto/writer.h"

#include <gtest/gtest.h>

#include <string>

#include "proto/backend.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/reader.h"

namespace sluice::proto {
namespace {

using namespace std::string_literals;

// Checks the frame header of `msg` and returns its body.
std::string body_of(const std::string& msg, char type) {
  EXPECT_GE(msg.size(), kHeaderLen);
  Header h;
  EXPECT_EQ(decode_header(msg.data(), msg.size(), 1 << 20, h), HeaderStatus::Ok);
  EXPECT_EQ(h.type, type);
  EXPECT_EQ(h.wire_size(), msg.size());
  return msg.substr(kHeaderLen);
}

TEST(Writer, ReadyForQueryBytes) {
  std::string out;
  write_ready_for_query(out, 'I');
  EXPECT_EQ(out, "Z\0\0\0\x05I"s);
  out.clear();
  write_ready_for_query(out, 'T');
  EXPECT_EQ(out, "Z\0\0\0\x05T"s);
}

TEST(Writer, ErrorResponseFieldLayout) {
  std::string out;
  write_error(out, {Severity::Fatal, sqlstate::kInvalidPassword, "password authentication failed"});
  const std::string body = "SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0\0"s;
  EXPECT_EQ(body_of(out, 'E'), body);

  out.clear();
  write_error(out, {Severity::Error, "08P01", "bad", "the detail", "the hint"});
  EXPECT_EQ(body_of(out, 'E'), "SERROR\0VERROR\0C08P01\0Mbad\0Dthe detail\0Hthe hint\0\0"s);
  const std::string full = body_of(out, 'E');
  auto view = ErrorView::decode(full);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->severity, "ERROR");
  EXPECT_EQ(view->sqlstate, "08P01");
  EXPECT_EQ(view->message, "bad");
  EXPECT_EQ(view->detail, "the detail");
}

TEST(Writer, NoticeLayout) {
  std::string out;
  write_notice(out, "hello");
  EXPECT_EQ(body_of(out, 'N'), "SNOTICE\0VNOTICE\0C00000\0Mhello\0\0"s);
}

TEST(Writer, SeveralMessagesInOneBuffer) {
  std::string out = "prefix";
  write_parameter_status(out, "client_encoding", "UTF8");
  write_backend_key_data(out, 7, 0xfeedface);
  write_ready_for_query(out, 'I');
  std::size_t at = 6;
  Header h;
  ASSERT_EQ(decode_header(out.data() + at, out.size() - at, 1000, h), HeaderStatus::Ok);
  EXPECT_EQ(h.type, 'S');
  auto ps = ParameterStatusView::decode(std::string_view(out).substr(at + 5, h.body_size()));
  ASSERT_TRUE(ps.has_value());
  EXPECT_EQ(ps->name, "client_encoding");
  EXPECT_EQ(ps->value, "UTF8");
  at += h.wire_size();
  ASSERT_EQ(decode_header(out.data() + at, out.size() - at, 1000, h), HeaderStatus::Ok);
  EXPECT_EQ(h.type, 'K');
  auto kd = BackendKeyDataView::decode(std::string_view(out).substr(at + 5, h.body_size()));
  ASSERT_TRUE(kd.has_value());
  EXPECT_EQ(kd->pid, 7u);
  EXPECT_EQ(kd->secret, 0xfeedfaceu);
  at += h.wire_size();
  EXPECT_EQ(out.substr(at), "Z\0\0\0\x05I"s);
}

TEST(Writer, DataRowWithNull) {
  std::string out;
  write_data_row(out, {std::string("1"), std::nullopt, std::string("")});
  EXPECT_EQ(body_of(out, 'D'),
            "\0\x03\0\0\0\x01"
            "1\xff\xff\xff\xff\0\0\0\0"s);
}

TEST(Writer, RowDescription) {
  std::string out;
  write_row_description(out, {{"n", 23}, {"t", 25}});
  const std::string body = body_of(out, 'T');
  BodyReader r(body);
  EXPECT_EQ(r.u16(), 2);
  EXPECT_EQ(r.cstring(), "n");
  EXPECT_EQ(r.u32(), 0u);   // table oid
  EXPECT_EQ(r.u16(), 0);    // column number
  EXPECT_EQ(r.u32(), 23u);  // type oid
  EXPECT_EQ(r.u16(), 4);    // int4 length
  EXPECT_EQ(r.i32(), -1);   // typmod
  EXPECT_EQ(r.u16(), 0);    // text format
  EXPECT_EQ(r.cstring(), "t");
  EXPECT_EQ(r.u32(), 0u);
  EXPECT_EQ(r.u16(), 0);
  EXPECT_EQ(r.u32(), 25u);
  EXPECT_EQ(r.u16(), 0xffff);  // variable length
  EXPECT_EQ(r.i32(), -1);
  EXPECT_EQ(r.u16(), 0);
  EXPECT_TRUE(r.at_end());
}

TEST(Writer, CommandCompleteAndEmptyQuery) {
  std::string out;
  write_command_complete(out, "SELECT 1");
  EXPECT_EQ(out, "C\0\0\0\x0dSELECT 1\0"s);
  out.clear();
  write_empty_query_response(out);
  EXPECT_EQ(out, "I\0\0\0\x04"s);
}

TEST(Writer, AuthenticationMessages) {
  std::string out;
  write_auth_request(out, auth::kOk);
  EXPECT_EQ(out, "R\0\0\0\x08\0\0\0\0"s);
  out.clear();
  write_auth_request(out, auth::kMd5, "\x01\x02\x03\x04"s);
  EXPECT_EQ(out, "R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04"s);
  out.clear();
  write_auth_sasl(out, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  EXPECT_EQ(body_of(out, 'R'), "\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"s);
}

TEST(Writer, FrontendAuthMessages) {
  std::string out;
  write_password(out, "md5abc");
  EXPECT_EQ(out, "p\0\0\0\x0bmd5abc\0"s);
  out.clear();
  write_sasl_initial(out, "SCRAM-SHA-256", "n,,n=,r=x");
  EXPECT_EQ(body_of(out, 'p'), "SCRAM-SHA-256\0\0\0\0\x09n,,n=,r=x"s);
  out.clear();
  write_sasl_response(out, "c=biws");
  EXPECT_EQ(out,
            "p\0\0\0\x0a"
            "c=biws"s);
}

TEST(Writer, FrontendSimpleMessages) {
  std::string out;
  write_query(out, "select 1");
  EXPECT_EQ(out, "Q\0\0\0\x0dselect 1\0"s);
  out.clear();
  write_terminate(out);
  write_sync(out);
  EXPECT_EQ(out, "X\0\0\0\x04S\0\0\0\x04"s);
}

TEST(Writer, NegotiateProtocolVersion) {
  std::string out;
  write_negotiate_protocol_version(out, 0, {"_pq_.a", "_pq_.b"});
  EXPECT_EQ(body_of(out, 'v'), "\0\0\0\0\0\0\0\x02_pq_.a\0_pq_.b\0"s);
}

}  // namespace
}  // namespace sluice::proto
