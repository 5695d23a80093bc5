# Mutations of recorded cases. Every case is a pure function of (corpus, seed string): the same
# seed on the same corpus gives the same bytes.
import copy
import random
import struct

from cases import Case, Msg, Write

CLIENT_TYPES = b"QPBEDCSHXFdcfp"
EXTREME_LENGTHS = [0, 1, 3, 4, 5, 8, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC, 0x40000000,
                   0x40000001, 0x3FFFFFFF, 0x00100001, 10001, 65536]


def _typed(conn: list[Msg]) -> list[int]:
    return [i for i, m in enumerate(conn) if m.raw is None and m.kind is not None]


def _any(conn: list[Msg]) -> list[int]:
    return [i for i, m in enumerate(conn) if m.raw is None]


def _pick_conn(rng: random.Random, case: Case) -> int:
    # The first connection carries the session; others are cancels. Prefer the session.
    return 0 if len(case.conns) == 1 or rng.random() < 0.8 else rng.randrange(len(case.conns))


def _last_write(case: Case, ci: int) -> int:
    return max((m.write for m in case.conns[ci]), default=0)


# -- message-level mutations: each returns a description, or None when it did not apply --------

def m_length(rng, case, donors):
    ci = _pick_conn(rng, case)
    idx = _any(case.conns[ci])
    if not idx:
        return None
    m = case.conns[ci][rng.choice(idx)]
    true_len = len(m.body) + 4
    choice = rng.random()
    if choice < 0.6:
        m.length = rng.choice(EXTREME_LENGTHS)
    elif choice < 0.8:
        m.length = max(0, true_len + rng.choice([-3, -2, -1, 1, 2, 3, 100, 5000]))
    else:  # claims a large message and sends only part of it
        m.length = true_len + rng.choice([1 << 20, 1 << 24, 1 << 29, (1 << 30) + 16])
    return f"length {m.kind!r} {true_len}->{m.length:#x}"


def m_swap_type(rng, case, donors):
    ci = _pick_conn(rng, case)
    idx = _typed(case.conns[ci])
    if not idx:
        return None
    m = case.conns[ci][rng.choice(idx)]
    old = m.kind
    m.kind = bytes([rng.choice(CLIENT_TYPES)]) if rng.random() < 0.85 else bytes([rng.randrange(256)])
    return f"type {old!r}->{m.kind!r}"


def m_after_terminate(rng, case, donors):
    ci = 0
    conn = case.conns[ci]
    idx = _typed(conn)
    if not idx:
        return None
    last = _last_write(case, ci)
    terms = [i for i in idx if conn[i].kind == b"X"]
    if terms and rng.random() < 0.5:
        at = terms[0]
    else:  # a Terminate somewhere in the middle
        at = rng.choice(idx)
        conn.insert(at, Msg(b"X", b"", conn[at].write))
        at += 0
    src = rng.choice(donors).conns[0]
    extra = [copy.copy(m) for m in src if m.kind is not None and m.raw is None][:rng.randint(1, 6)]
    for k, m in enumerate(extra):
        m.write = conn[at].write if rng.random() < 0.5 else last
        conn.insert(at + 1 + k, m)
    return f"{len(extra)} messages after Terminate"


def m_sync_storm(rng, case, donors):
    conn = case.conns[0]
    idx = _typed(conn)
    if not idx:
        return None
    n = rng.choice([50, 500, 2000, 5000]) if rng.random() < 0.95 else 50000
    # during COPY IN when there is one, else anywhere
    copies = [i for i in idx if conn[i].kind == b"d"]
    at = rng.choice(copies or idx)
    w = conn[at].write
    kind = b"S" if rng.random() < 0.8 else rng.choice([b"H", b"S"])
    conn[at + 1:at + 1] = [Msg(kind, b"", w) for _ in range(n)]
    return f"{n} x {kind!r} after message {at} ({conn[at].kind!r})"


