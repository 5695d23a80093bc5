# Process lifecycle: reload on SIGHUP, shutdown signals, pidfile, daemon mode, --version and --help.
import os
import signal
import subprocess
import threading
import time

import psycopg
import pytest

from sluice_it.pooler import wait_pid_gone
from sluice_it.util import tcp_accepts, wait_until


def _can_query(pooler, dbname: str) -> bool:
    with pooler.connect(dbname=dbname) as conn:
        return conn.execute("select current_database()").fetchone()[0] is not None


def test_sighup_adds_database_and_raises_pool_size_without_dropping_clients(make_pooler):
    pooler = make_pooler(pool_mode="session", default_pool_size=1, query_wait_timeout=30)
    a = pooler.connect()
    try:
        pid_a = a.execute("select pg_backend_pid()").fetchone()[0]
        with pytest.raises(psycopg.OperationalError):
            pooler.connect(dbname="newdb").close()

        pooler.reload(settings={"default_pool_size": 3},
                      databases={**pooler.databases, "newdb": pooler.db_entry("db2")})
        wait_until(lambda: _can_query(pooler, "newdb"), 10, "newdb to appear after SIGHUP")
        assert pooler.running()

        # A kept its connection and its server.
        assert a.execute("select pg_backend_pid()").fetchone()[0] == pid_a
        # Two more session clients get servers of their own at once: the pool grew to 3.
        with pooler.connect() as b, pooler.connect() as c:
            t0 = time.monotonic()
            pids = {pid_a, b.execute("select pg_backend_pid()").fetchone()[0],
                    c.execute("select pg_backend_pid()").fetchone()[0]}
            assert len(pids) == 3
            assert time.monotonic() - t0 < 2
        with pooler.connect(dbname="newdb") as n:
            assert n.execute("select current_database()").fetchone() == ("db2",)
    finally:
        a.close()


def test_sighup_with_unchanged_config_keeps_everything(make_pooler):
    pooler = make_pooler(pool_mode="session")
    with pooler.connect() as a:
        pid = a.execute("select pg_backend_pid()").fetchone()[0]
        for _ in range(3):
            pooler.signal(signal.SIGHUP)
        assert a.execute("select pg_backend_pid()").fetchone()[0] == pid
        assert _can_query(pooler, "appdb")


# SIGTERM as PgBouncer 1.23+ reads it (SHUTDOWN WAIT_FOR_CLIENTS): no new clients, open
# transactions run to their end, and the process exits when the last client has gone.
@pytest.mark.sluice_only("PgBouncer 1.18's SIGTERM is an immediate shutdown (graceful came in 1.23)")
def test_sigterm_refuses_new_clients_and_lets_open_transaction_commit(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2)
    pg.sql("drop table if exists it_sigterm; create table it_sigterm(x int); grant all on it_sigterm to app",
           dbname="appdb")
    idle = pooler.connect()
    tx = pooler.connect()
    tx.execute("begin")
    tx.execute("insert into it_sigterm values (1)")

    pooler.signal(signal.SIGTERM)
    # New connections are refused (at TCP level, or with an error) within bounded time.
    def refused() -> bool:
        try:
            pooler.connect(connect_timeout=2).close()
            return False
        except psycopg.OperationalError:
            return True
    wait_until(refused, 5, "new connections to be refused after SIGTERM")
    assert pooler.running(), "exited while a transaction was still open"

    tx.execute("insert into it_sigterm values (2)")
    tx.execute("commit")
    assert pg.sql("select array_agg(x order by x) from it_sigterm", dbname="appdb")[0][0] == [1, 2]
    idle.execute("select 1")  # connected clients keep being served
    assert pooler.running()
    idle.close()
    tx.close()
    assert pooler.wait_exit(10) is not None


