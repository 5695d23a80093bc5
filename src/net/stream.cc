// Outbox flushing and Stream reads.
#include "net/stream.h"

#include <algorithm>
#include <cstring>

namespace sluice::net {

bool Outbox::add_forward(const char* p, std::uint32_t n) {
  if (n == 0) return true;
  if (nsegs_ > 0) {
    Seg& last = segs_[nsegs_ - 1];
    if (last.ptr != nullptr && last.ptr + last.len == p) {
      last.len += n;
      return true;
    }
  }
  if (nsegs_ == kMaxSegs) return false;
  segs_[nsegs_++] = Seg{p, 0, n};
  return true;
}

bool Outbox::commit_synth(std::size_t mark) {
  auto n = static_cast<std::uint32_t>(synth_.size() - mark);
  if (n == 0) return true;
  if (nsegs_ > 0) {
    Seg& last = segs_[nsegs_ - 1];
    if (last.ptr == nullptr && last.off + last.len == mark) {
      last.len += n;
      return true;
    }
  }
  if (nsegs_ == kMaxSegs) {
    synth_.resize(mark);
    return false;
  }
  segs_[nsegs_++] = Seg{nullptr, static_cast<std::uint32_t>(mark), n};
  return true;
}

void Outbox::add_synth(std::string_view bytes) {
  std::size_t mark = synth_.size();
  synth_.append(bytes);
  if (!commit_synth(mark)) {
    // Table full: fold everything into the synthetic buffer (rare; copies forwarded bytes).
    std::string all;
    all.reserve(pending_bytes() + bytes.size());
    for (std::uint8_t i = 0; i < nsegs_; ++i) {
      const Seg& s = segs_[i];
      all.append(s.ptr != nullptr ? s.ptr : synth_.data() + s.off, s.len);
    }
    all.append(bytes);
    synth_ = std::move(all);
    nsegs_ = 1;
    segs_[0] = Seg{nullptr, 0, static_cast<std::uint32_t>(synth_.size())};
  }
}

std::size_t Outbox::pending_bytes() const {
  std::size_t n = 0;
  for (std::uint8_t i = 0; i < nsegs_; ++i)
    n += segs_[i].len;
  return n;
}

bool Outbox::has_forwarded() const {
  for (std::uint8_t i = 0; i < nsegs_; ++i) {
    if (segs_[i].ptr != nullptr) return true;
  }
  return false;
}

void Outbox::materialize() {
  if (!has_forwarded()) return;
  std::string all;
  all.reserve(pending_bytes());
  for (std::uint8_t i = 0; i < nsegs_; ++i) {
    const Seg& s = segs_[i];
    all.append(s.ptr != nullptr ? s.ptr : synth_.data() + s.off, s.len);
  }
  synth_ = std::move(all);
  nsegs_ = 1;
  segs_[0] = Seg{nullptr, 0, static_cast<std::uint32_t>(synth_.size())};
}

void Outbox::clear() {
  nsegs_ = 0;
  std::string().swap(synth_);
}

void Outbox::advance(std::size_t sent) {
  std::uint8_t done = 0;
  while (done < nsegs_ && sent >= segs_[done].len) {
    sent -= segs_[done].len;
    ++done;
  }
  if (done < nsegs_ && sent > 0) {
    Seg& s = segs_[done];
    if (s.ptr != nullptr) {
      s.ptr += sent;
    } else {
      s.off += static_cast<std::uint32_t>(sent);
    }
    s.len -= static_cast<std::uint32_t>(sent);
  }
  if (done > 0) {
    std::memmove(segs_, segs_ + done, sizeof(Seg) * (nsegs_ - done));
    nsegs_ = static_cast<std::uint8_t>(nsegs_ - done);
  }
}

Outbox::Flush Outbox::flush(int fd, int& err) {
  while (nsegs_ > 0) {
    iovec iov[kMaxSegs];
    std::size_t total = 0;
    for (std::uint8_t i = 0; i < nsegs_; ++i) {
      const Seg& s = segs_[i];
      iov[i].iov_base = const_cast<char*>(s.ptr != nullptr ? s.ptr : synth_.data() + s.off);
      iov[i].iov_len = s.len;
      total += s.len;
    }
    IoResult r = nsegs_ == 1
                     ? send_some(fd, static_cast<const char*>(iov[0].iov_base), iov[0].iov_len)
                     : send_vec(fd, iov, nsegs_);
    if (r.kind == IoResult::Kind::WouldBlock) return Flush::Blocked;
    if (r.kind == IoResult::Kind::Error) {
      err = r.err;
      return Flush::Error;
    }
    if (r.n == total) {  // the common case: all of it went
      nsegs_ = 0;
      break;
    }
    advance(r.n);
    if (nsegs_ > 0 && r.n == 0) return Flush::Blocked;
  }
  // Everything sent: synthetic bytes are rare, so give their memory back at once.
  if (synth_.capacity() > 256) {
    std::string().swap(synth_);
  } else {
    synth_.clear();
  }
  return Flush::Done;
}

Outbox::Flush Outbox::flush_tls(TlsConn& tls, int& err) {
  // One TLS record holds at most 16 KiB: segments smaller than that are copied together so
  // that a flush is one record and one send, as without TLS. A retry after WANT_WRITE offers
  // at least the bytes offered before, starting at the same byte (OpenSSL requires it).
  constexpr std::size_t kRecord = 16384;
  thread_local std::string stage;
  while (nsegs_ > 0) {
    const char* p = segs_[0].ptr != nullptr ? segs_[0].ptr : synth_.data() + segs_[0].off;
    std::size_t len = segs_[0].len;
    if (nsegs_ > 1 && len < kRecord) {
      stage.clear();
      for (std::uint8_t i = 0; i < nsegs_ && stage.size() < kRecord; ++i) {
        const Seg& s = segs_[i];
        const char* sp = s.ptr != nullptr ? s.ptr : synth_.data() + s.off;
        stage.append(sp, std::min<std::size_t>(s.len, kRecord - stage.size()));
      }
      p = stage.data();
      len = stage.size();
    }
    IoResult r = tls.write(p, len);
    if (r.kind == IoResult::Kind::WouldBlock) return Flush::Blocked;
    if (r.kind == IoResult::Kind::Error) {
      err = r.err;
      return Flush::Error;
    }
    advance(r.n);
    if (nsegs_ > 0 && r.n == 0) return Flush::Blocked;
  }
  if (stage.capacity() > kRecord * 2) std::string().swap(stage);
  if (synth_.capacity() > 256) {
    std::string().swap(synth_);
  } else {
    synth_.clear();
  }
  return Flush::Done;
}

IoResult Stream::read(core::BufferPool& pool) {
  if (!in.allocated()) pool.acquire(in);
  if (in.free_tail() == 0) return IoResult{IoResult::Kind::Data, 0, 0};  // full: caller compacts
  std::uint32_t want = in.free_tail();
  IoResult r = tls ? tls->read(in.end(), want) : recv_some(fd, in.end(), want);
  if (r.kind == IoResult::Kind::Data) {
    in.hi += static_cast<std::uint32_t>(r.n);
    if (r.n < want && !hup) readable = false;
  } else if (r.kind == IoResult::Kind::WouldBlock) {
    readable = false;
  } else if (r.kind == IoResult::Kind::Eof) {
    readable = false;
    eof = true;
  } else {
    readable = false;
  }
  return r;
}

}  // namespace sluice::net
