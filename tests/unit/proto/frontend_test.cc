// Tests for frontend.h views: well-formed bodies decode with every field in place; truncated
// bodies, trailing bytes, negative counts and lengths that run past the body are refused.
#include "proto/frontend.h"

#include <gtest/gtest.h>

#include <string>

#include "proto/frame.h"

namespace sluice::proto {
namespace {

using namespace std::string_literals;

std::string be16(int v) {
  std::string s(2, '\0');
  write_be16(s.data(), static_cast<std::uint16_t>(v));
  return s;
}
std::string be32(std::int64_t v) {
  std::string s(4, '\0');
  write_be32(s.data(), static_cast<std::uint32_t>(v));
  return s;
}

TEST(ParseView, Decodes) {
  const std::string body = "st\0select $1\0"s + be16(1) + be32(23);
  auto p = ParseView::decode(body);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "st");
  EXPECT_EQ(p->query, "select $1");
  EXPECT_EQ(p->param_count, 1);
  EXPECT_EQ(p->param_types, be16(1) + be32(23));
  EXPECT_FALSE(parse_is_unnamed(body));
  const std::string unnamed = "\0select 1\0"s + be16(0);
  auto u = ParseView::decode(unnamed);
  ASSERT_TRUE(u.has_value());
  EXPECT_TRUE(u->name.empty());
  EXPECT_TRUE(parse_is_unnamed(unnamed));
}

TEST(ParseView, Rejects) {
  for (const std::string& bad :
       {""s, "\0"s, "st\0select"s, "st\0select\0"s, "st\0select\0\0"s, "st\0select\0"s + be16(1),
        "st\0select\0"s + be16(1) + be32(23) + "x", "st\0select\0"s + be16(-1),
        "st\0select\0"s + be16(0) + "\0"s}) {
    EXPECT_FALSE(ParseView::decode(bad).has_value()) << bad.size();
  }
}

TEST(BindNames, NeedsBothNames) {
  EXPECT_FALSE(BindNames::decode("").has_value());
  EXPECT_FALSE(BindNames::decode("portal\0st"s).has_value());
  const std::string body = "portal\0st\0<the rest streams>"s;
  auto n = BindNames::decode(body);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->portal, "portal");
  EXPECT_EQ(n->statement, "st");
  EXPECT_EQ(n->size(), 10u);
  EXPECT_TRUE(bind_is_unnamed("\0\0"s));
  EXPECT_FALSE(bind_is_unnamed("\0st\0"s));
  EXPECT_FALSE(bind_is_unnamed("\0"s));
}

TEST(BindView, Decodes) {
  const std::string body =
      "\0st\0"s + be16(1) + be16(1) + be16(2) + be32(3) + "abc" + be32(-1) + be16(1) + be16(0);
  auto b = BindView::decode(body);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->names.statement, "st");
  EXPECT_EQ(b->param_format_count, 1);
  EXPECT_EQ(b->param_count, 2);
  EXPECT_EQ(b->params, be32(3) + "abc" + be32(-1));
  EXPECT_EQ(b->result_format_count, 1);
}

TEST(BindView, Rejects) {
  const std::string names = "\0st\0"s;
  for (const std::string& bad : {
           names,                                                    // no counts
           names + be16(0) + be16(1) + be32(5) + "abc" + be16(0),    // value past the end
           names + be16(0) + be16(1) + be32(-2) + be16(0),           // length below -1
           names + be16(2) + be16(0) + be16(0) + be16(0) + be16(0),  // 2 formats, 0 params
           names + be16(-1) + be16(0) + be16(0),                     // negative count
           names + be16(0) + be16(0) + be16(0) + "x",                // trailing byte
           names + be16(0) + be16(0) + be16(3) + be16(0),            // result formats short
           names + be16(0) + be16(1) + be32(0x7fffffff) + be16(0),   // huge length
       }) {
    EXPECT_FALSE(BindView::decode(bad).has_value()) << bad.size();
  }
}

TEST(TargetView, DescribeAndClose) {
  const std::string statement = "Sst\0"s;
  auto s = DescribeView::decode(statement);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->statement());
  EXPECT_EQ(s->name, "st");
  const std::string portal = "P\0"s;
  auto p = CloseView::decode(portal);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->statement());
  EXPECT_TRUE(targets_portal("P\0"s));
  for (const std::string& bad : {""s, "S"s, "Xst\0"s, "Sst"s, "Sst\0\0"s})
    EXPECT_FALSE(DescribeView::decode(bad).has_value()) << bad;
}

TEST(ExecuteView, Decodes) {
  const std::string body = "cur\0"s + be32(100);
  auto e = ExecuteView::decode(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->portal, "cur");
  EXPECT_EQ(e->max_rows, 100u);
  for (const std::string& bad : {""s, "cur\0"s, "cur\0\0\0\0"s, "cur\0"s + be32(1) + "x"})
    EXPECT_FALSE(ExecuteView::decode(bad).has_value()) << bad.size();
}

TEST(QueryView, Decodes) {
  const std::string body = "select 1\0"s;
  auto q = QueryView::decode(body);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->text, "select 1");
  EXPECT_FALSE(QueryView::decode("select 1"s).has_value());
  EXPECT_FALSE(QueryView::decode("select\0 1\0"s).has_value());
  EXPECT_EQ(QueryView::text_of("select 1\0"s), "select 1");
  EXPECT_EQ(QueryView::text_of("select 1"s), "select 1");
  EXPECT_EQ(QueryView::text_of(""), "");
}

TEST(CopyViews, Decode) {
  EXPECT_EQ(CopyDataView::decode("1\t2\n")->data, "1\t2\n");
  EXPECT_TRUE(CopyDoneView::decode("").has_value());
  EXPECT_FALSE(CopyDoneView::decode("x").has_value());
  EXPECT_EQ(CopyFailView::decode("oops\0"s)->message, "oops");
  EXPECT_FALSE(CopyFailView::decode("oops"s).has_value());
}

TEST(FunctionCallView, Decodes) {
  const std::string body = be32(1598) + be16(0) + be16(1) + be32(2) + "42" + be16(0);
  auto f = FunctionCallView::decode(body);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->function_oid, 1598u);
  EXPECT_EQ(f->arg_count, 1);
  EXPECT_EQ(f->args, be32(2) + "42");
  for (const std::string& bad :
       {be32(1598), be32(1598) + be16(0) + be16(1) + be32(3) + "42" + be16(0), body + "x",
        be32(1598) + be16(0) + be16(0)}) {
    EXPECT_FALSE(FunctionCallView::decode(bad).has_value()) << bad.size();
  }
}

}  // namespace
}  // namespace sluice::proto
