# SWITCHOVER db TO '...': moving a database to another PostgreSQL under continuous traffic from 10
# clients, with no client disconnected and no transaction lost or duplicated.
#
# The two servers are independent clusters holding the same table (no replication): each row
# records the server that committed it, so the test can prove where every committed transaction
# went. With streaming replication and a promotion, rows written before the switch would be
# copied to the new server and a transaction sent to the wrong server could go unnoticed; here
# the old server's rows, the new server's rows and the clients' own count of commits must match
# exactly, and per client every commit before the switch is on the old server, every one after
# on the new one.
import os
import threading

import psycopg
import pytest

from sluice_it.console import admin_conn, rows_by, run
from sluice_it.postgres import PASSWORDS, PgCluster
from sluice_it.util import default_child_user, wait_until

pytestmark = pytest.mark.sluice_only("SWITCHOVER is sluice's own command")

CLIENTS = 10
TABLE = "create table if not exists it_switch(client int, seq int, port int, primary key (client, seq))"


@pytest.fixture(scope="module")
def pg2(tmp_root):
    """A second, independent PostgreSQL 15 with the role `app` and the database `appdb`."""
    cluster = PgCluster(os.path.join(tmp_root, "second"), default_child_user("PG_OS_USER"))
    cluster.init()
    cluster.start()
    try:
        with cluster.connect() as conn:
            conn.execute(f"create role app login password '{PASSWORDS['app']}'")
            conn.execute("create database appdb owner app")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def tables(pg, pg2):
    for cluster in (pg, pg2):
        cluster.sql("drop table if exists it_switch", dbname="appdb")
        cluster.sql(TABLE + "; grant all on it_switch to app", dbname="appdb")
    yield
    for cluster in (pg, pg2):
        cluster.sql("drop table if exists it_switch", dbname="appdb")


class Traffic:
    """CLIENTS threads, each on its own connection, committing two-statement transactions."""

    def __init__(self, pooler):
        self.conns = [pooler.connect() for _ in range(CLIENTS)]
        self.committed: list[list[int]] = [[] for _ in range(CLIENTS)]
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def _run(self, k: int) -> None:
        conn = self.conns[k]
        seq = 0
        while not self.stop.is_set():
            try:
                with conn.transaction():
                    conn.execute("insert into it_switch values (%s, %s, current_setting('port')::int)", (k, seq))
                    conn.execute("select pg_sleep(0.002)")
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)
                return
            self.committed[k].append(seq)
            seq += 1

    def counts(self) -> list[int]:
        return [len(c) for c in self.committed]

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        assert not any(t.is_alive() for t in self.threads), "a client hung"

    def close(self) -> None:
        for c in self.conns:
            c.close()


def _rows(cluster) -> list[tuple[int, int, int]]:
    return cluster.sql("select client, seq, port from it_switch order by client, seq", dbname="appdb")


def _server_port(pooler) -> int:
    with pooler.connect() as conn:
        return int(conn.execute("select current_setting('port')").fetchone()[0])


def test_switchover_under_traffic_loses_nothing(make_pooler, pg, pg2, tables):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=5, query_wait_timeout=30)
    traffic = Traffic(pooler)
    try:
        with admin_conn(pooler) as admin:
            wait_until(lambda: min(traffic.counts()) >= 5, 20, "every client to commit before the switch")
            ids_before = sorted(r["id"] for r in rows_by(run(admin, "SHOW CLIENTS")[1], database="appdb"))
            _, rows = run(admin, f"SWITCHOVER appdb TO 'host=127.0.0.1 port={pg2.port}'")
            at_switch = traffic.counts()
            wait_until(lambda: all(n >= m + 5 for n, m in zip(traffic.counts(), at_switch)), 20,
                       "every client to commit after the switch")
            traffic.finish()
            assert not traffic.errors, traffic.errors[:3]

            # No client was disconnected: the same sessions, still usable.
            ids_after = sorted(r["id"] for r in rows_by(run(admin, "SHOW CLIENTS")[1], database="appdb"))
            assert ids_after == ids_before and len(ids_after) == CLIENTS
            for conn in traffic.conns:
                assert conn.execute("select 1").fetchone() == (1,)

            # The pool points at the new server; nothing of the old one is left.
            assert rows_by(run(admin, "SHOW DATABASES")[1], name="appdb")[0]["port"] == pg2.port
            servers = rows_by(run(admin, "SHOW SERVERS")[1], database="appdb")
            assert servers and all(s["port"] == pg2.port for s in servers)
    finally:
        traffic.finish()
        traffic.close()

    old, new = _rows(pg), _rows(pg2)
    assert all(port == pg.port for _, _, port in old) and all(port == pg2.port for _, _, port in new)
    for k in range(CLIENTS):
        on_old = [seq for c, seq, _ in old if c == k]
        on_new = [seq for c, seq, _ in new if c == k]
        # Every commit the client saw is on exactly one server, nothing else is.
        assert sorted(on_old + on_new) == traffic.committed[k], f"client {k}"
        # The switch fell between two of its transactions and never went back.
        assert on_old and on_new and max(on_old) < min(on_new), f"client {k}"


def test_switchover_survives_reload_until_the_file_changes_the_database(make_pooler, pg, pg2):
    pooler = make_pooler(pool_mode="transaction")
    assert _server_port(pooler) == pg.port
    pooler.admin(f"SWITCHOVER appdb TO 'host=127.0.0.1 port={pg2.port}'")
    assert _server_port(pooler) == pg2.port
    # A reload of a file that did not change appdb keeps the switchover.
    pooler.admin("RELOAD")
    assert _server_port(pooler) == pg2.port
    assert rows_by(pooler.admin("SHOW DATABASES"), name="appdb")[0]["port"] == pg2.port
    # A file that changes appdb's address wins.
    pooler.databases["appdb"] = f"host=localhost port={pg.port} dbname=appdb"
    pooler.write_files()
    pooler.admin("RELOAD")
    wait_until(lambda: _server_port(pooler) == pg.port, 10, "the file's address to take over")
    assert "replaces the switchover" in pooler.log_text()


def test_switchover_that_times_out_stays_on_the_old_server(make_pooler, pg, pg2):
    pooler = make_pooler(pool_mode="transaction", query_wait_timeout=30)
    holder = pooler.connect()
    other = pooler.connect()
    try:
        holder.execute("begin")
        holder.execute("select 1")
        other.execute("select 1")
        with admin_conn(pooler) as admin:
            with pytest.raises(psycopg.errors.QueryCanceled, match="timed out"):
                run(admin, f"SWITCHOVER appdb TO 'host=127.0.0.1 port={pg2.port}' TIMEOUT 0.5")
            assert rows_by(run(admin, "SHOW DATABASES")[1], name="appdb")[0]["paused"] == 0
        assert other.execute("select current_setting('port')").fetchone()[0] == str(pg.port)
        holder.execute("commit")
        assert holder.execute("select current_setting('port')").fetchone()[0] == str(pg.port)
    finally:
        holder.close()
        other.close()


def test_switchover_refuses_bad_targets(make_pooler):
    pooler = make_pooler()
    with admin_conn(pooler) as admin:
        for command, message in [
            ("SWITCHOVER appdb TO 'host=x dbname=y'", "only host and port"),
            ("SWITCHOVER appdb TO 'port=notaport'", "bad port"),
            ("SWITCHOVER appdb 'host=x'", "syntax"),
            ("SWITCHOVER nosuchdb TO 'host=x'", "no such database"),
            ("SWITCHOVER pgbouncer TO 'host=x'", "admin db"),
        ]:
            with pytest.raises(psycopg.Error, match=message):
                run(admin, command)
