# Every client input is bounded (issue 11, item 3): message lengths are checked against
# PostgreSQL's own limits before anything is read or allocated, messages sluice must read whole
# are capped at 1 MiB (a named Bind is streamed past its names), the request queue is bounded and
# compacts in one pass, and a statement too large to inspect never leaves a dirty server behind.
# Each runs on a busy pool (fewer servers than clients, background clients that must not stall).
import socket
import struct
import threading
import time

import pytest

from sluice_it.wire import WireConn, error_fields, message, query_message
from sluice_it.traffic import Background

pytestmark = pytest.mark.sluice_only("bounds on client input (issue 11)")

MiB = 1 << 20


def timed_select(pooler, limit: float) -> None:
    t0 = time.monotonic()
    with pooler.connect() as c:
        assert c.execute("select 42").fetchone() == (42,)
    elapsed = time.monotonic() - t0
    assert elapsed < limit, f"a new client waited {elapsed:.1f}s for a server"


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def first_error(msgs: list) -> dict:
    errors = [error_fields(body) for kind, body in msgs if kind == b"E"]
    assert errors, f"no ErrorResponse before the close: {msgs}"
    return errors[0]


def send_quietly(conn: WireConn, data: bytes, chunk: int = 1 * MiB) -> int:
    """Sends what the peer takes; stops at a close (the pooler refused the message). Bytes sent."""
    sent = 0
    conn.sock.settimeout(10)
    try:
        for i in range(0, len(data), chunk):
            conn.sock.sendall(data[i : i + chunk])
            sent += min(chunk, len(data) - i)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    return sent


def parse_header(name: bytes, claimed_len: int) -> bytes:
    return b"P" + struct.pack("!I", claimed_len) + name + b"\0"


# ---------------------------------------------------------------- message lengths


