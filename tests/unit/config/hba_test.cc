// auth_hba_file rules and auth_ident_file maps: tokenizing, parsing, first-match evaluation.
#include "config/hba.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

namespace sluice::config {
namespace {

core::Result<std::string> no_lists(std::string_view name) {
  return core::Error{"no list " + std::string(name)};
}

HbaRules rules(std::string_view text) {
  return HbaRules::parse(text, "hba.conf", no_lists);
}

sockaddr_storage ip(const char* text) {
  sockaddr_storage ss{};
  if (std::strchr(text, ':') != nullptr) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, text, &a->sin_addr), 1);
  }
  return ss;
}

// The method the rules choose, "reject" when nothing matches (as the session treats it).
std::string eval(const HbaRules& r, std::string_view db, std::string_view user, const char* addr,
                 bool tls = false) {
  sockaddr_storage ss{};
  HbaClient c;
  c.database = db;
  c.user = user;
  c.tls = tls;
  if (addr == nullptr) {
    c.unix_socket = true;
  } else {
    ss = ip(addr);
    c.addr = &ss;
  }
  const HbaRule* rule = r.match(c);
  return rule == nullptr ? "reject" : std::string(to_string(rule->method));
}

// Rules in the spirit of PgBouncer's own hba test file: whitespace, lists, quoting, masks.
constexpr std::string_view kRules = R"(# METHOD: trust, reject, md5, password, peer, cert
 	 	
local     dbp   all          peer
local     all   userp        password
local     dbz   userz        trust
local     dbs   users        scram-sha-256
local     all   all          md5

hostssl   all   all   10.0.0.0/8        cert
hostnossl all   all   11.0.0.0/8        md5
host      all   all   127.0.0.0  255.255.255.0    password
host      db1   all   0.0.0.0/0         md5
host      all   user1 15.0.0.0/8        md5
host      tmp1,all    user1,user2 , user3   16.0.0.0/8   md5
host      d1,d2,d3    t18user       18.0.0.0/8   trust # comment
host      "all"  "all"   19.0.0.0/8     cert
host      "q1""q2"  "a , b"  19.0.0.0/8  cert
host      mdb   muser   199.199.199.199/32  cert
host      mdb2  muser   128.0.0.0/9   trust
host      mdb2  muser   128.0.0.0/1   cert
host      mdb   muser   ff11::0/16    md5
host      mdb   muser   ::1/128       trust
host      mdb3  muser   all           scram-sha-256
host      sameuser  all  20.0.0.0/8   trust
)";

TEST(Hba, LocalRules) {
  auto r = rules(kRules);
  ASSERT_FALSE(r.broken()) << r.problems().front();
  EXPECT_EQ(eval(r, "db", "user", nullptr), "md5");
  EXPECT_EQ(eval(r, "dbp", "user", nullptr), "peer");
  EXPECT_EQ(eval(r, "db", "userp", nullptr), "password");
  EXPECT_EQ(eval(r, "dbz", "userz", nullptr), "trust");
  EXPECT_EQ(eval(r, "dbs", "users", nullptr), "scram-sha-256");
}

TEST(Hba, SslAndNoSsl) {
  auto r = rules(kRules);
  EXPECT_EQ(eval(r, "db", "user", "10.1.1.1", true), "cert");
  EXPECT_EQ(eval(r, "db", "user", "10.1.1.1", false), "reject");
  EXPECT_EQ(eval(r, "db", "user", "11.1.1.1", true), "reject");
  EXPECT_EQ(eval(r, "db", "user", "11.1.1.1", false), "md5");
}

