# Pool modes: session (server reset between clients), transaction (release at commit), statement.
import time

import psycopg
import pytest

from sluice_it.util import wait_until


def test_session_mode_resets_server_between_clients(make_pooler, pg):
    pooler = make_pooler(pool_mode="session", default_pool_size=1)
    with pooler.connect() as a:
        pid_a = a.execute("select pg_backend_pid()").fetchone()[0]
        default_work_mem = a.execute("show work_mem").fetchone()[0]
        a.execute("set work_mem = '77MB'")
        a.execute("create temp table it_private(secret text)")
        a.execute("insert into it_private values ('from A')")
        a.execute("prepare it_stmt as select 1")
        a.execute("select pg_advisory_lock(4242)")
    with pooler.connect() as b:
        assert b.execute("select pg_backend_pid()").fetchone()[0] == pid_a, "pool_size=1 must reuse A's server"
        assert b.execute("show work_mem").fetchone()[0] == default_work_mem
        assert b.execute("select to_regclass('pg_temp.it_private')").fetchone()[0] is None
        assert b.execute("select count(*) from pg_prepared_statements").fetchone()[0] == 0
        assert pg.sql("select count(*) from pg_locks where locktype = 'advisory' and objid = 4242")[0][0] == 0


def test_session_mode_keeps_the_server_for_the_whole_session(make_pooler):
    pooler = make_pooler(pool_mode="session", default_pool_size=1, query_wait_timeout=1)
    with pooler.connect() as a:
        pid = a.execute("select pg_backend_pid()").fetchone()[0]
        a.execute("set work_mem = '33MB'")
        with pytest.raises(psycopg.OperationalError, match="query_wait_timeout"):
            with pooler.connect() as b:
                b.execute("select 1")
        assert a.execute("select pg_backend_pid(), current_setting('work_mem')").fetchone() == (pid, "33MB")


def test_transaction_mode_releases_the_server_at_commit(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=3)
    with pooler.connect() as a, pooler.connect() as b:
        with a.transaction():
            pid = a.execute("select pg_backend_pid()").fetchone()[0]
            assert a.execute("select pg_backend_pid()").fetchone()[0] == pid
        # A is idle and connected; B must get the (only) server connection right away.
        t0 = time.monotonic()
        assert b.execute("select pg_backend_pid()").fetchone()[0] == pid
        # Not queued until A leaves: that would end in query_wait_timeout (3 s).
        assert time.monotonic() - t0 < 2.5
        assert a.execute("select 1").fetchone() == (1,)


def test_transaction_mode_rolled_back_transaction_releases_the_server(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=3)
    with pooler.connect() as a, pooler.connect() as b:
        a.execute("begin")
        with pytest.raises(psycopg.errors.DivisionByZero):
            a.execute("select 1/0")
        a.execute("rollback")
        assert b.execute("select 1").fetchone() == (1,)


def test_statement_mode_refuses_multi_statement_transactions(make_pooler, pg):
    pooler = make_pooler(pool_mode="statement", default_pool_size=2)
    with pooler.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    # As PgBouncer: the client is closed (the server is rolled back and kept).
    with pytest.raises(psycopg.OperationalError):
        with pooler.connect() as conn:
            conn.execute("begin")
            conn.execute("select 1")
    assert "closing because: transaction blocks not allowed in statement pooling mode" in pooler.log_text()
    with pytest.raises(psycopg.OperationalError):
        with pooler.connect(autocommit=False) as conn:
            conn.execute("select 1")  # psycopg sends BEGIN first
            conn.execute("select 2")
    wait_until(lambda: pg.server_conns(user="app", state="idle in transaction") == 0, 5,
               "no server left inside a transaction")
    with pooler.connect() as conn:
        assert conn.execute("select 2").fetchone() == (2,)


def test_pool_mode_per_database(make_pooler):
    pooler = make_pooler(pool_mode="session", default_pool_size=2)
    pooler.reload(databases={**pooler.databases, "db2": pooler.db_entry("db2", pool_mode="statement")})
    wait_until(lambda: any(r["name"] == "db2" and r["pool_mode"] == "statement"
                           for r in pooler.admin("SHOW DATABASES")), 10, "db2 in statement mode")
    with pooler.connect() as conn:
        conn.execute("begin")
        conn.execute("select 1")
        conn.execute("commit")
    with pytest.raises(psycopg.Error):
        with pooler.connect(dbname="db2") as conn:
            conn.execute("begin")
            conn.execute("select 1")