@pytest.mark.parametrize("workers", [1, 2])
def test_parse_claiming_over_1gib_holds_no_server(make_pooler, workers):
    """Three clients each start a Parse claiming 1.5 GiB and send 4 MiB of it: PostgreSQL
    refuses any message over 1 GiB, so sluice refuses them at the header (08P01) without
    buffering or taking a server; a fourth client and the background get servers at once."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2, workers=workers,
                         max_prepared_statements=100, query_wait_timeout=30)
    hostile = [WireConn(pooler.host, pooler.port, timeout=10) for _ in range(3)]
    try:
        for w in hostile:
            w.login("app", "appdb")
        with Background(pooler, max_step=5.0, n=2):
            before = rss_kib(pooler.pid)
            payload = parse_header(b"big", 0x60000000) + b"select 1 " * (4 * MiB // 9)
            senders = [threading.Thread(target=send_quietly, args=(w, payload), daemon=True)
                       for w in hostile]
            for t in senders:
                t.start()
            timed_select(pooler, 5.0)
            for w in hostile:
                err = first_error(w.read_until_closed(10))
                assert err["C"] == "08P01", err
            for t in senders:
                t.join(20)
            timed_select(pooler, 5.0)
            grown = rss_kib(pooler.pid) - before
        assert grown < 8 * 1024, f"sluice grew by {grown} KiB: it buffered the refused messages"
    finally:
        for w in hostile:
            w.close()


def test_named_parse_over_whole_read_cap_is_refused(make_pooler):
    """A named Parse must be read whole (its text keys the statement registry): past 1 MiB it
    is refused with 54000 as soon as its name is seen, never buffered."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, max_prepared_statements=100,
                         query_wait_timeout=30)
    with Background(pooler, max_step=5.0, n=2), WireConn(pooler.host, pooler.port, timeout=10) as w:
        w.login("app", "appdb")
        before = rss_kib(pooler.pid)
        payload = parse_header(b"big", 900 * MiB) + b"select 1 " * (8 * MiB // 9)
        t = threading.Thread(target=send_quietly, args=(w, payload), daemon=True)
        t.start()
        err = first_error(w.read_until_closed(10))
        assert err["C"] == "54000", err
        t.join(20)
        assert rss_kib(pooler.pid) - before < 16 * 1024, "sluice buffered the Parse"
        timed_select(pooler, 5.0)


def test_named_bind_streams_past_its_names(make_pooler):
    """A Bind of a named statement needs only its two names to be renamed: a 48 MiB parameter
    value goes through without sluice holding it."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, max_prepared_statements=100,
                         query_wait_timeout=30)
    with Background(pooler, max_step=5.0, n=2), WireConn(pooler.host, pooler.port, timeout=20) as w:
        w.login("app", "appdb")
        w.send(message(b"P", b"len\0select length($1::text)\0\0\0") + message(b"S"))
        assert [m[0] for m in w.read_until_ready()] == [b"1", b"Z"]
        before = rss_kib(pooler.pid)
        value = b"x" * (48 * MiB)
        bind = message(b"B", b"\0len\0" + struct.pack("!hhi", 0, 1, len(value)) + value
                       + struct.pack("!h", 0))
        w.send(bind[:-1])  # all but the last byte: sluice must not be holding the rest
        grown = rss_kib(pooler.pid) - before
        w.send(bind[-1:] + message(b"E", b"\0\0\0\0\0") + message(b"S"))
        msgs = w.read_until_ready()
        kinds = [m[0] for m in msgs]
        assert kinds == [b"2", b"D", b"C", b"Z"], msgs[:3]
        assert msgs[1][1][6:] == str(48 * MiB).encode()
        assert grown < 16 * 1024, f"sluice grew by {grown} KiB while the Bind was under way"


def test_length_over_postgres_limit_is_refused_at_once(make_pooler, pg):
    """PostgreSQL refuses a Query over 1 GiB and a Sync over 10000 bytes (it closes the
    connection with nothing said): sluice refuses them itself with 08P01, before a server is
    involved, and the others go on."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=30)
    with Background(pooler, max_step=5.0, n=2):
        for data in (b"Q" + struct.pack("!I", 0x3FFFFFFF) + b"select 1",
                     b"S" + struct.pack("!I", 20000) + b"\0" * 100,
                     b"D" + struct.pack("!I", 10005) + b"S"):
            with WireConn(pooler.host, pooler.port) as w:
                w.login("app", "appdb")
                w.send(data)
                err = first_error(w.read_until_closed(5))
                assert err["C"] == "08P01", (data[:5], err)
        timed_select(pooler, 5.0)


def test_max_packet_size_is_capped_and_lengths_do_not_wrap(make_pooler):
    """max_packet_size 4294967295 (a value PgBouncer's parser takes) is capped: a length word
    of 0xFFFFFFFF is refused as too long, never taken as a 0-byte message (a 32-bit wrap)."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, max_packet_size=4294967295)
    with Background(pooler, max_step=5.0, n=2):
        for kind in (b"Q", b"P", b"B", b"d", b"X"):
            with WireConn(pooler.host, pooler.port) as w:
                w.login("app", "appdb")
                w.send(kind + b"\xff\xff\xff\xff" + b"\0" * 64)
                err = first_error(w.read_until_closed(5))
                assert err["C"] == "08P01", (kind, err)
        timed_select(pooler, 5.0)
    assert pooler.running


# ---------------------------------------------------------------- statements too large to inspect


def padded(sql: str, size: int) -> str:
    return sql + " -- " + "x" * (size - len(sql) - 4)


def test_query_too_large_to_inspect_does_not_leak_settings(make_pooler):
    """A 1.5 MB simple query starting `SET search_path TO x;`: sluice cannot classify it, so it
    reads the session back and keeps the setting for its client, never for the next one."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=30)
    with pooler.connect() as a, pooler.connect() as b:
        a.execute(padded("set search_path to bounds_x; set app.tenant = 'a'; select 1", 1_500_000))
        assert b.execute("show search_path").fetchone()[0] == '"$user", public'
        assert b.execute("select current_setting('app.tenant', true)").fetchone()[0] in (None, "")
        assert a.execute("show search_path").fetchone()[0] == "bounds_x"


def test_query_too_large_to_inspect_pins_what_cannot_move(make_pooler, pg):
    """A 1.5 MB query that takes a session advisory lock: the client keeps its server (the lock
    is its own), nobody else gets that server while it holds it."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2, query_wait_timeout=30)
    with pooler.connect() as a:
        a.execute(padded("select pg_advisory_lock(4242)", 1_500_000))
        pid = a.execute("select pg_backend_pid()").fetchone()[0]
        with pooler.connect() as b:
            for _ in range(5):
                assert b.execute("select pg_backend_pid()").fetchone()[0] != pid
        assert a.execute("select pg_backend_pid()").fetchone()[0] == pid
        a.execute("select pg_advisory_unlock(4242)")


def test_unnamed_parse_too_large_to_inspect_is_streamed_and_read_back(make_pooler):
    """An unnamed Parse over 1 MiB needs no renaming: it is streamed (sluice does not hold its
    24 MiB text), and the statement's effect on the session is read back afterwards."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, max_prepared_statements=100,
                         query_wait_timeout=30)
    with pooler.connect() as b, WireConn(pooler.host, pooler.port, timeout=20) as w:
        w.login("app", "appdb")
        assert b.execute("select 1").fetchone() == (1,)
        before = rss_kib(pooler.pid)
        text = padded("select set_config('search_path', 'bounds_y', false)", 24 * MiB).encode()
        parse = message(b"P", b"\0" + text + b"\0\0\0")
        w.send(parse[:-1])  # all but the last byte: sluice must not be holding the rest
        grown = rss_kib(pooler.pid) - before
        w.send(parse[-1:] + message(b"B", b"\0\0\0\0\0\0\0\0") + message(b"E", b"\0\0\0\0\0")
               + message(b"S"))
        kinds = [m[0] for m in w.read_until_ready()]
        assert kinds == [b"1", b"2", b"D", b"C", b"Z"], kinds
        assert grown < 16 * 1024, f"sluice grew by {grown} KiB while the Parse was under way"
        assert b.execute("show search_path").fetchone()[0] == '"$user", public'
        assert w.query("show search_path") == [["bounds_y"]]


