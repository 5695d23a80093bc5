# The server goes away or is not there yet: clients get clean errors in bounded time, then recover.
import time

import psycopg
import pytest

from sluice_it.forwarder import Forwarder
from sluice_it.util import free_port, wait_until


def _query(pooler, **kw):
    with pooler.connect(**kw) as conn:
        return conn.execute("select current_database()").fetchone()[0]


def test_unreachable_server_gives_clean_error_then_recovers(make_pooler, pg):
    dead_port = free_port()
    pooler = make_pooler(pool_mode="transaction", start=False, query_wait_timeout=3,
                         server_connect_timeout=2, server_login_retry=1)
    pooler.databases["appdb"] = pooler.db_entry("appdb", port=dead_port)
    pooler.start()

    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError) as exc:
        _query(pooler, connect_timeout=20)
    elapsed = time.monotonic() - t0
    assert not isinstance(exc.value, psycopg.errors.ConnectionTimeout), "no answer from the pooler"
    assert elapsed < 3 + 3, f"error after {elapsed:.1f}s; expected within query_wait_timeout plus slack"
    # Other databases of the same pooler are not affected.
    assert _query(pooler, dbname="db2") == "db2"

    forwarder = Forwarder(dead_port, (pg.host, pg.port)).start()
    try:
        # After server_login_retry (1 s), new clients get through.
        wait_until(lambda: _query(pooler) == "appdb", 10, "the pool to reconnect to the server")
        assert _query(pooler) == "appdb"
    finally:
        forwarder.stop()


def test_server_connections_killed_while_idle_are_replaced(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2)
    with pooler.connect() as conn:
        conn.execute("select 1")
        pg.sql("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'app'")
        wait_until(lambda: pg.server_conns(user="app") == 0, 5, "backends to be terminated")
        # The dead server may cost this client at most one error; then it is served again.
        def works() -> bool:
            try:
                return conn.execute("select 2").fetchone() == (2,)
            except psycopg.OperationalError:
                return False
        wait_until(works, 5, "the client to be served by a fresh server connection")
    with pooler.connect() as fresh:
        assert fresh.execute("select 3").fetchone() == (3,)


def test_server_killed_under_a_session_client(make_pooler, pg):
    pooler = make_pooler(pool_mode="session", default_pool_size=2)
    victim = pooler.connect()
    try:
        pid = victim.execute("select pg_backend_pid()").fetchone()[0]
        pg.sql("select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            victim.execute("select 1")
    finally:
        victim.close()
    with pooler.connect() as fresh:
        assert fresh.execute("select 1").fetchone() == (1,)


def test_server_gone_mid_transaction_fails_the_client_cleanly(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1)
    with pooler.connect() as conn:
        conn.execute("begin")
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        pg.sql("select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
    with pooler.connect() as fresh:
        assert fresh.execute("select 'fresh'").fetchone() == ("fresh",)
