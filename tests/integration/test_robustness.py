# Hostile or broken clients are contained: they are closed, their server state is cleaned, others go on.
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from sluice_it.util import wait_until
from sluice_it.wire import PROTOCOL_3, WireConn, error_fields, message, query_message, ssl_request


class Bystander:
    """A client that must keep getting answers quickly while others misbehave."""

    def __init__(self, pooler, dbname: str = "appdb"):
        self.conn = pooler.connect(dbname=dbname)
        self.n = 0

    def check(self, limit: float = 2.5) -> None:
        # Starved or blocked behind a bad client would be seconds to forever; a loaded 2-core
        # machine running the ASan build can take a second for one answer.
        self.n += 1
        t0 = time.monotonic()
        assert self.conn.execute("select %s::int", (self.n,)).fetchone() == (self.n,)
        elapsed = time.monotonic() - t0
        assert elapsed < limit, f"bystander query took {elapsed:.2f}s"

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def bystander(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=4)
    b = Bystander(pooler)
    yield pooler, b
    b.close()


def _expect_08P01_and_close(sock_data: list) -> None:
    assert sock_data, "connection closed without an ErrorResponse"
    kind, body = sock_data[0]
    assert kind == b"E", sock_data
    fields = error_fields(body)
    assert fields.get("C") == "08P01", fields
    assert fields.get("S") in ("FATAL", "ERROR"), fields
    assert len(sock_data) == 1, f"messages after the error: {sock_data[1:]}"


def _random_garbage(seed: int) -> bytes:
    rnd = random.Random(seed)
    data = bytes(rnd.randrange(256) for _ in range(300))
    # A length field that is nonsense but not a plausible "wait for more" (> 10 kB or < 8).
    return struct.pack("!i", 0x7F000000 + seed) + data


BAD_STARTUPS = {
    "protocol_zero": struct.pack("!ii", 8, 0),
    "length_below_header": struct.pack("!ii", 4, PROTOCOL_3),
    "length_negative": struct.pack("!ii", -20, PROTOCOL_3),
    "length_1GB": struct.pack("!ii", 1 << 30, PROTOCOL_3) + b"user\0app\0",
    "http_request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "random_1": _random_garbage(1),
    "random_2": _random_garbage(2),
    "old_protocol_2": struct.pack("!ii", 8, 0x00020000) + b"\0" * 8,
    "unterminated_params": struct.pack("!ii", 20, PROTOCOL_3) + b"user\0app\0dat",
}


@pytest.mark.parametrize("case", sorted(BAD_STARTUPS))
def test_bad_first_packet_gets_08P01_and_close(bystander, case):
    pooler, b = bystander
    b.check()
    with WireConn(pooler.host, pooler.port) as w:
        w.send(BAD_STARTUPS[case])
        t0 = time.monotonic()
        msgs = w.read_until_closed(3)
        assert time.monotonic() - t0 < 2
    _expect_08P01_and_close(msgs)
    b.check()
    with pooler.connect() as fresh:
        assert fresh.execute("select 1").fetchone() == (1,)


def test_startup_without_user_is_refused(bystander):
    """Well-formed but no user: Postgres says 28000, PgBouncer 08P01; either way a FATAL and close."""
    pooler, b = bystander
    with WireConn(pooler.host, pooler.port) as w:
        w.send(struct.pack("!ii", 9, PROTOCOL_3) + b"\0")
        msgs = w.read_until_closed(3)
    assert len(msgs) == 1 and msgs[0][0] == b"E", msgs
    fields = error_fields(msgs[0][1])
    assert fields["S"] == "FATAL" and fields["C"] in ("28000", "08P01"), fields
    b.check()


def test_ssl_request_answered_N_then_plain_startup_works(bystander):
    pooler, b = bystander
    with WireConn(pooler.host, pooler.port) as w:
        w.send(ssl_request())
        assert w.read_byte(3) == b"N"
        w.login("app", "appdb")
        assert w.query("select 'plain after N'") == [["plain after N"]]
    b.check()


def test_many_silent_connections_do_not_starve_others(bystander):
    pooler, b = bystander
    silent = []
    try:
        for _ in range(300):
            silent.append(socket.create_connection((pooler.host, pooler.port), timeout=5))
        for _ in range(10):
            b.check()
        t0 = time.monotonic()
        with pooler.connect() as fresh:
            assert fresh.execute("select 1").fetchone() == (1,)
        assert time.monotonic() - t0 < 3.0
        # Half-sent startup packets from some of them change nothing either.
        for s in silent[:100]:
            s.sendall(struct.pack("!ii", 40, PROTOCOL_3) + b"user\0")
        b.check()
    finally:
        for s in silent:
            s.close()
    b.check()


@pytest.mark.parametrize("payload", [b"Q\x00\x00\x00\x02", b"Q\xff\xff\xff\xfe", b"Q\x00\x00\x00\x00"],
                         ids=["length_2", "length_negative", "length_0"])
