# Protocol features through the pooler: pipelining, COPY, large results, notices, parameter status, NOTIFY.
import hashlib
import io
import select
import threading
import time

import psycopg
import pytest
from psycopg import pq

from sluice_it.util import wait_until
from sluice_it.wire import WireConn, query_message

MODES = ["transaction", "session"]


def _flush(pgconn: pq.PGconn, deadline: float) -> None:
    while pgconn.flush() != 0:
        select.select([], [pgconn.socket], [], max(0.0, deadline - time.monotonic()))
        if time.monotonic() > deadline:
            raise TimeoutError("could not flush the pipeline")


def _pipeline_results(pgconn: pq.PGconn, syncs: int, timeout: float = 10.0) -> list:
    """(status name, first value or SQLSTATE) per result until `syncs` PIPELINE_SYNCs, never blocking."""
    deadline = time.monotonic() + timeout
    out = []
    while syncs:
        pgconn.consume_input()
        if pgconn.is_busy():
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pgconn.socket], [], [], left)[0]:
                raise TimeoutError(f"pipeline results missing; got so far {out}")
            continue
        res = pgconn.get_result()
        if res is None:
            continue
        status = pq.ExecStatus(res.status)
        if status == pq.ExecStatus.PIPELINE_SYNC:
            syncs -= 1
            out.append(("SYNC", None))
        elif status == pq.ExecStatus.TUPLES_OK:
            out.append(("TUPLES_OK", res.get_value(0, 0).decode()))
        elif status == pq.ExecStatus.FATAL_ERROR:
            out.append(("ERROR", res.error_field(pq.DiagnosticField.SQLSTATE).decode()))
        else:
            out.append((status.name, None))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_pipeline_error_skips_rest_of_its_sync_and_later_syncs_succeed(make_pooler, mode):
    pooler = make_pooler(pool_mode=mode, default_pool_size=2)
    with pooler.connect() as conn:
        pg = conn.pgconn
        pg.enter_pipeline_mode()
        pg.send_query_params(b"select 1", None)
        pg.pipeline_sync()
        pg.send_query_params(b"select 1/0", None)
        pg.send_query_params(b"select 2", None)
        pg.pipeline_sync()
        pg.send_query_params(b"select $1::int + 1", [b"2"])
        pg.pipeline_sync()
        pg.send_query_params(b"select 4", None)
        pg.pipeline_sync()
        _flush(pg, time.monotonic() + 5)
        results = _pipeline_results(pg, syncs=4)
        pg.exit_pipeline_mode()
        assert results == [
            ("TUPLES_OK", "1"), ("SYNC", None),
            ("ERROR", "22012"), ("PIPELINE_ABORTED", None), ("SYNC", None),
            ("TUPLES_OK", "3"), ("SYNC", None),
            ("TUPLES_OK", "4"), ("SYNC", None),
        ]
        assert conn.execute("select 'after'").fetchone() == ("after",)


