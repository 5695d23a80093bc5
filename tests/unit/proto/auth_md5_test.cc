// Tests for MD5 password math against values Postgres produces.
#include <gtest/gtest.h>

#include "proto/auth/md5.h"

namespace sluice::proto::auth {
namespace {

TEST(Md5, HexOfKnownInputs) {
  EXPECT_EQ(*md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(*md5_hex("The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6");
}

TEST(Md5, PasswordHashMatchesPostgres) {
  // SELECT rolpassword FROM pg_authid for user muser1 with password 'foo' (password_encryption
  // md5).
  EXPECT_EQ(*md5_password_hash("foo", "muser1"), "md5ab8b744ff66bee42dc47bae34ca17959");
}

TEST(Md5, IsMd5Hash) {
  EXPECT_TRUE(is_md5_hash("md5ab8b744ff66bee42dc47bae34ca17959"));
  EXPECT_FALSE(is_md5_hash("md5AB8B744FF66BEE42DC47BAE34CA17959"));  // Postgres: lowercase only
  EXPECT_FALSE(is_md5_hash("md5ab8b744ff66bee42dc47bae34ca1795"));
  EXPECT_FALSE(is_md5_hash("md5ab8b744ff66bee42dc47bae34ca179590"));
  EXPECT_FALSE(is_md5_hash("md6ab8b744ff66bee42dc47bae34ca17959"));
  EXPECT_FALSE(is_md5_hash("md5ab8b744ff66bee42dc47bae34ca1795g"));
  EXPECT_FALSE(is_md5_hash(""));
}

TEST(Md5, ClientResponseFromPlaintextAndFromHashAgree) {
  const Md5Salt salt{1, 2, 3, 4};
  // Computed independently: "md5" + md5(md5hex("foo" + "muser1") + "\x01\x02\x03\x04").
  EXPECT_EQ(*md5_client_response("foo", "muser1", salt), "md5cbed5d7df5ce72a10b51fdf89c0cdc6b");
  EXPECT_EQ(*md5_client_response("md5ab8b744ff66bee42dc47bae34ca17959", "muser1", salt),
            "md5cbed5d7df5ce72a10b51fdf89c0cdc6b");
  const Md5Salt high{0xff, 0x00, 0x80, 0x7f};  // salt bytes are raw, NUL and high bit included
  EXPECT_EQ(*md5_client_response("foo", "muser1", high), "md52ade501c11db7c5229a6cc750272598a");
}

TEST(Md5, VerifyAcceptsOnlyTheRightResponse) {
  const Md5Salt salt{1, 2, 3, 4};
  const std::string good = "md5cbed5d7df5ce72a10b51fdf89c0cdc6b";
  EXPECT_TRUE(md5_verify("foo", "muser1", salt, good));
  EXPECT_TRUE(md5_verify("md5ab8b744ff66bee42dc47bae34ca17959", "muser1", salt, good));
  EXPECT_FALSE(md5_verify("bar", "muser1", salt, good));
  EXPECT_FALSE(md5_verify("foo", "muser2", salt, good));
  EXPECT_FALSE(md5_verify("foo", "muser1", Md5Salt{1, 2, 3, 5}, good));
  EXPECT_FALSE(md5_verify("foo", "muser1", salt, good.substr(0, 34)));
  EXPECT_FALSE(md5_verify("foo", "muser1", salt, good + "0"));
  EXPECT_FALSE(md5_verify("foo", "muser1", salt, ""));
  // The hash itself is not a valid answer (that would make the stored hash a password).
  EXPECT_FALSE(md5_verify("foo", "muser1", salt, "md5ab8b744ff66bee42dc47bae34ca17959"));
}

TEST(Md5, UppercaseHashIsTreatedAsPlaintext) {
  const Md5Salt salt{9, 9, 9, 9};
  const std::string upper = "MD5AB8B744FF66BEE42DC47BAE34CA17959";
  EXPECT_EQ(*md5_client_response(upper, "u", salt),
            *md5_client_response(*md5_password_hash(upper, "u"), "u", salt));
}

}  // namespace
}  // namespace sluice::proto::auth
