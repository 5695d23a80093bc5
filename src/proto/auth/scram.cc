// SCRAM-SHA-256 secrets, key schedule, nonces and the checks shared by client and server.
#include "proto/auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "proto/auth/base64.h"

namespace sluice::proto::auth {

namespace {

constexpr std::string_view kSecretPrefix = "SCRAM-SHA-256$";

// Decodes base64 that must be exactly one key long.
std::optional<ScramKey> decode_key(std::string_view b64) {
  auto raw = base64_decode(b64);
  if (!raw || raw->size() != kScramKeyLen) return std::nullopt;
  ScramKey k{};
  for (std::size_t i = 0; i < kScramKeyLen; ++i)
    k[i] = static_cast<std::uint8_t>((*raw)[i]);
  return k;
}

// A byte pointer that is never null, even for empty input (some libcrypto calls treat a null
// key as "reuse the previous one").
const unsigned char* bytes_of(std::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::optional<int> parse_scram_iterations(std::string_view text) {
  // kScramMaxIterations has 8 digits; anything longer is out of range without overflowing.
  if (text.empty() || text.size() > 8 || text[0] == '0') return std::nullopt;
  int v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > kScramMaxIterations) return std::nullopt;
  return v;
}

std::optional<ScramSecret> parse_scram_secret(std::string_view text) {
  if (text.size() > kScramMaxMessageLen || text.substr(0, kSecretPrefix.size()) != kSecretPrefix) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(kSecretPrefix.size());
  // <iterations>:<salt>$<stored>:<server>
  const auto dollar = rest.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  const std::string_view params = rest.substr(0, dollar);
  const std::string_view keys = rest.substr(dollar + 1);
  const auto c1 = params.find(':');
  const auto c2 = keys.find(':');
  if (c1 == std::string_view::npos || c2 == std::string_view::npos) return std::nullopt;

  auto iterations = parse_scram_iterations(params.substr(0, c1));
  auto salt = base64_decode(params.substr(c1 + 1));  // rejects a second ':' or '$'
  auto stored = decode_key(keys.substr(0, c2));
  auto server = decode_key(keys.substr(c2 + 1));
  if (!iterations || !salt || salt->empty() || !stored || !server) return std::nullopt;
  return ScramSecret{*iterations, std::move(*salt), *stored, *server};
}

std::string format_scram_secret(const ScramSecret& secret) {
  std::string out(kSecretPrefix);
  out += std::to_string(secret.iterations);
  out += ':';
  out += base64_encode(secret.salt);
  out += '$';
  out += base64_encode(secret.stored_key);
  out += ':';
  out += base64_encode(secret.server_key);
  return out;
}

std::string scram_saslprep(std::string_view password) {
  // See the header: ASCII is what Postgres leaves unchanged; everything else passes through raw.
  return std::string(password);
}

bool scram_hmac(std::span<const std::uint8_t> key, std::string_view data, ScramKey& out) {
  static const unsigned char kEmpty = 0;
  unsigned int len = 0;
  const unsigned char* k = key.empty() ? &kEmpty : key.data();
  if (HMAC(EVP_sha256(), k, static_cast<int>(key.size()), bytes_of(data), data.size(), out.data(),
           &len) == nullptr) {
    return false;
  }
  return len == kScramKeyLen;
}

bool scram_sha256(std::span<const std::uint8_t> data, ScramKey& out) {
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    return false;
  }
  return len == kScramKeyLen;
}

core::Result<ScramKeys> scram_derive_keys(std::string_view password, std::string_view salt,
                                          int iterations) {
  if (iterations < 1 || iterations > kScramMaxIterations) {
    return core::Error{"SCRAM iteration count out of range"};
  }
  if (salt.empty()) return core::Error{"empty SCRAM salt"};
  std::string prepared = scram_saslprep(password);
  ScramKey salted{};
  const int ok = PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(bytes_of(prepared)),
                                   static_cast<int>(prepared.size()), bytes_of(salt),
                                   static_cast<int>(salt.size()), iterations, EVP_sha256(),
                                   static_cast<int>(salted.size()), salted.data());
  OPENSSL_cleanse(prepared.data(), prepared.size());
  ScramKeys keys;
  const bool derived = ok == 1 && scram_hmac(salted, "Client Key", keys.client_key) &&
                       scram_hmac(salted, "Server Key", keys.server_key);
  OPENSSL_cleanse(salted.data(), salted.size());
  if (!derived) return core::Error{"SCRAM key derivation failed in libcrypto"};
  return keys;
}

core::Result<ScramSecret> make_scram_secret(std::string_view password, std::string_view salt,
                                            int iterations) {
  auto keys = scram_derive_keys(password, salt, iterations);
  if (!keys) return core::Error{keys.error()};
  ScramSecret secret{iterations, std::string(salt), {}, keys->server_key};
  const bool ok = scram_sha256(keys->client_key, secret.stored_key);
  OPENSSL_cleanse(keys->client_key.data(), keys->client_key.size());
  if (!ok) return core::Error{"SHA-256 failed in libcrypto"};
  return secret;
}

core::Result<ScramSecret> make_scram_secret(std::string_view password) {
  std::string salt(kScramDefaultSaltLen, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) !=
      1) {
    return core::Error{"could not generate random salt"};
  }
  return make_scram_secret(password, salt, kScramDefaultIterations);
}

core::Result<std::string> scram_nonce() {
  unsigned char raw[kScramRawNonceLen];
  if (RAND_bytes(raw, sizeof raw) != 1) return core::Error{"could not generate random nonce"};
  return base64_encode(std::span<const std::uint8_t>(raw, sizeof raw));
}

bool scram_printable(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

bool scram_key_equal(const ScramKey& a, const ScramKey& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sluice::proto::auth
