// Fuzz target: SCRAM parsers and both sides of the exchange fed with arbitrary messages.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "proto/auth/base64.h"
#include "proto/auth/scram.h"
#include "proto/auth/scram_client.h"
#include "proto/auth/scram_message.h"
#include "proto/auth/scram_server.h"

using namespace sluice::proto::auth;

namespace {

// The RFC 7677 example, so seeds can carry a real exchange.
constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

struct Fixture {
  ScramSecret secret;
  ScramKeys keys;
};

// Derived once: the fuzzer must never run PBKDF2 per input.
const Fixture& fixture() {
  static const Fixture f = [] {
    const std::string salt = *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    Fixture x{*make_scram_secret("pencil", salt, 4096), *scram_derive_keys("pencil", salt, 4096)};
    return x;
  }();
  return f;
}

ScramServer make_server() {
  ScramServer::Options o;
  o.nonce = std::string(kServerNonce);
  return ScramServer(fixture().secret, o);
}

// Client from keys (no PBKDF2, whatever iteration count the input names).
ScramClient make_client() {
  ScramClient::Options o;
  o.user = "user";
  o.nonce = std::string(kClientNonce);
  return ScramClient::with_keys(fixture().keys, o);
}

void check_server_first(std::string_view input) {
  ScramServer server = make_server();
  auto r = server.on_client_first(input);
  SLUICE_FUZZ_CHECK(r.ok() == (server.failure() == ScramFailure::None));
  if (!r.ok()) return;
  auto parsed = parse_client_first(input);
  SLUICE_FUZZ_CHECK(parsed.ok());
  SLUICE_FUZZ_CHECK(r->starts_with("r=" + std::string(parsed->nonce) + std::string(kServerNonce)));
  SLUICE_FUZZ_CHECK(parse_server_first(*r).ok());
}

void check_server_final(std::string_view input) {
  ScramServer server = make_server();
  SLUICE_FUZZ_CHECK(server.on_client_first(kClientFirst).ok());
  auto r = server.on_client_final(input);
  if (!r.ok()) {
    SLUICE_FUZZ_CHECK(!server.succeeded() && server.failure() != ScramFailure::None);
    SLUICE_FUZZ_CHECK(server.recovered_keys() == nullptr);
    return;
  }
  // Only the real proof gets through, and it reveals the real ClientKey.
  SLUICE_FUZZ_CHECK(server.succeeded());
  SLUICE_FUZZ_CHECK(server.recovered_keys() != nullptr);
  SLUICE_FUZZ_CHECK(server.recovered_keys()->client_key == fixture().keys.client_key);
  SLUICE_FUZZ_CHECK(parse_server_final(*r).ok());
}

void check_client_first(std::string_view input) {
  ScramClient client = make_client();
  SLUICE_FUZZ_CHECK(client.client_first().ok());
  auto r = client.on_server_first(input);
  if (!r.ok()) return;
  auto parsed = parse_server_first(input);
  SLUICE_FUZZ_CHECK(parsed.ok() && parsed->nonce.starts_with(kClientNonce));
  auto final_msg = parse_client_final(*r);
  SLUICE_FUZZ_CHECK(final_msg.ok() && final_msg->nonce == parsed->nonce);
  SLUICE_FUZZ_CHECK(final_msg->cbind_input == "n,,");
}

void check_client_final(std::string_view input) {
  ScramClient client = make_client();
  SLUICE_FUZZ_CHECK(client.client_first().ok());
  SLUICE_FUZZ_CHECK(client.on_server_first(kServerFirst).ok());
  auto r = client.on_server_final(input);
  // Base64 is canonical, so exactly one message proves the server.
  SLUICE_FUZZ_CHECK(r.ok() == (input == kServerFinal));
  SLUICE_FUZZ_CHECK(client.succeeded() == r.ok());
}

void check_secret_and_base64(std::string_view input) {
  if (auto s = parse_scram_secret(input)) {
    SLUICE_FUZZ_CHECK(format_scram_secret(*s) == input);  // the accepted form is canonical
  }
  if (auto d = base64_decode(input)) SLUICE_FUZZ_CHECK(base64_encode(*d) == input);
  auto back = base64_decode(base64_encode(input));
  SLUICE_FUZZ_CHECK(back && *back == input);
  if (auto n = parse_scram_iterations(input)) {
    SLUICE_FUZZ_CHECK(*n >= 1 && *n <= kScramMaxIterations && std::to_string(*n) == input);
  }
}

void check_parsers(std::string_view input) {
  if (auto m = parse_client_first(input)) {
    SLUICE_FUZZ_CHECK(!m->nonce.empty() && scram_printable(m->nonce));
    SLUICE_FUZZ_CHECK(m->gs2_header.size() + m->bare.size() == input.size());
  }
  if (auto m = parse_client_final(input)) {
    SLUICE_FUZZ_CHECK(input.starts_with(m->without_proof));
    SLUICE_FUZZ_CHECK(input.substr(m->without_proof.size()).starts_with(",p="));
  }
  if (auto m = parse_server_final(input)) {
    SLUICE_FUZZ_CHECK(input.starts_with(m->error.empty() ? "v=" : "e="));
  }
  if (auto m = parse_server_first(input)) {
    SLUICE_FUZZ_CHECK(!m->salt.empty() && m->iterations >= 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 7) {
    case 0:
      check_server_first(input);
      break;
    case 1:
      check_server_final(input);
      break;
    case 2:
      check_client_first(input);
      break;
    case 3:
      check_client_final(input);
      break;
    case 4:
      check_secret_and_base64(input);
      break;
    case 5:
      check_parsers(input);
      break;
    default: {
      // Two messages to one server, split at the first NUL.
      const auto cut = input.find('\0');
      if (cut == std::string_view::npos) break;
      ScramServer server = make_server();
      if (server.on_client_first(input.substr(0, cut)).ok()) {
        auto r = server.on_client_final(input.substr(cut + 1));
        SLUICE_FUZZ_CHECK(r.ok() == server.succeeded());
      }
      break;
    }
  }
  return 0;
}