@pytest.mark.parametrize("mode", MODES)
def test_pipeline_transaction_rolls_back_on_error(make_pooler, mode):
    pooler = make_pooler(pool_mode=mode, default_pool_size=2)
    table = f"pipe_{mode}"
    with pooler.connect() as conn:
        conn.execute(f"drop table if exists {table}; create table {table}(x int)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.pipeline():
                with conn.transaction():
                    conn.cursor().executemany(f"insert into {table} values (%s)", [(i,) for i in range(50)])
                    conn.execute("select 1/0")
        with conn.pipeline():
            conn.cursor().executemany(f"insert into {table} values (%s)", [(i,) for i in range(100)])
        assert conn.execute(f"select count(*) from {table}").fetchone() == (100,)
        conn.execute(f"drop table {table}")


@pytest.mark.parametrize("mode", MODES)
def test_copy_in_and_out_of_several_megabytes(make_pooler, mode):
    pooler = make_pooler(pool_mode=mode)
    table = f"copy_{mode}"
    rows = 60_000
    payload = io.StringIO()
    for i in range(rows):
        payload.write(f"{i}\t{'row-%08d-' % i}{'x' * 80}\n")
    data = payload.getvalue().encode()
    assert len(data) > 5_000_000
    with pooler.connect() as conn:
        conn.execute(f"drop table if exists {table}; create table {table}(id int, v text)")
        with conn.cursor().copy(f"copy {table} from stdin") as copy:
            for off in range(0, len(data), 65536):
                copy.write(data[off:off + 65536])
        assert conn.execute(f"select count(*) from {table}").fetchone() == (rows,)
        out = bytearray()
        with conn.cursor().copy(f"copy (select * from {table} order by id) to stdout") as copy:
            for chunk in copy:
                out += chunk
        assert hashlib.sha256(out).hexdigest() == hashlib.sha256(data).hexdigest()
        conn.execute(f"drop table {table}")


@pytest.mark.parametrize("mode", MODES)
def test_copy_error_leaves_connection_usable(make_pooler, mode):
    pooler = make_pooler(pool_mode=mode, default_pool_size=1)
    with pooler.connect(dbname="bench") as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with conn.cursor().copy("copy pgbench_branches from stdin") as copy:
                copy.write(b"not-a-number\t1\t\n")
        assert conn.execute("select count(*) from pgbench_branches").fetchone() == (1,)
    # A second client gets the only server connection; it must be clean and idle.
    with pooler.connect(dbname="bench") as conn2:
        assert conn2.execute("select 1").fetchone() == (1,)
        assert conn2.info.transaction_status == pq.TransactionStatus.IDLE


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_large_result_read_slowly_does_not_block_other_clients(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=4)
    rows = 200_000
    rss_before = _rss_kb(pooler.pid)
    slow = WireConn(pooler.host, pooler.port, timeout=30)
    slow.login("app", "appdb")
    slow.send(query_message(f"select g, repeat('y', 100) from generate_series(1, {rows}) g /*slow*/"))
    try:
        # Backpressure reaches the server: its backend blocks writing to the pooler.
        wait_until(lambda: pg.sql("select count(*) from pg_stat_activity where wait_event = 'ClientWrite'"
                                  " and query like '%/*slow*/'")[0][0] == 1,
                   10, "the server backend to block on ClientWrite")
        # What the pooler holds for the slow reader is bounded (the result is about 22 MB).
        assert _rss_kb(pooler.pid) - rss_before < 12_000
        # The slow client reads nothing; its result (about 22 MB) piles up. Others must not notice.
        with pooler.connect() as fast:
            for i in range(30):
                t0 = time.monotonic()
                assert fast.execute("select %s::int", (i,)).fetchone() == (i,)
                assert time.monotonic() - t0 < 3.0  # blocked would be until the slow one reads
        with pooler.connect(dbname="db2") as other_pool:
            t0 = time.monotonic()
            assert other_pool.execute("select 1").fetchone() == (1,)
            assert time.monotonic() - t0 < 3.0
        # Now drain the slow client: every row arrives, in order, then ReadyForQuery.
        count, last, tag = 0, None, None
        while True:
            kind, body = slow.read_message(30)
            if kind == b"D":
                count += 1
                last = body
            elif kind == b"C":
                tag = body.rstrip(b"\0").decode()
            elif kind == b"Z":
                break
            elif kind == b"E":
                pytest.fail(f"error in large result: {body!r}")
        assert count == rows and tag == f"SELECT {rows}"
        assert str(rows).encode() in last
    finally:
        slow.close()


@pytest.mark.parametrize("mode", MODES)
def test_notice_reaches_client(make_pooler, mode):
    pooler = make_pooler(pool_mode=mode)
    notices = []
    with pooler.connect() as conn:
        conn.add_notice_handler(lambda diag: notices.append((diag.severity_nonlocalized, diag.message_primary)))
        conn.execute("do $$ begin raise notice 'hello %', 42; end $$")
        assert notices == [("NOTICE", "hello 42")]
        conn.execute("do $$ begin raise warning 'careful'; end $$")
        assert notices[-1] == ("WARNING", "careful")


@pytest.mark.parametrize("mode", MODES)
def test_startup_application_name_reaches_server(make_pooler, mode):
    pooler = make_pooler(pool_mode=mode)
    with pooler.connect(application_name="it-startup-name") as conn:
        assert conn.execute("select current_setting('application_name')").fetchone() == ("it-startup-name",)
        assert conn.info.parameter_status("application_name") == "it-startup-name"


def test_set_application_name_sends_parameter_status_in_session_mode(make_pooler):
    pooler = make_pooler(pool_mode="session")
    with pooler.connect() as conn:
        conn.execute("set application_name = 'it-changed'")
        assert conn.info.parameter_status("application_name") == "it-changed"
        conn.execute("set datestyle = 'SQL, DMY'")
        assert conn.info.parameter_status("DateStyle") == "SQL, DMY"
        assert conn.execute("select current_setting('application_name')").fetchone() == ("it-changed",)


def test_listen_notify_in_session_mode(make_pooler):
    pooler = make_pooler(pool_mode="session")
    with pooler.connect() as listener, pooler.connect() as sender:
        listener.execute("listen it_channel")
        sender_pid = sender.execute("select pg_backend_pid()").fetchone()[0]
        sender.execute("notify it_channel, 'first'")
        sender.execute("select pg_notify('it_channel', 'second')")
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            select.select([listener.pgconn.socket], [], [], max(0.0, deadline - time.monotonic()))
            listener.pgconn.consume_input()
            while (n := listener.pgconn.notifies()) is not None:
                got.append((n.relname.decode(), n.extra.decode(), n.be_pid))
        assert [(c, p) for c, p, _ in got] == [("it_channel", "first"), ("it_channel", "second")]
        assert got[0][2] == sender_pid  # the server's pid, not the pooler's key


def test_notification_while_idle_is_delivered_without_a_query(make_pooler, pg):
    """A NOTIFY sent directly on Postgres reaches a listener that is idle in the pooler."""
    pooler = make_pooler(pool_mode="session")
    with pooler.connect() as listener:
        listener.execute("listen it_idle")
        pg.sql("notify it_idle, 'direct'", dbname="appdb")
        ready = select.select([listener.pgconn.socket], [], [], 5)[0]
        assert ready, "notification not forwarded while the client was idle"
        listener.pgconn.consume_input()
        n = listener.pgconn.notifies()
        assert n is not None and n.extra == b"direct"


def test_concurrent_clients_get_their_own_results(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=3)
    errors = []

    def worker(k):
        try:
            with pooler.connect() as conn:
                for i in range(50):
                    v = k * 1000 + i
                    assert conn.execute("select %s::int, pg_backend_pid() > 0", (v,)).fetchone() == (v, True)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
