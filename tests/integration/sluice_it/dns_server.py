# A tiny DNS server over UDP on loopback for the resolver tests: A records for the names a test
# gives, NXDOMAIN for every other name, an answer delay and a TTL per name, queries counted.
import socket
import struct
import threading
import time

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_NXDOMAIN = 3


class Record:
    def __init__(self, addrs: list[str], ttl: int, delay: float):
        self.addrs = addrs
        self.ttl = ttl
        self.delay = delay


class DnsServer:
    """`DnsServer().start()`; `add(name, ["127.0.0.1"], ttl=300, delay=0)`; `address` is the
    "127.0.0.1:port" to give sluice's dns_nameserver. Every query is logged in `queries` as
    (monotonic time received, name, qtype); `answered` holds (time sent, name, qtype)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)  # the serving thread notices stop() in time
        self.host, self.port = self.sock.getsockname()
        self.records: dict[str, Record] = {}
        self.queries: list[tuple[float, str, int]] = []
        self.answered: list[tuple[float, str, int]] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def add(self, name: str, addrs: list[str], ttl: int = 300, delay: float = 0.0) -> None:
        with self.lock:
            self.records[name.lower().rstrip(".")] = Record(addrs, ttl, delay)

    def count(self, name: str, qtype: int = TYPE_A) -> int:
        name = name.lower().rstrip(".")
        with self.lock:
            return sum(1 for _, n, t in self.queries if n == name and t == qtype)

    def start(self) -> "DnsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()

    # -- protocol ------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            parsed = self._parse(data)
            if parsed is None:
                continue
            qid, flags, name, qtype, question = parsed
            with self.lock:
                self.queries.append((time.monotonic(), name, qtype))
                rec = self.records.get(name)
            reply = self._reply(qid, flags, question, qtype, rec)
            delay = rec.delay if rec else 0.0
            if delay > 0:
                threading.Timer(delay, self._send, (reply, peer, name, qtype)).start()
            else:
                self._send(reply, peer, name, qtype)

    def _send(self, reply: bytes, peer, name: str, qtype: int) -> None:
        if self.stopped.is_set():
            return
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            return
        with self.lock:
            self.answered.append((time.monotonic(), name, qtype))

    @staticmethod
    def _parse(data: bytes):
        if len(data) < 12:
            return None
        qid, flags, qdcount = struct.unpack("!HHH", data[:6])
        if qdcount != 1:
            return None
        pos = 12
        labels = []
        while True:
            if pos >= len(data):
                return None
            n = data[pos]
            pos += 1
            if n == 0:
                break
            if n & 0xC0 or pos + n > len(data):
                return None
            labels.append(data[pos:pos + n].decode("ascii", "replace").lower())
            pos += n
        if pos + 4 > len(data):
            return None
        qtype, _qclass = struct.unpack("!HH", data[pos:pos + 4])
        return qid, flags, ".".join(labels), qtype, data[12:pos + 4]

    @staticmethod
    def _reply(qid: int, flags: int, question: bytes, qtype: int, rec: Record | None) -> bytes:
        rd = flags & 0x0100
        answers = []
        rcode = 0
        if rec is None:
            rcode = RCODE_NXDOMAIN
        elif qtype == TYPE_A:
            for a in rec.addrs:
                # name: a pointer to the question's name at offset 12
                answers.append(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, rec.ttl, 4)
                               + socket.inet_aton(a))
        # AAAA and other types of a known name: no data (NOERROR, no answers)
        hdr = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1,
                          len(answers), 0, 0)
        return hdr + question + b"".join(answers)
