// Parsing of the first packet a client sends.
#include "proto/startup.h"

#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/reader.h"

namespace sluice::proto {

StartupStatus startup_length(const char* p, std::size_t n, std::uint32_t& len) {
  if (n < 4) return StartupStatus::NeedMore;
  len = read_be32(p);
  if (len < 8 || len > kMaxStartupLen) return StartupStatus::Bad;
  return StartupStatus::Ok;
}

StartupPacket parse_startup(const char* p, std::uint32_t len) {
  StartupPacket pkt;
  if (len < 8) {
    pkt.error = "packet too short";
    return pkt;
  }
  BodyReader r(p + 4, len - 4);
  auto code = r.u32();
  if (!code) {
    pkt.error = "packet too short";
    return pkt;
  }
  switch (*code) {
    case kSslRequestCode:
      pkt.kind = r.at_end() ? StartupKind::SslRequest : StartupKind::Invalid;
      if (pkt.kind == StartupKind::Invalid) pkt.error = "malformed SSLRequest";
      return pkt;
    case kGssEncRequestCode:
      pkt.kind = r.at_end() ? StartupKind::GssEncRequest : StartupKind::Invalid;
      if (pkt.kind == StartupKind::Invalid) pkt.error = "malformed GSSENCRequest";
      return pkt;
    case kCancelRequestCode: {
      auto pid = r.u32();
      auto secret = r.u32();
      if (!pid || !secret || !r.at_end()) {
        pkt.error = "malformed CancelRequest";
        return pkt;
      }
      pkt.kind = StartupKind::Cancel;
      pkt.cancel_pid = *pid;
      pkt.cancel_secret = *secret;
      return pkt;
    }
    default:
      break;
  }
  pkt.version = *code;
  if ((pkt.version >> 16) != 3) {
    pkt.error = "unsupported frontend protocol " + std::to_string(pkt.version >> 16) + "." +
                std::to_string(pkt.version & 0xffff) + ": server supports 3.0";
    return pkt;
  }
  for (;;) {
    auto key = r.cstring();
    if (!key) {
      pkt.error = "startup packet not terminated";
      return pkt;
    }
    if (key->empty()) break;
    auto value = r.cstring();
    if (!value) {
      pkt.error = "startup parameter without value";
      return pkt;
    }
    pkt.params.emplace_back(std::string(*key), std::string(*value));
  }
  if (!r.at_end()) {
    pkt.error = "garbage after startup packet";
    return pkt;
  }
  pkt.kind = StartupKind::Startup;
  return pkt;
}

}  // namespace sluice::proto