def m_drop_syncs(rng, case, donors):
    conn = case.conns[0]
    before = len(conn)
    conn[:] = [m for m in conn if m.kind != b"S" or m.raw is not None]
    if len(conn) == before:
        return None
    return f"dropped {before - len(conn)} Syncs"


def m_duplicate(rng, case, donors):
    ci = _pick_conn(rng, case)
    idx = _any(case.conns[ci])
    if not idx:
        return None
    i = rng.choice(idx)
    k = rng.choice([1, 2, 10, 100])
    case.conns[ci][i + 1:i + 1] = [copy.copy(case.conns[ci][i]) for _ in range(k)]
    return f"message {i} ({case.conns[ci][i].kind!r}) x{k + 1}"


def m_delete(rng, case, donors):
    ci = _pick_conn(rng, case)
    idx = _any(case.conns[ci])
    if not idx:
        return None
    i = rng.choice(idx)
    m = case.conns[ci].pop(i)
    return f"deleted message {i} ({m.kind!r})"


def m_swap_adjacent(rng, case, donors):
    conn = case.conns[0]
    idx = _any(conn)
    if len(idx) < 2:
        return None
    i = rng.choice(idx[:-1])
    a, b = conn[i], conn[i + 1]
    a.write, b.write = b.write, a.write
    conn[i], conn[i + 1] = b, a
    return f"swapped messages {i}, {i + 1}"


def m_splice(rng, case, donors):
    """Messages from another recording (COPY data in an extended-protocol stream, console
    commands in a session, ...)."""
    conn = case.conns[0]
    idx = _typed(conn)
    src = [m for m in rng.choice(donors).conns[0] if m.raw is None]
    if not idx or not src:
        return None
    at = rng.choice(idx)
    start = rng.randrange(len(src))
    piece = [copy.copy(m) for m in src[start:start + rng.randint(1, 8)]]
    for m in piece:
        m.write = conn[at].write
    conn[at + 1:at + 1] = piece
    return f"spliced {len(piece)} foreign messages after {at}"


def m_startup_again(rng, case, donors):
    conn = case.conns[0]
    idx = _typed(conn)
    if not idx:
        return None
    at = rng.choice(idx)
    w = conn[at].write
    pick = rng.random()
    if pick < 0.4:
        body = struct.pack("!I", 80877103)
    elif pick < 0.7:
        body = struct.pack("!I", 196608) + b"user\0app\0database\0appdb\0\0"
    else:
        body = struct.pack("!III", 80877102, rng.randrange(1 << 31), rng.randrange(1 << 31))
    conn.insert(at + 1, Msg(None, body, w, raw=struct.pack("!I", len(body) + 4) + body))
    return f"untyped packet after {at}"


def m_body(rng, case, donors):
    """Content mutations that keep the framing right: bit flips, cut or grown bodies, int16/int32
    fields set to extremes (parameter counts, format counts, lengths inside Bind)."""
    ci = _pick_conn(rng, case)
    idx = _any(case.conns[ci])
    if not idx:
        return None
    m = case.conns[ci][rng.choice(idx)]
    body = bytearray(m.body)
    pick = rng.random()
    if pick < 0.35 and body:
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        what = "bit flips"
    elif pick < 0.55:
        del body[rng.randrange(len(body) + 1):]
        what = "cut"
    elif pick < 0.7:
        body += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        what = "grown"
    elif len(body) >= 2:
        width = 2 if rng.random() < 0.5 else 4
        at = rng.randrange(max(1, len(body) - width + 1))
        val = rng.choice([0, 1, 0x7F, 0xFF, 0x7FFF, 0x8000, 0xFFFF] if width == 2 else
                         [0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x40000000, 0xFFFF])
        body[at:at + width] = val.to_bytes(width, "big")
        what = f"int{width * 8} at {at} = {val:#x}"
    else:
        return None
    m.body = bytes(body)
    m.length = None
    return f"body of {m.kind!r}: {what}"


