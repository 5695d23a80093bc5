# What an attacker could do before or around login (issue 17): big startup packets, pipelined
# bytes, log forging, descriptor exhaustion, cancel floods, SCRAM probing.
import json
import os
import signal
import socket
import struct
import time

import pytest

from sluice_it.postgres import PASSWORDS
from sluice_it.util import wait_until
from sluice_it.wire import (PROTOCOL_3, ServerError, WireConn, cancel_request, error_fields, message,
                            query_message, startup_packet)


def _raw_startup(pairs: list[tuple[str, str]]) -> bytes:
    body = struct.pack("!i", PROTOCOL_3)
    for k, v in pairs:
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


# StartupMessages larger than a buffer block (4 KiB), each accepted by the startup checks.
BIG_STARTUPS = {
    "application_name": _raw_startup([("user", "app"), ("database", "appdb"),
                                      ("application_name", "a" * 6000)]),
    "options": _raw_startup([("user", "app"), ("database", "appdb"),
                             ("options", "-c application_name=" + "o" * 6000)]),
    "many_params": _raw_startup([("user", "app"), ("database", "appdb")]
                                + [(f"x.p{i}", str(i % 10)) for i in range(1000)]),
}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- item 1: a big StartupMessage made the worker spin before any password was checked ---------

@pytest.mark.parametrize("auth_type", ["md5", "scram-sha-256"])
@pytest.mark.parametrize("shape", sorted(BIG_STARTUPS))
def test_big_startup_packet_neither_spins_nor_blocks_the_worker(make_pooler, auth_type, shape):
    pooler = make_pooler(pool_mode="transaction", auth_type=auth_type, workers=1,
                         default_pool_size=2)
    with WireConn(pooler.host, pooler.port, timeout=10) as big:
        big.send(BIG_STARTUPS[shape])
        kind, body = big.read_message()
        assert kind == b"R", (kind, body)
        assert struct.unpack("!i", body[:4])[0] == (5 if auth_type == "md5" else 10)
        # The only worker still serves other clients while this one owes its password.
        t0 = time.monotonic()
        with pooler.connect(connect_timeout=5) as other:
            assert other.execute("select 7").fetchone() == (7,)
        assert time.monotonic() - t0 < 5
        # And it is not spinning: the process is (nearly) idle.
        cpu0, w0 = _cpu_seconds(pooler.pid), time.monotonic()
        time.sleep(1.0)  # a CPU-time measurement over an interval, not a wait for an event
        used = _cpu_seconds(pooler.pid) - cpu0
        assert used < 0.5 * (time.monotonic() - w0), f"pooler used {used:.2f}s of CPU in ~1s"
        # The big packet itself is fine: the client logs in with it and gets answers.
        _continue_login(big, "app", PASSWORDS["app"], auth_type, body)
        assert big.query("select 1") == [["1"]]
    pooler.signal(signal.SIGINT)
    pooler.wait_exit(10)


def _continue_login(conn: WireConn, user: str, password: str, auth_type: str, request: bytes):
    """Answers an authentication request already read, then reads up to ReadyForQuery."""
    import hashlib

    from sluice_it.wire import _ScramClient

    code = struct.unpack("!i", request[:4])[0]
    if code == 5:
        inner = hashlib.md5((password + user).encode()).hexdigest()
        outer = hashlib.md5(inner.encode() + request[4:8]).hexdigest()
        conn.send(message(b"p", b"md5" + outer.encode() + b"\0"))
        conn.login(user, "", password, sent=True)
        return
    assert code == 10, auth_type
    scram = _ScramClient(password)
    conn.send(scram.initial_response())
    kind, body = conn.read_message()
    assert kind == b"R" and struct.unpack("!i", body[:4])[0] == 11
    conn.send(message(b"p", scram.final_message(body[4:])))
    kind, body = conn.read_message()
    assert kind == b"R" and struct.unpack("!i", body[:4])[0] == 12, (kind, body)
    scram.verify_server(body[4:])
    conn.login(user, "", password, sent=True)


