# Regressions for what the live-socket fuzzer (tests/fuzz/live) found, as raw wire streams.
import struct
import time

import pytest

from sluice_it.util import wait_until
from sluice_it.wire import WireConn, error_fields, message, query_message

IN_TX = ("select count(*) from pg_stat_activity where backend_type = 'client backend'"
         " and usename = 'app' and state like 'idle in transaction%'")

# An Execute that fails, each way: a portal that does not exist, and (what the fuzzer sent) a
# message without its row limit.
FAILING_EXECUTES = {
    "no_such_portal": message(b"E", b"no_such_portal\0" + struct.pack("!i", 0)),
    "truncated_execute": message(b"E", b"commit\0"),
}


@pytest.mark.parametrize("execute", sorted(FAILING_EXECUTES))
def test_client_leaving_while_the_server_skips_to_sync_leaves_no_transaction_open(
        make_pooler, pg, execute):
    """BEGIN, a failing Execute, a Query before any Sync, then the client leaves. The server
    skips the Query and ignores everything until a Sync: a ROLLBACK sent now gets no answer. The
    server was given back to the pool's reset as if idle and stayed idle in transaction (holding
    its locks and the only pool slot) until sluice's internal deadline, 15 s later."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=30)
    with WireConn(pooler.host, pooler.port) as w:
        w.login("app", "appdb")
        w.query("begin; select pg_advisory_xact_lock(5150)")
        w.send(FAILING_EXECUTES[execute] + query_message("select 'skipped by the server'"))
        kind, body = w.read_message()
        assert kind == b"E", (kind, body)
        assert error_fields(body)["C"] in ("34000", "08P01"), error_fields(body)
    wait_until(lambda: pg.sql(IN_TX)[0][0] == 0, 5, "no backend left idle in transaction")
    with pooler.connect() as c:
        t0 = time.monotonic()
        assert c.execute("select pg_try_advisory_xact_lock(5150)").fetchone() == (True,)
        assert time.monotonic() - t0 < 5


def test_server_skipping_to_sync_after_a_failed_extended_copy_is_not_reused(make_pooler, pg):
    """COPY FROM STDIN by Parse/Bind/Execute/Sync fails on bad data. The Sync was read in COPY
    mode and ignored: the server now ignores everything until another Sync. The client leaves;
    that server was given to the next client, whose query then got no answer."""
    pg.sql("create table if not exists fuzz_copy_t (a int)", dbname="appdb")
    pg.sql("grant all on fuzz_copy_t to app", dbname="appdb")
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=30)
    with WireConn(pooler.host, pooler.port) as w:
        w.login("app", "appdb")
        w.send(message(b"P", b"\0copy fuzz_copy_t from stdin\0\0\0")
               + message(b"B", b"\0\0" + b"\0\0" * 3)
               + message(b"E", b"\0" + struct.pack("!i", 0)) + message(b"S"))
        kinds = []
        while b"G" not in kinds:
            kinds.append(w.read_message()[0])
        w.send(message(b"d", b"not a number\n"))
        while True:
            kind, body = w.read_message()
            if kind == b"E":
                assert error_fields(body)["C"] == "22P02", error_fields(body)
                break
    with pooler.connect() as c:
        t0 = time.monotonic()
        assert c.execute("select 'served'").fetchone() == ("served",)
        assert time.monotonic() - t0 < 5
    wait_until(lambda: pg.sql(IN_TX)[0][0] == 0, 5, "no backend left idle in transaction")


def test_server_skipping_to_sync_after_a_failed_flush_leaves_no_transaction_open(make_pooler, pg):
    """Inside a transaction, a Flush with a body: the server fails it (08P01) like any
    extended-query message and ignores everything until a Sync. Nothing was owed for the Flush,
    so the server looked idle when the client left: sluice sent a ROLLBACK the server ignored,
    and the backend stayed idle in transaction (the only pool slot with it) until sluice's
    15 s deadline."""
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=30)
    with WireConn(pooler.host, pooler.port) as w:
        w.login("app", "appdb")
        w.query("begin; create temp table fuzz_flush_t (a int)")
        w.send(message(b"H", b"commit\0"))
        kind, body = w.read_message()
        assert kind == b"E" and error_fields(body)["C"] == "08P01", (kind, body)
    wait_until(lambda: pg.sql(IN_TX)[0][0] == 0, 5, "no backend left idle in transaction")
    with WireConn(pooler.host, pooler.port) as nxt:
        nxt.login("app", "appdb")
        assert nxt.query("select 'served'", timeout=5) == [["served"]]