def m_no_gaps(rng, case, donors):
    """Everything in one burst: pipelined without waiting for answers."""
    for w in case.writes:
        w.gap = 0.0
    if rng.random() < 0.5:
        for conn in case.conns:
            for m in conn:
                m.write = min(m.write, 1)
    return "no pauses"


def m_rst(rng, case, donors):
    case.rst = True
    return "close with RST"


MESSAGE_MUTATIONS = [
    (m_length, 3), (m_swap_type, 3), (m_after_terminate, 1), (m_sync_storm, 1),
    (m_drop_syncs, 1), (m_duplicate, 2), (m_delete, 2), (m_swap_adjacent, 2), (m_splice, 2),
    (m_startup_again, 1), (m_body, 4), (m_no_gaps, 1), (m_rst, 1),
]


# -- byte-level mutations on the final writes --------------------------------------------------

def b_bit_flips(rng, sched):
    total = sum(len(d) for _, d, _ in sched)
    if not total:
        return None
    n = rng.choice([1, 1, 2, 4, 16])
    for _ in range(n):
        pos = rng.randrange(total)
        for i, (c, d, g) in enumerate(sched):
            if pos < len(d):
                b = bytearray(d)
                b[pos] ^= 1 << rng.randrange(8)
                sched[i] = (c, bytes(b), g)
                break
            pos -= len(d)
    return f"{n} bit flips"


def b_truncate(rng, sched):
    ci = 0
    mine = [i for i, (c, _, _) in enumerate(sched) if c == ci]
    if not mine:
        return None
    total = sum(len(sched[i][1]) for i in mine)
    cut = rng.randrange(total + 1)
    keep, pos = [], 0
    for i, (c, d, g) in enumerate(sched):
        if c != ci:
            keep.append((c, d, g))
            continue
        if pos >= cut:
            continue
        keep.append((c, d[: cut - pos], g))
        pos += len(d)
    sched[:] = [x for x in keep if x[1]]
    return f"truncated at {cut} of {total}"


def b_split(rng, sched):
    out = []
    for c, d, g in sched:
        if len(d) > 1 and rng.random() < 0.6:
            cuts = sorted({rng.randrange(1, len(d)) for _ in range(rng.randint(1, 4))})
            prev = 0
            for k, cut in enumerate(cuts + [len(d)]):
                out.append((c, d[prev:cut], g if k == 0 else rng.choice([0.0, 0.0, 0.002, 0.02])))
                prev = cut
        else:
            out.append((c, d, g))
    sched[:] = out
    return "writes split"


BYTE_MUTATIONS = [(b_bit_flips, 3), (b_truncate, 2), (b_split, 3)]


def _weighted(rng, table):
    total = sum(w for _, w in table)
    x = rng.uniform(0, total)
    for fn, w in table:
        x -= w
        if x <= 0:
            return fn
    return table[-1][0]


def make_case(base_cases: list[Case], seed: str) -> Case:
    """The case for `seed`: one recording, 1-4 mutations. About one case in 20 is sent as
    recorded (the baseline must pass too)."""
    rng = random.Random(seed)
    src = rng.choice(base_cases)
    case = Case(src.name, [[copy.copy(m) for m in conn] for conn in src.conns],
                [Write(w.conn, w.gap) for w in src.writes], seed=seed)
    case.linger = rng.choice([0.05, 0.1, 0.2, 0.4])
    if rng.random() < 0.05:
        case.ops.append("as recorded")
        return case
    for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
        if rng.random() < 0.75:
            desc = _weighted(rng, MESSAGE_MUTATIONS)(rng, case, base_cases)
            if desc:
                case.ops.append(desc)
    if rng.random() < 0.4:
        sched = list(case.schedule())
        for _ in range(rng.randint(1, 2)):
            desc = _weighted(rng, BYTE_MUTATIONS)(rng, sched)
            if desc:
                case.ops.append(desc)
        case.final = sched
    if not case.ops:
        case.ops.append(_weighted(rng, MESSAGE_MUTATIONS)(rng, case, base_cases) or "none")
    return case
