// Parsers for the SCRAM messages; every rejection says which part was wrong.
#include "proto/auth/scram_message.h"

#include <optional>

#include "proto/auth/base64.h"

namespace sluice::proto::auth {

namespace {

struct Attr {
  char name;
  std::string_view value;
  std::string_view field;  // "<name>=<value>" inside the message
};

// Walks "a=x,b=y,..." one attribute at a time. Values never contain ',' (RFC 5802).
class AttrReader {
 public:
  explicit AttrReader(std::string_view s) : rest_(s) {}

  // The next attribute, or nullopt if there is none or it is not "<ALPHA>=<value>".
  [[nodiscard]] std::optional<Attr> next() {
    if (done_) return std::nullopt;
    std::string_view field = rest_;
    const auto comma = rest_.find(',');
    if (comma == std::string_view::npos) {
      done_ = true;
    } else {
      field = rest_.substr(0, comma);
      rest_ = rest_.substr(comma + 1);
    }
    if (field.size() < 2 || !is_alpha(field[0]) || field[1] != '=') return std::nullopt;
    return Attr{field[0], field.substr(2), field};
  }
  [[nodiscard]] bool done() const { return done_; }

 private:
  static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

  std::string_view rest_;
  bool done_ = false;
};

core::Error malformed(std::string_view what) {
  return core::Error{"malformed SCRAM message: " + std::string(what)};
}

// Size and NUL checks every message gets first (Postgres handles SASL data as C strings).
std::optional<core::Error> check_envelope(std::string_view msg) {
  if (msg.size() > kScramMaxMessageLen) return malformed("message too long");
  if (msg.empty()) return malformed("empty message");
  if (msg.find('\0') != std::string_view::npos) return malformed("NUL byte in message");
  return std::nullopt;
}

// Reads the next attribute and requires its name.
std::optional<Attr> expect(AttrReader& r, char name) {
  auto a = r.next();
  if (!a || a->name != name) return std::nullopt;
  return a;
}

core::Error expected(char name) {
  return malformed(std::string("expected attribute \"") + name + "\"");
}

bool valid_saslname(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '=') continue;
    const auto esc = s.substr(i + 1, 2);
    if (esc != "2C" && esc != "3D") return false;
    i += 2;
  }
  return true;
}

bool valid_cbind_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Optional trailing extensions: each "<ALPHA>=<non-empty value>".
std::optional<core::Error> skip_extensions(AttrReader& r) {
  while (!r.done()) {
    auto a = r.next();
    if (!a || a->value.empty()) return malformed("invalid extension attribute");
  }
  return std::nullopt;
}

}  // namespace

std::string_view gs2_header(CbindFlag flag) {
  switch (flag) {
    case CbindFlag::NotSupported:
      return "n,,";
    case CbindFlag::ClientOnly:
      return "y,,";
    case CbindFlag::TlsServerEndPoint:
      return "p=tls-server-end-point,,";
  }
  return "n,,";
}

