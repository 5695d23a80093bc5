# A fuzz case: the client side of one or more connections, as messages grouped into writes.
#
# A recorded stream is the bytes one client wrote on one connection, cut into the writes it made
# (`Chunk`s, each with the pause before it). `split_messages` turns a connection's bytes into
# protocol messages (untyped startup-phase packets first, then typed messages) so that mutations
# can work on messages; every message remembers the write it came from, and `Case.schedule`
# regroups them into writes again. A case with several connections (a query and its
# CancelRequest) is replayed in the recorded global order of writes.
import base64
import json
import struct
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


@dataclass
class Msg:
    """One protocol message. kind None: an untyped startup-phase packet. `raw` (bytes): sent
    as is (a fragment that did not parse, or a message a byte-level mutation produced).
    `length`: a length field to send instead of the true one."""

    kind: bytes | None
    body: bytes
    write: int  # index of the write (in the case's schedule) it belongs to
    length: int | None = None
    raw: bytes | None = None

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        n = len(self.body) + 4 if self.length is None else self.length
        head = struct.pack("!I", n & 0xFFFFFFFF)
        return (self.kind or b"") + head + self.body


def split_messages(data: bytes, write_of) -> list[Msg]:
    """Messages of one connection's client bytes; write_of(offset) -> write index."""
    msgs: list[Msg] = []
    pos = 0
    startup = True
    while pos < len(data):
        if startup:
            if len(data) - pos < 8:
                break
            (n,) = struct.unpack_from("!I", data, pos)
            (code,) = struct.unpack_from("!I", data, pos + 4)
            if n < 8 or pos + n > len(data):
                break
            msgs.append(Msg(None, data[pos + 4 : pos + n], write_of(pos)))
            pos += n
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                startup = False
            continue
        if len(data) - pos < 5:
            break
        (n,) = struct.unpack_from("!I", data, pos + 1)
        if n < 4 or pos + 1 + n > len(data):
            break
        msgs.append(Msg(data[pos : pos + 1], data[pos + 5 : pos + 1 + n], write_of(pos)))
        pos += 1 + n
    if pos < len(data):
        msgs.append(Msg(None, b"", write_of(pos), raw=data[pos:]))
    return msgs


@dataclass
class Write:
    conn: int
    gap: float  # seconds to read answers before this write


@dataclass
class Case:
    """What one fuzz case sends. conns[i]: the messages of connection i; writes: the global
    order of writes (a message's `write` indexes it)."""

    name: str
    conns: list[list[Msg]]
    writes: list[Write]
    ops: list[str] = field(default_factory=list)  # the mutations applied, for the report
    seed: str = ""
    # Set by byte-level mutations: the final writes, replacing conns/writes.
    final: list[tuple[int, bytes, float]] | None = None
    rst: bool = False  # close with a reset instead of FIN
    linger: float = 0.2  # how long to keep reading after the last write

    def schedule(self) -> list[tuple[int, bytes, float]]:
        """[(connection, bytes, gap before)] in send order."""
        if self.final is not None:
            return self.final
        parts: dict[int, list[bytes]] = {}
        for conn in self.conns:
            for m in conn:
                parts.setdefault(m.write, []).append(m.encode())
        out = []
        for i, w in enumerate(self.writes):
            data = b"".join(parts.get(i, []))
            if data:
                out.append((w.conn, data, w.gap))
        return out

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "seed": self.seed,
            "ops": self.ops,
            "rst": self.rst,
            "linger": self.linger,
            "writes": [{"conn": c, "gap": g, "data": base64.b64encode(d).decode()}
                       for c, d, g in self.schedule()],
        }

    @staticmethod
    def from_json(obj: dict) -> "Case":
        final = [(w["conn"], base64.b64decode(w["data"]), w["gap"]) for w in obj["writes"]]
        return Case(obj["name"], [], [], list(obj.get("ops", [])), obj.get("seed", ""), final,
                    obj.get("rst", False), obj.get("linger", 0.2))


@dataclass
class Recording:
    """One scenario as recorded: per connection, the writes [(global order, gap, bytes)]."""

    name: str
    conns: list[list[tuple[int, float, bytes]]]

    def to_case(self) -> Case:
        order = sorted((seq, ci, gap) for ci, conn in enumerate(self.conns) for seq, gap, _ in conn)
        index = {(ci, seq): i for i, (seq, ci, _) in enumerate(order)}
        writes = [Write(ci, gap) for _, ci, gap in order]
        conns = []
        for ci, conn in enumerate(self.conns):
            data = b"".join(d for _, _, d in conn)
            starts = []
            pos = 0
            for seq, _, d in conn:
                starts.append((pos, index[(ci, seq)]))
                pos += len(d)

            def write_of(off, starts=starts):
                w = starts[0][1]
                for s, wi in starts:
                    if s <= off:
                        w = wi
                    else:
                        break
                return w

            conns.append(split_messages(data, write_of))
        return Case(self.name, conns, writes)

    def to_json(self) -> dict:
        return {"name": self.name,
                "conns": [[[seq, gap, base64.b64encode(d).decode()] for seq, gap, d in c]
                          for c in self.conns]}

    @staticmethod
    def from_json(obj: dict) -> "Recording":
        return Recording(obj["name"], [[(seq, gap, base64.b64decode(d)) for seq, gap, d in c]
                                       for c in obj["conns"]])


def save_corpus(path: str, recordings: list[Recording]) -> None:
    with open(path, "w") as f:
        json.dump([r.to_json() for r in recordings], f)


def load_corpus(path: str) -> list[Recording]:
    with open(path) as f:
        return [Recording.from_json(o) for o in json.load(f)]
