// MD5 password authentication math as Postgres does it (AuthenticationMD5Password); no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::proto::auth {

inline constexpr std::size_t kMd5HashLen = 35;  // "md5" + 32 lowercase hex digits
using Md5Salt = std::array<std::uint8_t, 4>;

// 32 lowercase hex digits. Fails only if libcrypto refuses MD5 (e.g. a FIPS-only provider).
[[nodiscard]] core::Result<std::string> md5_hex(std::string_view data);

// The stored form Postgres keeps in pg_authid and PgBouncer in userlist.txt:
// "md5" + md5_hex(password + user).
[[nodiscard]] core::Result<std::string> md5_password_hash(std::string_view password,
                                                          std::string_view user);

// True if `s` is exactly "md5" followed by 32 lowercase hex digits (Postgres' own test).
[[nodiscard]] bool is_md5_hash(std::string_view s);

// What a client answers to AuthenticationMD5Password with `salt`:
// "md5" + md5_hex(md5_hex(password + user) + salt). `stored` is either the plaintext password
// or its md5 hash (see is_md5_hash); with the hash, the plaintext is not needed.
[[nodiscard]] core::Result<std::string> md5_client_response(std::string_view stored,
                                                            std::string_view user,
                                                            const Md5Salt& salt);

// Checks a client's PasswordMessage (without its NUL) against `stored` (plaintext or md5
// hash). Compares in constant time; false on any mismatch or failure.
[[nodiscard]] bool md5_verify(std::string_view stored, std::string_view user, const Md5Salt& salt,
                              std::string_view client_response);

}  // namespace sluice::proto::auth
