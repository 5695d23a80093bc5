// MD5 password hashing, client response and verification.
#include "proto/auth/md5.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace sluice::proto::auth {

core::Result<std::string> md5_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1 || len != 16) {
    return core::Error{"MD5 is not available in libcrypto"};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '\0');
  for (unsigned int i = 0; i < 16; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

core::Result<std::string> md5_password_hash(std::string_view password, std::string_view user) {
  std::string input;
  input.reserve(password.size() + user.size());
  input.append(password).append(user);
  auto hex = md5_hex(input);
  OPENSSL_cleanse(input.data(), input.size());
  if (!hex) return hex;
  return "md5" + *hex;
}

bool is_md5_hash(std::string_view s) {
  if (s.size() != kMd5HashLen || s.substr(0, 3) != "md5") return false;
  for (char c : s.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

core::Result<std::string> md5_client_response(std::string_view stored, std::string_view user,
                                              const Md5Salt& salt) {
  std::string inner;
  if (is_md5_hash(stored)) {
    inner = std::string(stored.substr(3));
  } else {
    auto hash = md5_password_hash(stored, user);
    if (!hash) return hash;
    inner = hash->substr(3);
  }
  inner.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  auto outer = md5_hex(inner);
  OPENSSL_cleanse(inner.data(), inner.size());
  if (!outer) return outer;
  return "md5" + *outer;
}

bool md5_verify(std::string_view stored, std::string_view user, const Md5Salt& salt,
                std::string_view client_response) {
  auto expected = md5_client_response(stored, user, salt);
  if (!expected) return false;
  // The expected length is public (always 35), so checking it first leaks nothing.
  if (client_response.size() != expected->size()) return false;
  return CRYPTO_memcmp(expected->data(), client_response.data(), expected->size()) == 0;
}

}  // namespace sluice::proto::auth
