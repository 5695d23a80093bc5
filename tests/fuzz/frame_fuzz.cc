// Fuzz target: walk typed frames through decode_header and read bodies with BodyReader.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "proto/frame.h"
#include "proto/reader.h"

namespace {

using sluice::proto::BodyReader;
using sluice::proto::decode_header;
using sluice::proto::Header;
using sluice::proto::HeaderStatus;
using sluice::proto::kHeaderLen;
using sluice::proto::read_be32;

// Reads the body with a sequence of operations chosen by the body's own bytes; every read
// either fails without consuming or consumes exactly what it returned.
void walk_body(std::string_view body) {
  BodyReader r(body);
  std::size_t op_index = 0;
  while (!r.at_end()) {
    const std::size_t before = r.remaining();
    const auto op = static_cast<unsigned char>(body[op_index++ % body.size()]) % 6;
    std::size_t used = 0;
    bool ok = false;
    switch (op) {
      case 0:
        if (auto s = r.cstring()) {
          ok = true;
          used = s->size() + 1;
          SLUICE_FUZZ_CHECK(s->find('\0') == std::string_view::npos);
        }
        break;
      case 1:
        ok = r.u8().has_value();
        used = 1;
        break;
      case 2:
        ok = r.u16().has_value();
        used = 2;
        break;
      case 3:
        ok = r.u32().has_value();
        used = 4;
        break;
      case 4: {
        const std::size_t want = op_index % 7;
        if (auto b = r.bytes(want)) {
          ok = true;
          used = want;
          SLUICE_FUZZ_CHECK(b->size() == want);
        }
        break;
      }
      default:
        used = r.rest().size();
        ok = true;
        SLUICE_FUZZ_CHECK(used == before);
        break;
    }
    if (ok) {
      SLUICE_FUZZ_CHECK(r.remaining() + used == before);
    } else {
      SLUICE_FUZZ_CHECK(r.remaining() == before);
      // A failed read makes no progress: fall back to one byte so the loop ends.
      SLUICE_FUZZ_CHECK(r.u8().has_value());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  // The first byte picks a length cap, so both sides of every cap get exercised.
  if (size < 1) return 0;
  const std::uint32_t caps[] = {4, 5, 64, 1024, 1u << 20, 0xffffffffu};
  const std::uint32_t max_len = caps[static_cast<unsigned char>(p[0]) % 6];
  ++p;
  --size;

  std::size_t off = 0;
  while (off < size) {
    const std::size_t avail = size - off;
    // Every prefix shorter than a header needs more, whatever the bytes are.
    Header h;
    for (std::size_t n = 0; n < kHeaderLen && n <= avail; ++n) {
      SLUICE_FUZZ_CHECK(decode_header(p + off, n, max_len, h) == HeaderStatus::NeedMore);
    }
    const HeaderStatus st = decode_header(p + off, avail, max_len, h);
    if (st == HeaderStatus::NeedMore) {
      SLUICE_FUZZ_CHECK(avail < kHeaderLen);
      break;
    }
    const std::uint32_t raw_len = read_be32(p + off + 1);
    if (st == HeaderStatus::LengthTooSmall) {
      SLUICE_FUZZ_CHECK(raw_len < 4);
      break;
    }
    if (st == HeaderStatus::LengthTooLarge) {
      SLUICE_FUZZ_CHECK((raw_len > max_len || raw_len > sluice::proto::kMaxFrameLen) &&
                        raw_len >= 4);
      break;
    }
    SLUICE_FUZZ_CHECK(st == HeaderStatus::Ok);
    SLUICE_FUZZ_CHECK(h.len == raw_len && h.len >= 4 && h.len <= max_len &&
                      h.len <= sluice::proto::kMaxFrameLen);
    SLUICE_FUZZ_CHECK(h.type == p[off]);
    SLUICE_FUZZ_CHECK(h.wire_size() == h.body_size() + kHeaderLen);
    if (h.wire_size() > avail) break;  // incomplete frame: a reader would wait
    walk_body(std::string_view(p + off + kHeaderLen, h.body_size()));
    const std::size_t next = off + h.wire_size();
    SLUICE_FUZZ_CHECK(next > off && next <= size);  // progress, within bounds
    off = next;
  }
  return 0;
}
