// One socket's byte streams: a lazily allocated input buffer and an ordered output queue that
// mixes forwarded bytes (pointers into the peer's input buffer) with bytes sluice generated.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/buffer.h"
#include "net/socket.h"
#include "net/tls.h"

namespace sluice::net {

// Output queue. Forwarded segments point into another stream's input buffer, which must not
// move or be reused until this queue has sent them (the relay enforces it: a source does not
// read or compact while its destination has output pending).
class Outbox {
 public:
  enum class Flush : std::uint8_t { Done, Blocked, Error };

  [[nodiscard]] bool empty() const { return nsegs_ == 0; }
  [[nodiscard]] int free_segs() const { return kMaxSegs - nsegs_; }
  // False when the segment table is full: flush first.
  [[nodiscard]] bool add_forward(const char* p, std::uint32_t n);
  // Bytes built by sluice; returns the string to append to, then call commit_synth(mark).
  [[nodiscard]] std::string& synth() { return synth_; }
  [[nodiscard]] std::size_t synth_mark() const { return synth_.size(); }
  [[nodiscard]] bool commit_synth(std::size_t mark);
  void add_synth(std::string_view bytes);  // flushes nothing; may exceed the table: see below

  // Sends as much as the socket takes, in one sendmsg when it fits.
  Flush flush(int fd, int& err);
  // The same through a TLS session: small segments are gathered into one record.
  Flush flush_tls(TlsConn& tls, int& err);
  // Drops everything queued (connection closing).
  void clear();
  // Copies forwarded segments into the synthetic buffer so the source buffer can be reused.
  void materialize();
  [[nodiscard]] std::size_t pending_bytes() const;
  [[nodiscard]] bool has_forwarded() const;

  static constexpr int kMaxSegs = 6;

 private:
  struct Seg {
    const char* ptr;  // nullptr: synth_[off, off+len)
    std::uint32_t off;
    std::uint32_t len;
  };
  void compact_done();
  // Drops `sent` bytes from the front of the queue.
  void advance(std::size_t sent);

  std::string synth_;
  Seg segs_[kMaxSegs];
  std::uint8_t nsegs_ = 0;
};

// Per-socket state shared by client and server connections.
struct Stream {
  int fd = -1;
  core::IoBuf in;
  std::uint32_t scan = 0;  // offset in `in` up to which frames were handled (forwarded/swallowed)
  Outbox out;
  bool readable = false;  // an edge was seen and the socket may still hold bytes
  bool eof = false;
  // The peer's end of the stream was reported (EPOLLRDHUP/HUP/ERR). The edge that carries it
  // may also carry the last bytes: a short read of those must not be taken for "drained", or
  // the end is never read (no further edge comes).
  bool hup = false;
  // Set once TLS is negotiated on this socket; every read and write then goes through it.
  // Bytes OpenSSL has buffered produce no epoll edge: `read` keeps `readable` set until
  // OpenSSL reports that it needs the socket again.
  std::unique_ptr<TlsConn> tls;

  // All socket I/O of client and server connections goes through these three, so that a TLS
  // layer can sit underneath without the callers knowing.
  //
  // Reads into the free tail of `in` (acquiring a block if needed). Kind::Data with n > 0,
  // WouldBlock, Eof or Error. Clears `readable` when the socket is drained (a short read, unless
  // `hup`: then only the end itself).
  IoResult read(core::BufferPool& pool);
  // Sends queued output (Outbox::flush on the socket).
  Outbox::Flush flush(int& err) { return tls ? out.flush_tls(*tls, err) : out.flush(fd, err); }
  // Best effort, outside the queue: a last message before closing (Terminate, a FATAL).
  void send_now(std::string_view bytes) {
    if (tls) {
      (void)tls->write(bytes.data(), bytes.size());
    } else {
      (void)send_some(fd, bytes.data(), bytes.size());
    }
  }
  // Drops consumed input: after the output that referenced it was sent.
  void consume_scanned() {
    in.lo = scan;
    if (in.lo == in.hi) in.lo = in.hi = scan = 0;
  }
  // Room for `need` bytes from the scan position on, growing past the block if needed; keeps
  // `scan` pointing at the same byte (the buffer may move). Only while no output references it.
  [[nodiscard]] bool reserve(core::BufferPool& pool, std::uint32_t need) {
    std::uint32_t rel = scan - in.lo;
    bool ok = pool.reserve(in, rel + need);
    scan = in.lo + rel;
    return ok;
  }
  // Moves unconsumed input to the front (only while no output references it).
  void compact() {
    scan -= in.lo;
    in.compact();
  }
  [[nodiscard]] std::uint32_t unscanned() const { return in.hi - scan; }
  [[nodiscard]] const char* scan_ptr() const { return in.data + scan; }
};

}  // namespace sluice::net
