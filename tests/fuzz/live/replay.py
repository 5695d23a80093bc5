# Sending one case to the pooler: its writes in order, on as many sockets as it has connections,
# reading whatever comes back in between (never blocking on a write: the pooler may stop reading
# from us while its answers are unread). A CancelRequest gets the backend key the case's first
# connection was given, so that cancels in recorded cases are real.
import selectors
import socket
import struct
import time

from cases import CANCEL_REQUEST, Case

KEEP = 1 << 16  # bytes of each connection's answers kept (for the key and for reports)


class Outcome:
    def __init__(self):
        self.sent = 0
        self.received = 0
        self.closed_by_peer = 0
        self.timed_out = False
        self.error_codes: list[str] = []  # SQLSTATEs of ErrorResponses seen at the start of answers
        self.first_answer = b""


def replay(case: Case, host: str, port: int, budget: float = 3.0) -> Outcome:
    """Send the case; give up (and close) after `budget` seconds."""
    out = Outcome()
    sched = case.schedule()
    socks: dict[int, socket.socket] = {}
    answers: dict[int, bytearray] = {}
    dead: set[int] = set()
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + budget

    def drain(until: float) -> None:
        while socks.keys() - dead:
            left = min(until, deadline) - time.monotonic()
            if left <= 0:
                return
            events = sel.select(left)
            if not events:
                return
            for key, _ in events:
                ci = key.data
                try:
                    chunk = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    _forget(ci)
                    out.closed_by_peer += 1
                    continue
                out.received += len(chunk)
                buf = answers[ci]
                if len(buf) < KEEP:
                    buf += chunk[: KEEP - len(buf)]

    def _forget(ci: int) -> None:
        if ci in dead:
            return
        dead.add(ci)
        try:
            sel.unregister(socks[ci])
        except (KeyError, ValueError):
            pass

    def send(ci: int, data: bytes) -> None:
        s = socks[ci]
        view = memoryview(data)
        while view and ci not in dead:
            try:
                n = s.send(view)
                view = view[n:]
                out.sent += n
            except BlockingIOError:
                # The pooler is not reading: read its answers (it may be waiting for us to) and retry.
                if time.monotonic() >= deadline:
                    out.timed_out = True
                    return
                drain(time.monotonic() + 0.005)
                sel_w = selectors.DefaultSelector()
                sel_w.register(s, selectors.EVENT_WRITE)
                sel_w.select(0.01)
                sel_w.close()
            except OSError:
                _forget(ci)
                return

    try:
        for ci, data, gap in sched:
            if time.monotonic() >= deadline:
                out.timed_out = True
                break
            if gap:
                drain(time.monotonic() + gap)
            if ci not in socks:
                try:
                    s = socket.create_connection((host, port), timeout=2)
                except OSError:
                    continue
                s.setblocking(False)
                socks[ci] = s
                answers[ci] = bytearray()
                sel.register(s, selectors.EVENT_READ, ci)
            if ci in dead:
                continue
            if ci > 0 and len(data) == 16 and struct.unpack_from("!II", data) == (16, CANCEL_REQUEST):
                key = _backend_key(answers.get(0, b""))
                if key:
                    data = struct.pack("!IIii", 16, CANCEL_REQUEST, *key)
            send(ci, data)
            drain(time.monotonic())
        drain(time.monotonic() + case.linger)
    finally:
        for ci, s in socks.items():
            if case.rst:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            s.close()
        sel.close()
    first = bytes(answers.get(0, b""))
    out.first_answer = first[:512]
    out.error_codes = _error_codes(first)
    return out


def _backend_key(data: bytes):
    at = data.find(b"K\x00\x00\x00\x0c")
    if at < 0 or len(data) < at + 13:
        return None
    return struct.unpack_from("!ii", data, at + 5)


def _error_codes(data: bytes) -> list[str]:
    """SQLSTATEs of ErrorResponses in a well-formed prefix of the answers."""
    codes, pos = [], 0
    if data[:1] in (b"N", b"S") and (len(data) == 1 or data[1:2] != b"\x00"):
        pos = 1  # the answer to an SSLRequest
    while pos + 5 <= len(data):
        kind = data[pos:pos + 1]
        (n,) = struct.unpack_from("!I", data, pos + 1)
        if n < 4 or pos + 1 + n > len(data):
            break
        if kind == b"E":
            for f in data[pos + 5:pos + 1 + n].split(b"\0"):
                if f[:1] == b"C":
                    codes.append(f[1:].decode(errors="replace"))
        pos += 1 + n
    return codes
