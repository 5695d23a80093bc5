// SCRAM-SHA-256 basics (RFC 5802, RFC 7677) as Postgres uses them: secrets, key schedule, nonces.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::proto::auth {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr std::string_view kScramSha256Plus = "SCRAM-SHA-256-PLUS";
inline constexpr std::string_view kTlsServerEndPoint = "tls-server-end-point";

inline constexpr std::size_t kScramKeyLen = 32;
inline constexpr int kScramDefaultIterations = 4096;  // what Postgres uses
// Upper bound on an iteration count we accept from a server or a secret: each iteration costs
// one HMAC on the event loop (10 million is several seconds of CPU).
inline constexpr int kScramMaxIterations = 10'000'000;
inline constexpr std::size_t kScramDefaultSaltLen = 16;
inline constexpr std::size_t kScramRawNonceLen = 18;
// No legitimate SCRAM message comes near this; longer ones are rejected before parsing.
inline constexpr std::size_t kScramMaxMessageLen = 8192;

using ScramKey = std::array<std::uint8_t, kScramKeyLen>;

// What Postgres stores in pg_authid.rolpassword (and PgBouncer accepts in userlist.txt).
struct ScramSecret {
  int iterations = 0;
  std::string salt;  // raw bytes
  ScramKey stored_key{};
  ScramKey server_key{};
};

// "SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>". Strict:
// decimal iterations in [1, kScramMaxIterations], non-empty salt, keys of exactly 32 bytes.
[[nodiscard]] std::optional<ScramSecret> parse_scram_secret(std::string_view text);
[[nodiscard]] std::string format_scram_secret(const ScramSecret& secret);

// Derives the secret for `password` (after scram_saslprep) with the given salt and iterations.
[[nodiscard]] core::Result<ScramSecret> make_scram_secret(std::string_view password,
                                                          std::string_view salt, int iterations);
// As above with a random 16-byte salt and 4096 iterations, as Postgres does.
[[nodiscard]] core::Result<ScramSecret> make_scram_secret(std::string_view password);

// The password as SCRAM hashes it. Postgres applies SASLprep (RFC 4013) and, when the password
// is not valid UTF-8 or preparation fails, uses the raw bytes. Pure-ASCII passwords are left
// unchanged by Postgres' SASLprep, and so here. Limitation: full SASLprep for non-ASCII
// passwords (mapping, NFKC normalization, prohibited characters) is not implemented; they are
// used as raw bytes. That matches Postgres whenever its preparation is the identity (e.g. text
// already in NFC without non-ASCII spaces or compatibility characters) or fails, and differs
// otherwise (e.g. U+00A0 NO-BREAK SPACE, which SASLprep maps to ' ').
[[nodiscard]] std::string scram_saslprep(std::string_view password);

// ClientKey and ServerKey: enough to authenticate as the user to a server holding the matching
// secret (ClientKey is what a SCRAM exchange with a client recovers).
struct ScramKeys {
  ScramKey client_key{};
  ScramKey server_key{};
};

// Key schedule from a password: SaltedPassword = Hi(saslprep(password), salt, iterations);
// ClientKey = HMAC(SaltedPassword, "Client Key"); ServerKey = HMAC(SaltedPassword, "Server Key").
[[nodiscard]] core::Result<ScramKeys> scram_derive_keys(std::string_view password,
                                                        std::string_view salt, int iterations);

// Primitives; false only if libcrypto fails.
[[nodiscard]] bool scram_hmac(std::span<const std::uint8_t> key, std::string_view data,
                              ScramKey& out);
[[nodiscard]] bool scram_sha256(std::span<const std::uint8_t> data, ScramKey& out);

// 18 random bytes from RAND_bytes, base64-encoded (24 printable characters).
[[nodiscard]] core::Result<std::string> scram_nonce();

// A decimal iteration count without sign or leading zeros, in [1, kScramMaxIterations].
[[nodiscard]] std::optional<int> parse_scram_iterations(std::string_view text);

// Nonce characters: printable ASCII except ',' (RFC 5802 "printable").
[[nodiscard]] bool scram_printable(std::string_view s);

// Constant-time equality of two keys.
[[nodiscard]] bool scram_key_equal(const ScramKey& a, const ScramKey& b);

[[nodiscard]] inline std::string_view as_chars(const ScramKey& k) {
  return {reinterpret_cast<const char*>(k.data()), k.size()};
}

}  // namespace sluice::proto::auth