TEST(Hba, AddressesAndMasks) {
  auto r = rules(kRules);
  EXPECT_EQ(eval(r, "db", "user", "127.0.0.2", true), "password");
  EXPECT_EQ(eval(r, "db", "user", "127.0.1.4"), "reject");
  EXPECT_EQ(eval(r, "db1", "user", "127.0.1.4"), "md5");
  EXPECT_EQ(eval(r, "mdb", "muser", "199.199.199.199"), "cert");
  EXPECT_EQ(eval(r, "mdb", "muser", "199.199.199.198"), "reject");
  EXPECT_EQ(eval(r, "mdb2", "muser", "128.1.1.1"), "trust");
  EXPECT_EQ(eval(r, "mdb2", "muser", "254.1.1.1"), "cert");
  EXPECT_EQ(eval(r, "mdb", "muser", "ff11:2::1"), "md5");
  EXPECT_EQ(eval(r, "mdb", "muser", "ff22:3::1"), "reject");
  EXPECT_EQ(eval(r, "mdb", "muser", "::1"), "trust");
  EXPECT_EQ(eval(r, "mdb3", "muser", "1.2.3.4"), "scram-sha-256");
  EXPECT_EQ(eval(r, "mdb3", "muser", "2001:db8::1"), "scram-sha-256");
  EXPECT_EQ(eval(r, "db1", "user", "::ffff:127.0.1.4"), "md5");  // v4-mapped is IPv4
}

TEST(Hba, ListsAndQuoting) {
  auto r = rules(kRules);
  EXPECT_EQ(eval(r, "db1z", "user1", "15.0.0.1"), "md5");
  EXPECT_EQ(eval(r, "db1z", "user2", "15.0.0.1"), "reject");
  for (const char* u : {"user1", "user2", "user3"})
    EXPECT_EQ(eval(r, "db2", u, "16.0.0.1"), "md5");
  EXPECT_EQ(eval(r, "db2", "user4", "16.0.0.1"), "reject");
  EXPECT_EQ(eval(r, "d3", "t18user", "18.0.0.2"), "trust");
  EXPECT_EQ(eval(r, "d4", "t18user", "18.0.0.2"), "reject");
  // Quoted keywords are plain names.
  EXPECT_EQ(eval(r, "db", "t19user", "19.0.0.2"), "reject");
  EXPECT_EQ(eval(r, "all", "all", "19.0.0.2"), "cert");
  EXPECT_EQ(eval(r, "q1\"q2", "a , b", "19.0.0.2"), "cert");
  // sameuser
  EXPECT_EQ(eval(r, "bob", "bob", "20.1.1.1"), "trust");
  EXPECT_EQ(eval(r, "bob", "alice", "20.1.1.1"), "reject");
}

TEST(Hba, RuleLineAndMapOption) {
  auto r = rules("# x\n\nhostssl all all 0.0.0.0/0 cert map=m1 clientcert=verify-full\n");
  ASSERT_EQ(r.rules().size(), 1u);
  EXPECT_EQ(r.rules()[0].line, 3);
  EXPECT_EQ(r.rules()[0].map, "m1");
  EXPECT_FALSE(r.broken());
  EXPECT_EQ(r.problems().size(), 1u);  // clientcert is ignored, and said so
}

TEST(Hba, MalformedLinesRefuseEverybody) {
  for (const char* bad :
       {"host all all 1.2.3.4/33 trust", "host all all 1.2.3.4 trust", "hots all all all trust",
        "host all all", "host \"all all 0.0.0.0/0 trust", "host all, all 0.0.0.0/0 trust",
        "host all all ::1 255.0.0.0 trust", "local all"}) {
    auto r = rules(std::string("local all all trust\n") + bad + "\n");
    EXPECT_TRUE(r.broken()) << bad;
    EXPECT_EQ(eval(r, "db", "u", nullptr), "reject") << bad;
    EXPECT_FALSE(r.problems().empty()) << bad;
  }
}

