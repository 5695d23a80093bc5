# Servers that stop answering or misbehave, and clients that leave them half-fed (issue 17 items
# 2, 3 and 12): a server is closed rather than returned dirty or stuck, the client gets a clean
# error, everyone else carries on, and nothing crashes.
import signal
import struct

import pytest

from sluice_it.fake_server import FakeServer, command_complete, data_row, ready, row_description
from sluice_it.util import wait_until
from sluice_it.wire import WireConn, error_fields, message, query_message
from sluice_it.traffic import Background

pytestmark = pytest.mark.sluice_only("issue 17: server faults")

WORKERS = [1, 2]
COPY_BODY = 100_000  # the CopyData frame the client starts and does not finish at once
COPY_HEAD = 1_000  # how much of it comes with the header


def with_fake_db(make_pooler, fake: FakeServer, **settings):
    """A pooler with the usual databases plus `fake`, served by the fake server."""
    pooler = make_pooler(start=False, **settings)
    pooler.databases["fake"] = f"host=127.0.0.1 port={fake.port} dbname=fake"
    return pooler.start()


def read_until_ready(c: WireConn, timeout: float = 10.0) -> list:
    msgs = []
    while True:
        msg = c.read_message(timeout)
        assert msg is not None, f"closed before ReadyForQuery: {msgs}"
        msgs.append(msg)
        if msg[0] == b"Z":
            return msgs


@pytest.fixture
def copy_table(pg):
    pg.sql("create table if not exists sf_copy (a int)", dbname="appdb")
    pg.sql("grant all on sf_copy to public", dbname="appdb")
    return "sf_copy"