def test_sigint_exits_quickly_with_idle_clients(make_pooler):
    pooler = make_pooler(pool_mode="transaction")
    clients = [pooler.connect() for _ in range(3)]
    try:
        for c in clients:
            c.execute("select 1")
        t0 = time.monotonic()
        pooler.signal(signal.SIGINT)
        pooler.wait_exit(5)
        assert time.monotonic() - t0 < 5
        assert not tcp_accepts(pooler.host, pooler.port)
    finally:
        for c in clients:
            c.close()


def test_sigquit_exits_at_once_even_with_busy_clients(make_pooler, pg):
    pooler = make_pooler(pool_mode="session")
    busy = pooler.connect()
    stuck = threading.Thread(target=_swallow, args=(busy, "select pg_sleep(30)"), daemon=True)
    stuck.start()
    try:
        wait_until(lambda: pg.sql("select count(*) from pg_stat_activity where query = 'select pg_sleep(30)'")
                   [0][0] == 1, 5, "the long query to start")
        t0 = time.monotonic()
        pooler.signal(signal.SIGQUIT)
        pooler.wait_exit(3)
        assert time.monotonic() - t0 < 2
        stuck.join(5)
        assert not stuck.is_alive(), "client still waiting although the pooler is gone"
    finally:
        busy.close()
        pg.sql("select pg_cancel_backend(pid) from pg_stat_activity where query = 'select pg_sleep(30)'")


def _swallow(conn, sql):
    try:
        conn.execute(sql)
    except psycopg.Error:
        pass


def test_pidfile_written_and_removed(make_pooler):
    pooler = make_pooler(start=False)
    pidfile = os.path.join(pooler.dir, "pooler.pid")
    pooler.settings["pidfile"] = pidfile
    pooler.start()
    wait_until(lambda: os.path.exists(pidfile), 5, "the pidfile")
    with open(pidfile) as f:
        assert int(f.read().strip()) == pooler.pid
    pooler.signal(signal.SIGINT)
    pooler.wait_exit(5)
    assert not os.path.exists(pidfile)


def test_daemon_mode_detaches_and_writes_pidfile(make_pooler):
    pooler = make_pooler(start=False)
    pidfile = os.path.join(pooler.dir, "pooler.pid")
    pooler.settings["pidfile"] = pidfile
    pooler.start("-d", wait=False)
    assert pooler.wait_exit(10) == 0, pooler.log_text()
    pooler.expect_exit = True
    wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 5, "the daemon's pidfile")
    daemon_pid = int(open(pidfile).read().strip())
    try:
        assert daemon_pid != pooler.pid
        wait_until(lambda: tcp_accepts(pooler.host, pooler.port), 10, "the daemon to listen")
        assert _can_query(pooler, "appdb")
    finally:
        try:
            os.kill(daemon_pid, signal.SIGINT)
            wait_pid_gone(daemon_pid, 10)
        except ProcessLookupError:
            pass
    assert not os.path.exists(pidfile)


def test_version_first_line_matches_show_version(make_pooler, pooler_binary):
    out = subprocess.run([pooler_binary.path, "--version"], capture_output=True, text=True, timeout=10,
                         cwd="/", **pooler_binary.os_user.popen_kwargs())
    assert out.returncode == 0
    first = out.stdout.splitlines()[0].strip()
    assert first
    pooler = make_pooler()
    assert pooler.admin("SHOW VERSION") == [{"version": first}]


def test_help_exits_zero(pooler_binary):
    out = subprocess.run([pooler_binary.path, "--help"], capture_output=True, text=True, timeout=10,
                         cwd="/", **pooler_binary.os_user.popen_kwargs())
    assert out.returncode == 0
    assert "usage" in (out.stdout + out.stderr).lower()


def test_bad_config_fails_to_start_with_a_message(make_pooler):
    pooler = make_pooler(start=False, listen_port="not-a-port")
    pooler.start(wait=False)
    rc = pooler.wait_exit(10)
    pooler.expect_exit = True
    assert rc != 0
    assert "listen_port" in pooler.log_text()