std::string scram_encode_saslname(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

core::Result<ClientFirstMessage> parse_client_first(std::string_view msg) {
  if (auto e = check_envelope(msg)) return *e;
  ClientFirstMessage m;
  std::size_t pos = 0;
  if (msg.starts_with("n,")) {
    m.flag = CbindFlag::NotSupported;
    pos = 1;
  } else if (msg.starts_with("y,")) {
    m.flag = CbindFlag::ClientOnly;
    pos = 1;
  } else if (msg.starts_with("p=")) {
    pos = msg.find(',', 2);
    if (pos == std::string_view::npos) return malformed("unterminated channel-binding flag");
    m.cbind_name = msg.substr(2, pos - 2);
    if (!valid_cbind_name(m.cbind_name)) return malformed("invalid channel-binding name");
    m.flag = CbindFlag::TlsServerEndPoint;  // the caller checks cbind_name
  } else {
    return malformed("unexpected channel-binding flag");
  }
  ++pos;  // the ',' after the flag
  if (msg.substr(pos).starts_with("a=")) {
    return core::Error{"client uses authorization identity, but it is not supported"};
  }
  if (pos >= msg.size() || msg[pos] != ',') return malformed("expected ',' after the gs2 flag");
  ++pos;
  m.gs2_header = msg.substr(0, pos);
  m.bare = msg.substr(pos);
  if (m.bare.starts_with('m')) return core::Error{"client requires an unsupported SCRAM extension"};

  AttrReader r(m.bare);
  auto user = expect(r, 'n');
  if (!user) return expected('n');
  if (!valid_saslname(user->value)) return malformed("badly encoded user name");
  m.user = user->value;
  auto nonce = expect(r, 'r');
  if (!nonce || nonce->value.empty()) return expected('r');
  if (!scram_printable(nonce->value)) return malformed("non-printable characters in SCRAM nonce");
  m.nonce = nonce->value;
  if (auto e = skip_extensions(r)) return *e;
  return m;
}

core::Result<ServerFirstMessage> parse_server_first(std::string_view msg) {
  if (auto e = check_envelope(msg)) return *e;
  if (msg.starts_with('m')) return core::Error{"server requires an unsupported SCRAM extension"};
  AttrReader r(msg);
  ServerFirstMessage m;
  auto nonce = expect(r, 'r');
  if (!nonce || nonce->value.empty()) return expected('r');
  if (!scram_printable(nonce->value)) return malformed("non-printable characters in SCRAM nonce");
  m.nonce = nonce->value;
  auto salt = expect(r, 's');
  if (!salt) return expected('s');
  auto raw = base64_decode(salt->value);
  if (!raw || raw->empty()) return malformed("invalid salt");
  m.salt = std::move(*raw);
  auto iter = expect(r, 'i');
  if (!iter) return expected('i');
  auto n = parse_scram_iterations(iter->value);
  if (!n) return malformed("invalid iteration count");
  m.iterations = *n;
  if (!r.done()) return malformed("garbage at end of server-first-message");
  return m;
}

core::Result<ClientFinalMessage> parse_client_final(std::string_view msg) {
  if (auto e = check_envelope(msg)) return *e;
  AttrReader r(msg);
  ClientFinalMessage m;
  auto cbind = expect(r, 'c');
  if (!cbind) return expected('c');
  auto input = base64_decode(cbind->value);
  if (!input || input->empty()) return malformed("invalid channel-binding attribute");
  m.cbind_input = std::move(*input);
  auto nonce = expect(r, 'r');
  if (!nonce || nonce->value.empty()) return expected('r');
  if (!scram_printable(nonce->value)) return malformed("non-printable characters in SCRAM nonce");
  m.nonce = nonce->value;
  std::optional<Attr> proof;
  while (!proof) {
    auto a = r.next();
    if (!a) return expected('p');
    if (a->name == 'p') {
      proof = a;
    } else if (a->value.empty()) {
      return malformed("invalid extension attribute");
    }
  }
  if (!r.done()) return malformed("garbage at end of client-final-message");
  const auto proof_at = static_cast<std::size_t>(proof->field.data() - msg.data());
  m.without_proof = msg.substr(0, proof_at - 1);  // drop the ',' before "p="
  auto raw = base64_decode(proof->value);
  if (!raw || raw->size() != kScramKeyLen) return malformed("invalid proof");
  for (std::size_t i = 0; i < kScramKeyLen; ++i)
    m.proof[i] = static_cast<std::uint8_t>((*raw)[i]);
  return m;
}

core::Result<ServerFinalMessage> parse_server_final(std::string_view msg) {
  if (auto e = check_envelope(msg)) return *e;
  AttrReader r(msg);
  auto a = r.next();
  if (!a || (a->name != 'e' && a->name != 'v')) return expected('v');
  if (!r.done()) return malformed("garbage at end of server-final-message");
  ServerFinalMessage m;
  if (a->name == 'e') {
    if (a->value.empty()) return malformed("empty server error");
    m.error = a->value;
    return m;
  }
  auto raw = base64_decode(a->value);
  if (!raw || raw->size() != kScramKeyLen) return malformed("invalid server signature");
  for (std::size_t i = 0; i < kScramKeyLen; ++i) {
    m.verifier[i] = static_cast<std::uint8_t>((*raw)[i]);
  }
  return m;
}

}  // namespace sluice::proto::auth