@pytest.mark.parametrize("workers", [1, 2])
def test_query_too_large_to_inspect_on_a_busy_pool(make_pooler, workers):
    """The same 1.5 MB `SET search_path` query while background clients share a pool of two:
    none of them, nor a new client, ever sees the setting; its own client keeps it."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2, workers=workers,
                         query_wait_timeout=30)
    seen = []

    def check(c):
        seen.append(c.execute("show search_path").fetchone()[0])

    with Background(pooler, max_step=5.0, n=3) as bg, pooler.connect() as a:
        for _ in range(3):
            a.execute(padded("set search_path to bounds_z; select 1", 1_500_000))
            for _ in range(3):
                with pooler.connect() as c:
                    check(c)
            assert a.execute("show search_path").fetchone()[0] == "bounds_z"
        assert bg.count > 0
    assert set(seen) == {'"$user", public'}, seen


# ---------------------------------------------------------------- the request queue


@pytest.mark.parametrize("workers", [1, 2])
def test_sync_storm_during_copy_does_not_stall_the_worker(make_pooler, pg, workers):
    """200,000 Syncs during COPY FROM STDIN, then CopyDone: the server ignores them in COPY mode,
    and sluice drops them from its queue in one pass; other clients are not held up."""
    pg.sql("create table if not exists bounds_copy (a int); grant all on bounds_copy to public",
           dbname="appdb")
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2, workers=workers,
                         query_wait_timeout=30)
    with Background(pooler, max_step=5.0, n=2) as bg, WireConn(pooler.host, pooler.port, timeout=30) as w:
        w.login("app", "appdb")
        w.send(query_message("copy bounds_copy from stdin"))
        assert w.read_message()[0] == b"G"
        w.send(message(b"d", b"1\n") + message(b"S") * 200_000 + message(b"d", b"2\n"))
        bg.worst = 0.0
        w.send(message(b"c"))
        kinds = [m[0] for m in w.read_until_ready(30)]
        assert kinds == [b"C", b"Z"], kinds
        assert w.query("select 1") == [["1"]]
        timed_select(pooler, 2.0)
        assert bg.worst < 2.0, f"a background query waited {bg.worst:.1f}s after the CopyDone"


# One message repeated past the queue's bound (2**20 entries) while the server skips to Sync:
# every way a request enters the queue closes the client the same way when it is full.
QUEUE_FLOOD = {
    "execute_unnamed": message(b"E", b"\0\0\0\0\0"),
    "bind_named": message(b"B", b"\0st\0\0\0\0\0\0\0"),
    "describe_named": message(b"D", b"Sst\0"),
}


@pytest.mark.parametrize("case", sorted(QUEUE_FLOOD))
def test_full_request_queue_closes_the_client(make_pooler, pg, case):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2, max_prepared_statements=100,
                         query_wait_timeout=30)
    with Background(pooler, max_step=5.0, n=1), WireConn(pooler.host, pooler.port, timeout=30) as w:
        w.login("app", "appdb")
        w.send(message(b"P", b"st\0select 1\0\0\0") + message(b"S"))
        assert [m[0] for m in w.read_until_ready()] == [b"1", b"Z"]
        # An Execute of a portal that does not exist: the server skips everything to the Sync.
        w.send(message(b"E", b"nope\0\0\0\0\0") + message(b"H"))
        assert error_fields(w.read_message()[1])["C"] == "34000"
        flood = QUEUE_FLOOD[case] * ((1 << 20) + 16)
        t = threading.Thread(target=send_quietly, args=(w, flood, 4 * MiB), daemon=True)
        t.start()
        msgs = w.read_until_closed(40)
        t.join(20)
        errors = [error_fields(body) for kind, body in msgs if kind == b"E"]
        assert [e["C"] for e in errors][-1:] == ["53000"], errors
        assert errors[-1]["S"] == "FATAL", errors
        timed_select(pooler, 5.0)