TEST(Hba, UnsupportedFormsFailClosed) {
  // Unknown methods refuse instead of being skipped; host names and groups match nothing.
  auto r = rules("host all all 0.0.0.0/0 ldap ldapserver=x\nhost all all 0.0.0.0/0 trust\n");
  EXPECT_FALSE(r.broken());
  EXPECT_EQ(eval(r, "db", "u", "1.2.3.4"), "reject");
  auto h = rules(
      "host all all example.com trust\nhost all +grp 0.0.0.0/0 trust\n"
      "host all all 0.0.0.0/0 md5\n");
  EXPECT_EQ(eval(h, "db", "u", "1.2.3.4"), "md5");
  EXPECT_EQ(eval(h, "db", "grp", "1.2.3.4"), "md5");
  auto p = rules("host all all 0.0.0.0/0 peer\n");
  EXPECT_EQ(eval(p, "db", "u", "1.2.3.4"), "reject");
}

TEST(Hba, IncludedLists) {
  auto load = [](std::string_view name) -> core::Result<std::string> {
    if (name == "users.txt") return std::string("alice, bob\n\"carol\"\n");
    return core::Error{"missing"};
  };
  auto r = HbaRules::parse("host all @users.txt 0.0.0.0/0 trust\n", "hba.conf", load);
  ASSERT_FALSE(r.broken());
  EXPECT_EQ(eval(r, "db", "bob", "1.1.1.1"), "trust");
  EXPECT_EQ(eval(r, "db", "carol", "1.1.1.1"), "trust");
  EXPECT_EQ(eval(r, "db", "dave", "1.1.1.1"), "reject");
  auto missing = HbaRules::parse("host all @nope 0.0.0.0/0 trust\n", "hba.conf", load);
  EXPECT_TRUE(missing.broken());
}

TEST(Hba, Replication) {
  auto r = rules("host replication admin ::1/128 trust\nhost all all ::1/128 md5\n");
  HbaClient c;
  sockaddr_storage ss = ip("::1");
  c.addr = &ss;
  c.database = "db";
  c.user = "admin";
  c.replication = true;
  ASSERT_NE(r.match(c), nullptr);
  EXPECT_EQ(r.match(c)->method, HbaMethod::Trust);
  c.replication = false;
  EXPECT_EQ(r.match(c)->method, HbaMethod::Md5);
}

TEST(Hba, Tokenizer) {
  auto f = split_hba_line(R"(host  "a""b",c , "d e"   x#y)");
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 3u);
  ASSERT_EQ((*f)[1].size(), 3u);
  EXPECT_EQ((*f)[1][0].text, "a\"b");
  EXPECT_TRUE((*f)[1][0].quoted);
  EXPECT_EQ((*f)[1][1].text, "c");
  EXPECT_FALSE((*f)[1][1].quoted);
  EXPECT_EQ((*f)[1][2].text, "d e");
  EXPECT_EQ((*f)[2][0].text, "x");
  EXPECT_FALSE(split_hba_line("host \"open").ok());
  EXPECT_FALSE(split_hba_line("a, ").ok());
}

TEST(IdentMap, Matches) {
  std::vector<std::string> problems;
  auto m = IdentMap::parse(
      "# comment\ntest pgbouncer.acme.org someuser\ntest pgbouncer.acme.org anotheruser\n"
      "test2 \"bouncer\" all\ntest2 pgbouncer.acme.org \"anotheruser\"\nbad line\n"
      "rx /^(.*)$ \\1\n",
      problems);
  EXPECT_EQ(m.size(), 4u);
  EXPECT_EQ(problems.size(), 2u);
  EXPECT_TRUE(m.allows("test", "pgbouncer.acme.org", "someuser"));
  EXPECT_TRUE(m.allows("test", "pgbouncer.acme.org", "anotheruser"));
  EXPECT_FALSE(m.allows("test", "pgbouncer.acme.org", "bouncer"));
  EXPECT_TRUE(m.allows("test2", "bouncer", "anyone"));
  EXPECT_FALSE(m.allows("test2", "pgbouncer.acme.org", "someuser"));
  EXPECT_FALSE(m.allows("nomap", "bouncer", "bouncer"));
}

}  // namespace
}  // namespace sluice::config
