# What an attacker could do before or around login (issue 17): big startup packets, pipelined
# bytes, log forging, descriptor exhaustion, cancel floods, SCRAM probing.
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import threading
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

@pytest.mark.sluice_only("PgBouncer 1.18 refuses startup packets over its 4 KiB pkt_buf")
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


@pytest.mark.sluice_only("PgBouncer 1.18 refuses startup packets over its 4 KiB pkt_buf")
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


@pytest.mark.sluice_only("PgBouncer 1.18 refuses startup packets over its 4 KiB pkt_buf")
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


@pytest.mark.sluice_only("PgBouncer 1.18 sends AuthenticationOk only once the database is resumed")
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


# -- item 7: the log file is reopened on SIGHUP without freeing its descriptor ------------------

@pytest.mark.sluice_only("the log lines waited for are sluice's wording")
def test_sighup_reopens_the_log_file_while_workers_log(make_pooler):
    pooler = make_pooler(pool_mode="transaction", workers=2, default_pool_size=2)
    stop = threading.Event()
    failures: list[str] = []

    def churn():  # logins and disconnections: log lines from both workers all the time
        while not stop.is_set():
            try:
                with WireConn(pooler.host, pooler.port, timeout=10) as c:
                    c.login("app", "appdb")
                    assert c.query("select 1") == [["1"]]
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(repr(exc))
                return

    threads = [threading.Thread(target=churn) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(10):
            rotated = f"{pooler.logfile}.{i}"
            os.rename(pooler.logfile, rotated)
            pooler.signal(signal.SIGHUP)
            # "got SIGHUP" is written before the reopen, "configuration reloaded" after it.
            wait_until(lambda: "configuration reloaded" in _read(pooler.logfile), 10,
                       "the reopened log file")
            assert "got SIGHUP" in _read(rotated)
            assert "got SIGHUP" not in _read(pooler.logfile)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not failures, failures
    assert "closing because" in _read(pooler.logfile)


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# -- item 8: SCRAM for plain-text users: one derivation, a stable salt, like unknown users ------

def _scram_server_first(pooler, user: str) -> dict:
    """Starts a SCRAM exchange as `user` and returns the server-first attributes (r, s, i)."""
    from sluice_it.wire import _ScramClient

    with WireConn(pooler.host, pooler.port, timeout=10) as c:
        c.send(startup_packet(user, "appdb"))
        kind, body = c.read_message()
        assert kind == b"R" and struct.unpack("!i", body[:4])[0] == 10, (kind, body)
        c.send(_ScramClient("whatever").initial_response())
        kind, body = c.read_message()
        assert kind == b"R" and struct.unpack("!i", body[:4])[0] == 11, (kind, body)
        return dict(kv.split("=", 1) for kv in body[4:].decode().split(","))


@pytest.mark.sluice_only("PgBouncer 1.18 makes a new salt for a plain-text password every attempt")
def test_scram_salt_of_a_plain_text_user_is_stable_like_an_unknown_users(make_pooler):
    pooler = make_pooler(auth_type="scram-sha-256", workers=2)
    known = [_scram_server_first(pooler, "app") for _ in range(4)]
    unknown = [_scram_server_first(pooler, "nosuchuser") for _ in range(4)]
    assert len({k["s"] for k in known}) == 1, known
    assert len({u["s"] for u in unknown}) == 1, unknown
    assert {k["i"] for k in known} == {u["i"] for u in unknown} == {"4096"}
    assert len(known[0]["s"]) == len(unknown[0]["s"])
    with WireConn(pooler.host, pooler.port) as c:
        c.login("app", "appdb", PASSWORDS["app"])
        assert c.query("select 1") == [["1"]]
    with WireConn(pooler.host, pooler.port) as c, pytest.raises(ServerError) as e:
        c.login("nosuchuser", "appdb", "x")
    assert e.value.fields["C"] == "28P01"


@pytest.mark.sluice_only("PgBouncer 1.18 derives the SCRAM secret of a plain-text password every attempt")
def test_scram_attempts_of_a_plain_text_user_cost_no_derivation_each(make_pooler):
    pooler = make_pooler(auth_type="scram-sha-256", workers=1)
    _scram_server_first(pooler, "app")  # the secret exists from here on (or was warmed)
    _scram_server_first(pooler, "nosuchuser")

    def cpu_of(user: str, n: int) -> float:
        t0 = _cpu_seconds(pooler.pid)
        for _ in range(n):
            _scram_server_first(pooler, user)
        return _cpu_seconds(pooler.pid) - t0

    n = 200
    unknown = cpu_of("nosuchuser", n)
    known = cpu_of("app", n)
    # One PBKDF2 of 4096 iterations is 1 to 4 ms: deriving per attempt would add 0.2 s or more.
    assert known < unknown + 0.08, f"known user {known:.3f}s, unknown {unknown:.3f}s for {n}"


@pytest.mark.sluice_only("PgBouncer 1.18 makes a new salt for a plain-text password every attempt")
def test_scram_secret_follows_a_changed_password_after_reload(make_pooler):
    pooler = make_pooler(auth_type="scram-sha-256", workers=2)
    app_before = _scram_server_first(pooler, "app")["s"]
    app2_before = _scram_server_first(pooler, "app2")["s"]
    pooler.auth["app"] = "new-app-pw"  # only in the pooler's auth file (the server trusts app)
    pooler.reload()
    wait_until(lambda: "configuration reloaded" in pooler.log_text(), 10, "the reload")
    assert _scram_server_first(pooler, "app2")["s"] == app2_before  # unchanged: same secret
    assert _scram_server_first(pooler, "app")["s"] != app_before
    with WireConn(pooler.host, pooler.port) as c:
        c.login("app", "appdb", "new-app-pw")
        assert c.query("select 1") == [["1"]]
    with WireConn(pooler.host, pooler.port) as c, pytest.raises(ServerError) as e:
        c.login("app", "appdb", PASSWORDS["app"])
    assert e.value.fields["C"] == "28P01"


# -- item 9: control characters from the wire do not forge log lines ---------------------------

def _bytes_startup(pairs: list[tuple[bytes, bytes]]) -> bytes:
    body = struct.pack("!i", PROTOCOL_3)
    for k, v in pairs:
        body += k + b"\0" + v + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


FORGED = b"2031-01-01 00:00:00.000 UTC [1] LOG FORGED"


def _hostile_login(pooler, user: bytes, db: bytes) -> None:
    with WireConn(pooler.host, pooler.port) as c:
        c.send(_bytes_startup([(b"user", user), (b"database", db),
                               (b"application_name", b"app\r\n" + FORGED + b" app")]))
        kind, body = c.read_message()
        if kind == b"R" and struct.unpack("!i", body[:4])[0] == 5:
            c.send(message(b"p", b"md5" + b"0" * 32 + b"\0"))
            kind, body = c.read_message()
        assert kind == b"E", (kind, body)
        assert error_fields(body)["C"] == "28P01"


@pytest.mark.sluice_only("PgBouncer 1.18 writes control characters from names into its log as they are")
def test_control_characters_in_names_do_not_forge_text_log_lines(make_pooler):
    pooler = make_pooler(auth_type="md5")
    _hostile_login(pooler, b"evil\n" + FORGED + b" user", b"db\r\n" + FORGED + b" db\x1b[2J")
    wait_until(lambda: "password authentication failed" in pooler.log_text(), 10,
               "the failed login in the log")
    text = pooler.log_text()
    for line in text.splitlines():
        assert not line.startswith("2031-01-01"), line
        assert "\x1b" not in line, line
    assert "evil\\n2031-01-01" in text
    assert "db\\r\\n2031-01-01" in text and "\\x1b[2J" in text


@pytest.mark.sluice_only("log_json is a sluice setting")
def test_json_log_lines_stay_valid_json_with_hostile_names(make_pooler):
    pooler = make_pooler(auth_type="md5", log_json=1)
    _hostile_login(pooler, b"evil\n\xff\xfe" + FORGED, b"db\"\\\x01x\x7f\xc3")
    wait_until(lambda: "password authentication failed" in _read(pooler.logfile), 10,
               "the failed login in the log")
    with open(pooler.logfile, "rb") as f:
        raw = f.read()
    msgs = []
    for line in raw.split(b"\n"):
        if line:
            msgs.append(json.loads(line.decode("utf-8"))["msg"])  # strict UTF-8 and JSON
    attempt = [m for m in msgs if "login attempt" in m]
    assert attempt and "evil\n\u00ff\u00fe2031" in attempt[0], attempt


# -- item 10: out of file descriptors, new clients are refused with an error -------------------

def _sanitized(path: str) -> bool:
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    return "libasan" in out or "libubsan" in out


@pytest.mark.sluice_only("PgBouncer leaves clients in the backlog when out of descriptors")
def test_out_of_descriptors_new_clients_get_53300_and_service_recovers(make_pooler, pooler_binary):
    if _sanitized(pooler_binary.path):
        # UBSan's vptr check probes memory through a new pipe; without descriptors it reports
        # a false "invalid vptr" and, unrecoverable, ends the process.
        pytest.skip("a sanitizer runtime needs descriptors of its own")
    pooler = make_pooler(pool_mode="transaction", workers=1, default_pool_size=1, start=False)
    pooler.nofile_limit = 64
    pooler.start()
    held = [WireConn(pooler.host, pooler.port)]
    try:
        held[0].login("app", "appdb")
        assert held[0].query("select 1") == [["1"]]  # the one server connection is open now
        log_mark = pooler.log_size()
        # Clients until the descriptors run out: the first one that does not fit is refused at
        # once with an error (it used to wait in the listen backlog).
        refusal = None
        while refusal is None:
            assert len(held) < 64, "never ran out of descriptors"
            c = WireConn(pooler.host, pooler.port, timeout=5)
            try:
                c.login("app", "appdb")
                held.append(c)
            except ServerError as e:
                refusal = e.fields
                c.close()
        assert refusal["C"] == "53300", refusal
        assert refusal["S"] == "FATAL"
        refused = 1
        for _ in range(14):
            t0 = time.monotonic()
            with WireConn(pooler.host, pooler.port, timeout=5) as c, pytest.raises(ServerError) as e:
                c.login("app", "appdb")
            assert e.value.fields["C"] == "53300", e.value.fields
            assert time.monotonic() - t0 < 5
            refused += 1
        # Everyone logged in still works.
        for c in held[:5]:
            assert c.query("select 2") == [["2"]]

        # The warning is rate-limited and counts every refusal.
        def reported():
            counts = [int(m.split("refused ")[1].split(" ")[0])
                      for m in pooler.log_since(log_mark).splitlines() if "refused " in m]
            return counts if sum(counts) == refused else None

        counts = wait_until(reported, 10, "every refusal reported")
        assert len(counts) <= 5, counts
        assert "pausing for a tick" not in pooler.log_since(log_mark)
        # A descriptor comes free: the next client gets in.
        held.pop().close()

        def logs_in():
            with WireConn(pooler.host, pooler.port, timeout=5) as c:
                c.login("app", "appdb")
                return c.query("select 3") == [["3"]]

        wait_until(logs_in, 10, "a login once a descriptor is free")
    finally:
        for c in held:
            c.close()


# -- item 13: CancelRequests are limited per source address ------------------------------------

def _cancel_from(pooler, source: str, pid: int, key: int) -> None:
    """One CancelRequest from `source`; returns when the pooler has closed the connection."""
    with socket.create_connection((pooler.host, pooler.port), timeout=10,
                                  source_address=(source, 0)) as s:
        s.sendall(cancel_request(pid, key))
        while s.recv(4096):
            pass


@pytest.mark.sluice_only("cancel_rate_limit is a sluice setting")
def test_cancel_requests_are_limited_per_source_address(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", workers=2, cancel_rate_limit=1)
    with WireConn(pooler.host, pooler.port, timeout=10) as victim:
        victim.login("app", "appdb")
        pid, key = victim.backend_key
        victim.send(query_message("select pg_sleep(30) -- victim"))
        wait_until(lambda: pg.sql("select count(*) from pg_stat_activity where state = 'active' "
                                  "and query like '%-- victim'")[0][0] == 1, 10, "the victim query")
        for i in range(30):  # a flood of wrong keys from 127.0.0.2
            _cancel_from(pooler, "127.0.0.2", pid ^ 0x5A5A, i)
        # Its bucket is empty: even the right key from there is dropped, nothing reaches the server.
        _cancel_from(pooler, "127.0.0.2", pid, key)
        with pytest.raises(TimeoutError):
            victim.read_message(timeout=0.5)  # proving a negative needs a bounded wait
        # Another source is not affected.
        _cancel_from(pooler, "127.0.0.1", pid, key)
        with pytest.raises(ServerError) as e:
            victim.read_result(timeout=10)
        assert e.value.fields["C"] == "57014"
        assert victim.query("select 5") == [["5"]]
    wait_until(lambda: "cancel_rate_limit: dropped" in pooler.log_text(), 10, "the warning")