def test_sigint_stops_the_process_with_a_big_startup_pending(make_pooler):
    pooler = make_pooler(pool_mode="transaction", auth_type="md5", workers=1)
    socks = []
    try:
        for shape in sorted(BIG_STARTUPS):
            c = WireConn(pooler.host, pooler.port, timeout=10)
            socks.append(c)
            c.send(BIG_STARTUPS[shape])
            assert c.read_message()[0] == b"R"
        pooler.signal(signal.SIGINT)
        pooler.wait_exit(10)
    finally:
        for c in socks:
            c.close()


def test_big_startup_with_unknown_user_is_refused_cleanly(make_pooler):
    pooler = make_pooler(auth_type="scram-sha-256", workers=1)
    packet = _raw_startup([("user", "u" * 5000), ("database", "appdb")])
    with WireConn(pooler.host, pooler.port, timeout=10) as c:
        with pytest.raises(ServerError) as e:
            c.login("u" * 5000, "appdb", "wrong", packet=packet)
        assert e.value.fields["C"] == "28P01"
    with pooler.connect(password=PASSWORDS["app"], connect_timeout=5) as other:
        assert other.execute("select 1").fetchone() == (1,)


# -- item 4: bytes that come with the last login message are served at once ---------------------

def _warm(pooler):
    with pooler.connect(connect_timeout=5) as c:
        c.execute("select 1")


@pytest.mark.parametrize("workers", [1, 2])
def test_query_in_the_same_write_as_the_startup_packet(make_pooler, workers):
    pooler = make_pooler(pool_mode="transaction", workers=workers, default_pool_size=2)
    _warm(pooler)
    for i in range(5):
        with WireConn(pooler.host, pooler.port) as c:
            c.login("app", "appdb", pipeline=query_message(f"select {i} + 40"))
            assert c.read_result(timeout=5) == [[str(i + 40)]]


@pytest.mark.parametrize("auth_type", ["plain", "md5", "scram-sha-256"])
def test_query_in_the_same_write_as_the_password(make_pooler, auth_type):
    pooler = make_pooler(pool_mode="transaction", auth_type=auth_type, default_pool_size=2)
    _warm(pooler)
    with WireConn(pooler.host, pooler.port) as c:
        c.login("app", "appdb", PASSWORDS["app"], pipeline=query_message("select 'after pw'"))
        assert c.read_result(timeout=5) == [["after pw"]]
        assert c.query("select 2") == [["2"]]


def test_query_with_the_startup_packet_of_the_first_client_of_a_pool(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2)
    with WireConn(pooler.host, pooler.port) as c:
        c.login("app", "appdb", pipeline=query_message("select 'cold'") + query_message("select 3"))
        assert c.read_result(timeout=5) == [["cold"]]
        assert c.read_result(timeout=5) == [["3"]]


def test_query_sent_while_the_pool_learns_its_parameters_is_kept(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2)
    pooler.admin("PAUSE appdb")  # the first client of the pool waits for a server (LoginWait)
    with WireConn(pooler.host, pooler.port) as c:
        c.send(startup_packet("app", "appdb"))
        kind, body = c.read_message()
        assert (kind, body[:4]) == (b"R", struct.pack("!i", 0))  # AuthenticationOk
        c.send(query_message("select 'pipelined'"))
        # The pooler keeps it (Postgres accepts a query before ReadyForQuery, and so must we).
        row = wait_until(lambda: [r for r in pooler.admin("SHOW CLIENTS")
                                  if r["user"] == "app" and r["database"] == "appdb"],
                         5, "the client listed")
        assert row
        pooler.admin("RESUME appdb")
        c.login("app", "appdb", sent=True)
        assert c.read_result(timeout=5) == [["pipelined"]]
        assert c.query("select 4") == [["4"]]


def test_query_in_the_same_write_as_the_console_login(make_pooler):
    pooler = make_pooler()
    with WireConn(pooler.host, pooler.port) as c:
        c.login("itadmin", "pgbouncer", pipeline=query_message("SHOW VERSION"))
        assert len(c.read_result(timeout=5)) == 1