def start_copy_with_bad_row(c: WireConn, table: str) -> bytes:
    """COPY FROM STDIN, then a bad row and the head of a big CopyData in one write; returns
    the rest of that CopyData."""
    c.send(query_message(f"copy {table} (a) from stdin"))
    msg = c.read_message()
    assert msg is not None and msg[0] == b"G", msg
    body = b"1\n" * (COPY_BODY // 2)
    head = b"d" + struct.pack("!i", len(body) + 4) + body[:COPY_HEAD]
    c.send(message(b"d", b"not-a-number\n") + head)
    return body[COPY_HEAD:]


# ---------------------------------------------------------------- item 2

@pytest.mark.parametrize("workers", WORKERS)
def test_copy_error_while_client_is_mid_frame_autocommit(make_pooler, copy_table, workers):
    """The server refuses the COPY (ErrorResponse, ReadyForQuery) while the client is in the
    middle of a CopyData frame: the rest of the frame still goes to that server, the client
    gets its error and carries on, and nobody else notices (466515d crashed here)."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2, workers=workers)
    with Background(pooler, 3):
        with WireConn(pooler.host, pooler.port, timeout=10) as c:
            c.login("app", "appdb")
            rest = start_copy_with_bad_row(c, copy_table)
            msgs = read_until_ready(c)
            errors = [error_fields(b) for k, b in msgs if k == b"E"]
            assert [e["C"] for e in errors] == ["22P02"], msgs
            assert msgs[-1] == (b"Z", b"I")
            c.send(rest)
            assert c.query("select 'after'") == [["after"]]
            c.send(message(b"d", b"1\n"))  # stray copy data is dropped, as Postgres does
            assert c.query("select 'again'") == [["again"]]
    assert pooler.running()


# ---------------------------------------------------------------- item 3

@pytest.mark.parametrize("workers", WORKERS)
def test_client_leaving_mid_copy_frame_in_transaction(make_pooler, pg, copy_table, workers):
    """BEGIN; COPY; a bad row; 1 kB of a 100 kB CopyData; disconnect. The server is not
    'quiet' (sluice's ROLLBACK would become the body of the frame): it is closed, the slot comes
    back, no backend stays idle in transaction, and SIGINT shutdown finishes."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, workers=workers)
    with WireConn(pooler.host, pooler.port, timeout=10) as c:
        c.login("app", "appdb")
        c.query("begin")
        start_copy_with_bad_row(c, copy_table)
        msgs = read_until_ready(c)
        assert msgs[-1] == (b"Z", b"E"), msgs
    # The only server slot must come back to the next client.
    with WireConn(pooler.host, pooler.port, timeout=10) as other:
        other.login("app", "appdb")
        assert other.query("select 'next'") == [["next"]]
    wait_until(lambda: pg.server_conns(dbname="appdb", state="idle in transaction (aborted)") == 0,
               10, "no backend left idle in transaction (aborted)")
    pooler.signal(signal.SIGINT)
    assert pooler.wait_exit(10) == 0


# ---------------------------------------------------------------- item 3: deadlines

@pytest.mark.parametrize("workers", WORKERS)
def test_stuck_reset_query_is_closed_at_its_deadline(make_pooler, pg, workers):
    """sluice's own query on a released server (here server_reset_query) that does not finish
    within server_connect_timeout: the server is closed and the slot serves the next client."""
    sleep = "select pg_sleep(30) /* sf-reset */"
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, workers=workers,
                         server_reset_query=sleep, server_reset_query_always=1,
                         server_connect_timeout=1)
    try:
        with WireConn(pooler.host, pooler.port, timeout=10) as a:
            a.login("app", "appdb")
            assert a.query("select 'a'") == [["a"]]  # released: the reset query starts
        wait_until(lambda: pg.sql("select count(*) from pg_stat_activity where query = %s",
                                  [sleep])[0][0] > 0, 10, "the reset query to run")
        with WireConn(pooler.host, pooler.port, timeout=10) as b:
            b.login("app", "appdb")
            assert b.query("select 'b'") == [["b"]]
        assert "internal query timeout (server reset)" in pooler.log_text()
    finally:
        pg.sql("select pg_terminate_backend(pid) from pg_stat_activity where query = %s", [sleep])


@pytest.mark.parametrize("stalled", ["set_config", "pg_settings"])
def test_stuck_parameter_sync_or_probe_is_closed_at_its_deadline(make_pooler, stalled):
    """The parameter sync on checkout (set_config) or the session probe after a SET
    (pg_settings) gets no answer: within server_connect_timeout the client gets 08006 and the
    server is closed, never returned."""
    fake = FakeServer(lambda sql: FakeServer.STALL if stalled in sql else None).start()
    try:
        pooler = with_fake_db(make_pooler, fake, pool_mode="transaction", default_pool_size=2,
                              workers=1, server_connect_timeout=1)
        with WireConn(pooler.host, pooler.port, timeout=10) as c:
            c.login("app", "fake", application_name="not-the-pools")
            c.send(query_message("set work_mem = '8MB'" if stalled == "pg_settings" else "select 1"))
            msgs = c.read_until_closed(10)
        errors = [error_fields(b) for k, b in msgs if k == b"E"]
        assert errors and errors[-1]["C"] == "08006", msgs
        assert "internal query timeout" in errors[-1]["M"]
        wait_until(lambda: fake.open_connections() == 0, 10, "the stuck server to be closed")
    finally:
        fake.stop()


# ---------------------------------------------------------------- item 12

BAD_ANSWERS = {
    "garbage": b"\x00\x01\x02garbage that is not the protocol",
    "huge_datarow": row_description() + b"D" + struct.pack("!I", 0x7FFFFFF0) + b"\x00\x01",
    "datarow_over_1gib": row_description() + b"D" + struct.pack("!I", (1 << 30) + 1) + b"\x00\x01",
    "rfq_status": row_description() + data_row("x") + command_complete("SELECT 1") +
    message(b"Z", b"X"),
    "rfq_length": row_description() + data_row("x") + command_complete("SELECT 1") +
    message(b"Z", b"II"),
    "unknown_type": message(b"Y", b"whatever"),
    "auth_after_login": message(b"R", struct.pack("!i", 0)) + ready(),
    "fixed_length": message(b"1", b"extra") + ready(),
}


@pytest.mark.parametrize("bad", sorted(BAD_ANSWERS))
def test_server_protocol_violation_closes_that_server_only(make_pooler, bad):
    """A server answering with what no server may send: that server is closed, its client gets
    08006, the next client gets a fresh server, clients of other databases carry on."""
    fake = FakeServer(lambda sql: BAD_ANSWERS[bad] if "bad" in sql else None).start()
    try:
        pooler = with_fake_db(make_pooler, fake, pool_mode="transaction", default_pool_size=2,
                              workers=2)
        with Background(pooler, 2):
            with WireConn(pooler.host, pooler.port, timeout=10) as c:
                c.login("app", "fake")
                assert c.query("select 'ok'") == [["select 'ok'"]]
                c.send(query_message("select 'bad'"))
                msgs = c.read_until_closed(10)
            assert all(k in (b"T", b"D", b"C", b"E") for k, _ in msgs), msgs
            errors = [error_fields(b) for k, b in msgs if k == b"E"]
            assert errors and errors[-1]["C"] == "08006", msgs
            assert errors[-1]["M"] == "server protocol violation"
            with WireConn(pooler.host, pooler.port, timeout=10) as d:
                d.login("app", "fake")
                assert d.query("select 'fine'") == [["select 'fine'"]]
        assert "sent an invalid message" in pooler.log_text()
        assert pooler.running()
    finally:
        fake.stop()


def test_server_protocol_violation_during_sluices_own_query(make_pooler):
    """The same checks hold for sluice's own queries (here the DISCARD ALL of session mode when
    a client leaves): the server is closed at once, not left waiting for a ReadyForQuery."""
    fake = FakeServer(lambda sql: message(b"Y", b"junk") if sql.upper().startswith("DISCARD")
                      else None).start()
    try:
        pooler = with_fake_db(make_pooler, fake, pool_mode="session", default_pool_size=1,
                              workers=1)
        with WireConn(pooler.host, pooler.port, timeout=10) as a:
            a.login("app", "fake")
            assert a.query("select 'a'") == [["select 'a'"]]
        wait_until(lambda: "server protocol violation" in pooler.log_text(), 5,
                   "the server to be closed for its answer to DISCARD ALL")
        with WireConn(pooler.host, pooler.port, timeout=5) as b:
            b.login("app", "fake")
            assert b.query("select 'b'") == [["select 'b'"]]
    finally:
        fake.stop()
