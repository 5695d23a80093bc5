// Tests for PoolManager when a server refuses logins: who is failed, and fast failing later.
#include <gtest/gtest.h>

#include <string>

#include "pool_fixture.h"
#include "proto/backend.h"

namespace sluice::pool::testing {
namespace {

using LoginFailure = PoolTest;

constexpr char kRefusalBytes[] = "SFATAL\0C28P01\0Mpassword authentication failed\0";
const std::string kRefusal(kRefusalBytes, sizeof kRefusalBytes);  // with the closing NUL

std::string message_of(const std::string& body) {
  auto e = proto::ErrorView::decode(body);
  return e ? std::string(e->message) : std::string();
}

TEST_F(LoginFailure, WithNoUsableServerEveryWaiterIsFailed) {
  configure("app = pool_size=4", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  TestWaiter& login = waiter(true);
  TestWaiter& normal = waiter();
  checkout(p, login);
  checkout(p, normal);
  ASSERT_EQ(connector_.count(p), 2);
  fail(true, kRefusal);
  EXPECT_FALSE(login.queued);
  EXPECT_FALSE(normal.queued);
  drain_loops();  // the failure is delivered on the waiter's own loop
  ASSERT_EQ(login.login_failures.size(), 1u);
  ASSERT_EQ(normal.login_failures.size(), 1u);
  EXPECT_EQ(normal.login_failures[0], kRefusal);
  EXPECT_TRUE(p.waiters.empty());
  complete();  // the other attempt logs in and goes idle
  EXPECT_EQ(p.idle_count(), 1);
  check_budget();
}

TEST_F(LoginFailure, WhileAServerIsUsableOnlyLoginWaitersAreFailed) {
  configure("app = pool_size=4", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  TestWaiter& holder = waiter();
  checkout(p, holder);
  ServerConn* held = complete();
  ASSERT_EQ(holder.take(), held);
  TestWaiter& login = waiter(true);
  TestWaiter& normal = waiter();
  checkout(p, login);
  checkout(p, normal);
  ASSERT_EQ(connector_.count(p), 3);
  fail(true, kRefusal);
  drain_loops();
  EXPECT_EQ(login.login_failures.size(), 1u);
  EXPECT_TRUE(normal.login_failures.empty());
  EXPECT_TRUE(normal.queued);
  ServerConn* s = complete();
  EXPECT_EQ(normal.assigned, s);
  check_budget();
}

TEST_F(LoginFailure, AStaleServerDoesNotCountAsUsable) {
  configure("app = pool_size=4", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  TestWaiter& holder = waiter();
  checkout(p, holder);
  ServerConn* held = complete();  // before take(): argument order is unspecified
  ASSERT_EQ(holder.take(), held);
  mgr_->reconnect("app", worker(0));  // the held server closes when released
  TestWaiter& normal = waiter();
  checkout(p, normal);
  fail(true, kRefusal);
  drain_loops();
  EXPECT_EQ(normal.login_failures.size(), 1u);
}

TEST_F(LoginFailure, LaterClientsFailFastWithTheCachedError) {
  configure("app = pool_size=4", "server_login_retry = 10\nserver_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  TestWaiter& first = waiter();
  checkout(p, first);
  fail(true, kRefusal);
  drain_loops();
  ASSERT_EQ(first.login_failures.size(), 1u);

  TestWaiter& next = waiter();
  EXPECT_EQ(checkout(p, next), nullptr);
  EXPECT_FALSE(next.queued);
  drain_loops();
  ASSERT_EQ(next.login_failures.size(), 1u);
  EXPECT_EQ(message_of(next.login_failures[0]),
            "server login has been failing, cached error: password authentication failed "
            "(server_login_retry)");
  EXPECT_EQ(connector_.count(p), 1) << "no new attempt before server_login_retry";

  // Clients waiting only to log in keep waiting; after the retry time one attempt is made.
  TestWaiter& login = waiter(true);
  checkout(p, login);
  EXPECT_TRUE(login.queued);
  clock_.advance(10 * kSecond);
  TestWaiter& late = waiter();
  checkout(p, late);
  drain_loops();
  EXPECT_EQ(late.login_failures.size(), 1u);
  EXPECT_EQ(connector_.count(p), 2) << "a fast failure past the retry time starts an attempt";
  complete();
  EXPECT_EQ(login.assigned != nullptr, true);
  check_budget();
}

TEST_F(LoginFailure, NetworkFailuresAndNewTargetsDoNotFailFast) {
  configure("app = pool_size=4", "server_check_delay = 0");
  Pool& p = used_pool("app", "alice");
  TestWaiter& a = waiter();
  checkout(p, a);
  fail(false);
  TestWaiter& b = waiter();
  checkout(p, b);
  EXPECT_TRUE(b.queued) << "a network failure does not fail anyone";

  TestWaiter& login = waiter(true);
  checkout(p, login);
  clock_.advance(20 * kSecond);  // past server_login_retry: attempts for all three
  mgr_->maintain_global(worker(0));
  fail(true, kRefusal);  // a refused login with no usable server fails all three
  drain_loops();
  EXPECT_EQ(b.login_failures.size(), 1u);
  // A changed target (here RECONNECT; a reload that changes the login or TLS settings too)
  // is worth a try: the next client waits for it instead of failing with the old error.
  mgr_->reconnect("app", worker(0));
  TestWaiter& c = waiter();
  checkout(p, c);
  EXPECT_TRUE(c.queued);
}

}  // namespace
}  // namespace sluice::pool::testing
