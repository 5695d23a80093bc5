// Fuzz target: startup_length then parse_startup, checked against the writer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "proto/codes.h"
#include "proto/frame.h"
#include "proto/startup.h"
#include "proto/writer.h"

using namespace sluice::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  std::uint32_t len = 0;
  const StartupStatus st = startup_length(p, size, len);
  if (size < 4) {
    SLUICE_FUZZ_CHECK(st == StartupStatus::NeedMore);
    return 0;
  }
  if (st == StartupStatus::Bad) {
    const std::uint32_t raw = read_be32(p);
    SLUICE_FUZZ_CHECK(raw < 8 || raw > kMaxStartupLen);
    return 0;
  }
  SLUICE_FUZZ_CHECK(st == StartupStatus::Ok);
  SLUICE_FUZZ_CHECK(len >= 8 && len <= kMaxStartupLen);
  if (len > size) return 0;  // a reader would wait for the rest

  const StartupPacket pkt = parse_startup(p, len);
  SLUICE_FUZZ_CHECK((pkt.kind == StartupKind::Invalid) == !pkt.error.empty());
  const std::uint32_t code = read_be32(p + 4);
  switch (pkt.kind) {
    case StartupKind::SslRequest:
      SLUICE_FUZZ_CHECK(len == 8 && code == kSslRequestCode);
      break;
    case StartupKind::GssEncRequest:
      SLUICE_FUZZ_CHECK(len == 8 && code == kGssEncRequestCode);
      break;
    case StartupKind::Cancel: {
      SLUICE_FUZZ_CHECK(len == 16 && code == kCancelRequestCode);
      std::string out;
      write_cancel_request(out, pkt.cancel_pid, pkt.cancel_secret);
      SLUICE_FUZZ_CHECK(out == std::string_view(p, len));
      break;
    }
    case StartupKind::Startup: {
      SLUICE_FUZZ_CHECK((pkt.version >> 16) == 3 && pkt.version == code);
      // Re-encoding the parameters gives back the same bytes after the version word.
      std::string out;
      write_startup(out, pkt.params);
      SLUICE_FUZZ_CHECK(out.size() == len);
      SLUICE_FUZZ_CHECK(std::string_view(out).substr(8) == std::string_view(p + 8, len - 8));
      for (const auto& [k, v] : pkt.params) {
        SLUICE_FUZZ_CHECK(!k.empty());
        SLUICE_FUZZ_CHECK(k.find('\0') == std::string::npos && v.find('\0') == std::string::npos);
      }
      break;
    }
    case StartupKind::Invalid:
      break;
  }
  return 0;
}