@pytest.mark.parametrize("in_transaction", [False, True], ids=["idle", "in_tx"])
def test_malformed_message_after_login_closes_only_that_client(make_pooler, pg, payload, in_transaction):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=10)
    b = Bystander(pooler)
    try:
        with WireConn(pooler.host, pooler.port) as w:
            w.login("app", "appdb")
            if in_transaction:
                w.query("begin; select pg_advisory_xact_lock(9191)")
            w.send(payload)
            msgs = w.read_until_closed(3)
        _expect_08P01_and_close(msgs)
        b.check(limit=4.0)  # may wait for the bad client's server to be rolled back or replaced
        wait_until(lambda: pg.server_conns(user="app", state="idle in transaction") == 0, 5,
                   "no server connection left inside the bad client's transaction")
        assert pg.sql("select count(*) from pg_locks where locktype = 'advisory' and objid = 9191")[0][0] == 0
    finally:
        b.close()


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_oversized_message_after_login_is_refused_without_buffering_it(make_pooler):
    """A Query whose length claims 1.75 GiB (PostgreSQL refuses any message over 1 GiB): the
    client is closed (by the pooler, or by the server the pooler streamed it to) while it is
    still sending, the pooler's memory does not grow with what was sent, and others go on."""
    pooler = make_pooler(pool_mode="transaction")
    b = Bystander(pooler)
    try:
        rss_before = _rss_kb(pooler.pid)
        with WireConn(pooler.host, pooler.port, timeout=10) as w:
            w.login("app", "appdb")
            w.send(b"Q" + struct.pack("!i", 0x70000000))
            chunk = b"select " * 37_450  # 256 KiB
            sent, limit = 0, 64 << 20
            w.sock.settimeout(10)
            while sent < limit:
                if select.select([w.sock], [], [], 0)[0]:
                    break  # an answer (or the close) is waiting: stop sending
                try:
                    w.sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                except socket.timeout:
                    pytest.fail(f"pooler stopped reading after {sent} bytes without closing")
                sent += len(chunk)
            assert sent < limit, f"{sent} bytes of the message taken and the client still open"
            msgs = w.read_until_closed(10)  # raises TimeoutError if still open
        # The error may be lost to the reset of a close with unread input; if it came, it is right.
        for kind, body in msgs[:1]:
            assert kind == b"E" and error_fields(body)["C"] == "08P01", msgs[:1]
        grown = _rss_kb(pooler.pid) - rss_before
        assert grown < 16_000, f"pooler grew {grown} kB for a refused message ({sent} bytes sent)"
        b.check()
    finally:
        b.close()


_LOCKER = r"""
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute("begin")
conn.execute("select pg_advisory_xact_lock(7777)")
conn.execute("select * from pgbench_branches where bid = 1 for update")
print("locked", flush=True)
sys.stdin.read()
"""


def _lock_holder_gone(pooler, pg) -> None:
    """Another client takes the same locks within a bounded time; no transaction stays open."""
    with pooler.connect(dbname="bench") as other:
        other.execute("set lock_timeout = '5s'")
        with other.transaction():
            t0 = time.monotonic()
            other.execute("select pg_advisory_xact_lock(7777)")
            other.execute("select * from pgbench_branches where bid = 1 for update")
            assert time.monotonic() - t0 < 5
    wait_until(lambda: pg.server_conns(dbname="bench", state="idle in transaction") == 0, 5,
               "no idle-in-transaction backend left")


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_client_process_killed_mid_transaction_releases_its_locks(make_pooler, pg, mode):
    pooler = make_pooler(pool_mode=mode, default_pool_size=2)
    dsn = " ".join(f"{k}={v}" for k, v in pooler.conninfo(dbname="bench").items())
    child = subprocess.Popen([sys.executable, "-c", _LOCKER, dsn], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        assert pg.server_conns(dbname="bench", state="idle in transaction") == 1
        child.send_signal(signal.SIGKILL)
        child.wait(5)
        _lock_holder_gone(pooler, pg)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_socket_dropped_mid_transaction_releases_its_locks(make_pooler, pg, mode, how):
    pooler = make_pooler(pool_mode=mode, default_pool_size=2)
    w = WireConn(pooler.host, pooler.port)
    w.login("app", "bench")
    w.query("begin; select pg_advisory_xact_lock(7777); select * from pgbench_branches where bid = 1 for update")
    if how == "reset":  # RST instead of FIN
        w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.close()
    _lock_holder_gone(pooler, pg)


def test_client_gone_while_query_runs_leaves_server_clean(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=15)
    w = WireConn(pooler.host, pooler.port)
    w.login("app", "appdb")
    w.send(query_message("select pg_sleep(3) /* it_abandoned */"))
    wait_until(lambda: pg.sql("select count(*) from pg_stat_activity where query like '%it_abandoned%'"
                              " and state = 'active'")[0][0] == 1, 5, "the query to start")
    w.close()
    # The only server is busy or being replaced; the next client is served within bounded time.
    with pooler.connect() as conn:
        t0 = time.monotonic()
        assert conn.execute("select 'next'").fetchone() == ("next",)
        assert time.monotonic() - t0 < 5
        assert conn.execute("select count(*) from pg_stat_activity where query like '%it_abandoned%'"
                            " and state = 'active' and pid <> pg_backend_pid()").fetchone() == (0,)


def test_unknown_message_type_after_login(make_pooler):
    pooler = make_pooler(pool_mode="transaction")
    b = Bystander(pooler)
    try:
        with WireConn(pooler.host, pooler.port) as w:
            w.login("app", "appdb")
            w.send(message(b"\x01", b"junk"))
            try:
                msgs = w.read_until_closed(3)
            except TimeoutError:
                msgs = None  # forwarded to the server, which answers with an error and closes
            if msgs:
                assert msgs[0][0] == b"E" and error_fields(msgs[0][1])["C"] == "08P01", msgs
        b.check()
    finally:
        b.close()
