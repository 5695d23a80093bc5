// Tests for [users] entries.
#include <gtest/gtest.h>

#include "config/config.h"
#include "helpers.h"

namespace sluice::config {
namespace {

using testing::must_parse;
using testing::parse_error;

TEST(Users, EveryOption) {
  auto cfg = must_parse(
      "[users]\n"
      "alice = pool_mode=statement pool_size=3 reserve_pool_size=1 max_user_connections=9 "
      "max_user_client_connections=90 query_timeout=2.5 idle_transaction_timeout=30 "
      "client_idle_timeout=0.25 transaction_timeout=60\n"
      "bob = pool_size=1\n"
      "[pgbouncer]\n");
  const UserConfig* a = cfg->find_user("alice");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->pool_mode, PoolMode::Statement);
  EXPECT_EQ(a->pool_size, 3);
  EXPECT_EQ(a->reserve_pool_size, 1);
  EXPECT_EQ(a->max_user_connections, 9);
  EXPECT_EQ(a->max_user_client_connections, 90);
  EXPECT_EQ(a->query_timeout, 2'500'000);
  EXPECT_EQ(a->idle_transaction_timeout, 30 * core::kMicrosPerSecond);
  EXPECT_EQ(a->client_idle_timeout, 250'000);
  EXPECT_EQ(a->transaction_timeout, 60 * core::kMicrosPerSecond);

  const UserConfig* b = cfg->find_user("bob");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->pool_size, 1);
  EXPECT_FALSE(b->pool_mode);
  EXPECT_EQ(b->reserve_pool_size, -1);
  EXPECT_EQ(b->max_user_connections, -1);
  EXPECT_EQ(b->query_timeout, -1);
  EXPECT_EQ(b->transaction_timeout, -1);
  EXPECT_EQ(cfg->find_user("carol"), nullptr);
}

TEST(Users, QuotedUserName) {
  auto cfg = must_parse("[users]\n\"Some User\" = pool_size=2\n[pgbouncer]\n");
  ASSERT_NE(cfg->find_user("Some User"), nullptr);
}

TEST(Users, UnknownKeyAndBadValues) {
  std::string err = parse_error("[pgbouncer]\n[users]\nalice = host=x\n");
  EXPECT_NE(err.find("<config>:3: user 'alice': unknown parameter 'host'"), std::string::npos)
      << err;
  err = parse_error("[pgbouncer]\n[users]\nalice = query_timeout=soon\n");
  EXPECT_NE(err.find("<config>:3: user 'alice': invalid value for query_timeout: 'soon'"),
            std::string::npos)
      << err;
  err = parse_error("[pgbouncer]\n[users]\nalice = pool_size=-2\n");
  EXPECT_NE(err.find("invalid value for pool_size"), std::string::npos) << err;
  err = parse_error("[pgbouncer]\n[users]\nalice = pool_mode=never\n");
  EXPECT_NE(err.find("invalid value for pool_mode"), std::string::npos) << err;
}

}  // namespace
}  // namespace sluice::config
