// Tests for backend.h views: exact fits accepted, truncation and trailing bytes rejected.
#include "proto/backend.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::proto {
namespace {

using namespace std::string_literals;

TEST(ParameterStatusView, Decodes) {
  const auto body = "TimeZone\0UTC\0"s;
  auto v = ParameterStatusView::decode(body);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->name, "TimeZone");
  EXPECT_EQ(v->value, "UTC");
  const auto empty_body = "a\0\0"s;
  auto empty = ParameterStatusView::decode(empty_body);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->value, "");
}

TEST(ParameterStatusView, Rejects) {
  for (const std::string& bad : {""s, "TimeZone"s, "TimeZone\0"s, "TimeZone\0UTC"s,
                                 "TimeZone\0UTC\0x"s, "TimeZone\0UTC\0\0"s}) {
    EXPECT_FALSE(ParameterStatusView::decode(bad).has_value()) << bad.size();
  }
}

TEST(BackendKeyDataView, Decodes) {
  auto v = BackendKeyDataView::decode("\0\0\x30\x39\xde\xad\xbe\xef"s);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->pid, 12345u);
  EXPECT_EQ(v->secret, 0xdeadbeefu);
}

TEST(BackendKeyDataView, RejectsWrongSizes) {
  for (std::size_t n : {0u, 3u, 4u, 7u, 9u, 12u, 36u}) {
    EXPECT_FALSE(BackendKeyDataView::decode(std::string(n, '\x01')).has_value()) << n;
  }
}

TEST(ErrorView, AllFields) {
  const auto body = "SERROR\0VERROR\0C42P01\0Mno table\0Dmore\0Hhint\0P8\0\0"s;
  auto v = ErrorView::decode(body);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->severity, "ERROR");
  EXPECT_EQ(v->sqlstate, "42P01");
  EXPECT_EQ(v->message, "no table");
  EXPECT_EQ(v->detail, "more");
}

TEST(ErrorView, MissingFieldsAreEmpty) {
  const auto body = "Monly a message\0\0"s;
  auto v = ErrorView::decode(body);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->message, "only a message");
  EXPECT_TRUE(v->severity.empty());
  EXPECT_TRUE(v->sqlstate.empty());
  EXPECT_TRUE(v->detail.empty());
  auto none = ErrorView::decode("\0"s);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->message.empty());
}

TEST(ErrorView, NonLocalizedSeverityWins) {
  // Postgres sends the localized S first, then the untranslated V.
  const auto localized = "SFEHLER\0VERROR\0\0"s;  // the views point into the bodies
  const auto only_s = "SFATAL\0\0"s;
  const auto v_then_s = "VERROR\0SFEHLER\0\0"s;
  auto v = ErrorView::decode(localized);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->severity, "ERROR");
  auto old = ErrorView::decode(only_s);  // servers before 9.6 send only S
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->severity, "FATAL");
  auto v_first = ErrorView::decode(v_then_s);
  ASSERT_TRUE(v_first.has_value());
  EXPECT_EQ(v_first->severity, "ERROR");
}

TEST(ErrorView, TruncatedRejected) {
  for (const std::string& bad :
       {""s, "S"s, "SERROR"s, "SERROR\0"s, "SERROR\0M"s, "SERROR\0Mtext"s, "SERROR\0Mtext\0"s}) {
    EXPECT_FALSE(ErrorView::decode(bad).has_value()) << bad;
  }
}

TEST(ErrorView, BytesAfterTerminatorIgnored) {
  // The view stops at the terminating zero; whether trailing bytes are an error is not its call.
  const auto body = "Mx\0\0junk"s;
  auto v = ErrorView::decode(body);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->message, "x");
}

}  // namespace
}  // namespace sluice::proto
