# The connection budget: pool_size, max_db_connections, max_user_connections, waiting order, wait timeout.
import asyncio
import threading
import time

import psycopg
import pytest

from sluice_it.sampler import ServerConnSampler
from sluice_it.util import wait_until


async def _client(pooler, user: str, dbname: str, k: int, queries: int) -> int:
    conn = await pooler.aconnect(user=user, dbname=dbname)
    try:
        done = 0
        for i in range(queries):
            cur = await conn.execute("select %s::int, pg_sleep(0.002)", (k * 1000 + i,))
            assert (await cur.fetchone())[0] == k * 1000 + i
            done += 1
        return done
    finally:
        await conn.close()


def _run_clients(pooler, targets: list[tuple[str, str]], queries: int = 10) -> list:
    """One concurrent client per (user, db) in targets; returns each client's result or exception."""

    async def main():
        return await asyncio.gather(
            *(_client(pooler, u, d, k, queries) for k, (u, d) in enumerate(targets)), return_exceptions=True
        )

    return asyncio.run(main())


def test_pool_size_is_never_exceeded_with_100_clients(make_pooler, pg):
    pool_size = 5
    pooler = make_pooler(pool_mode="transaction", default_pool_size=pool_size, workers=2)
    with ServerConnSampler(pg) as sampler:
        results = _run_clients(pooler, [("app", "appdb")] * 100, queries=20)
    failures = [r for r in results if not isinstance(r, int)]
    assert not failures, failures[:3]
    assert results == [20] * 100
    assert sampler.samples >= 10
    peak = sampler.max_by_pool[("appdb", "app")]
    assert 2 <= peak <= pool_size, f"peak server connections {peak}, pool_size {pool_size}"


def test_max_db_connections_across_pools(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=5, max_db_connections=3, workers=2)
    with ServerConnSampler(pg) as sampler:
        results = _run_clients(pooler, [("app", "appdb"), ("app2", "appdb")] * 30)
    assert all(isinstance(r, int) for r in results), [r for r in results if not isinstance(r, int)][:3]
    assert sampler.max_by_pool[("appdb", "app")] >= 1 and sampler.max_by_pool[("appdb", "app2")] >= 1
    assert sampler.max_by_db["appdb"] <= 3, sampler.max_by_pool


def test_max_user_connections_across_pools(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=5, max_user_connections=3, workers=2)
    with ServerConnSampler(pg) as sampler:
        results = _run_clients(pooler, [("app", "appdb"), ("app", "db2")] * 30)
    assert all(isinstance(r, int) for r in results), [r for r in results if not isinstance(r, int)][:3]
    assert sampler.max_by_pool[("appdb", "app")] >= 1 and sampler.max_by_pool[("db2", "app")] >= 1
    assert sampler.max_by_user["app"] <= 3, sampler.max_by_pool


def test_per_database_pool_size_overrides_default(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=10, workers=2)
    pooler.reload(databases={**pooler.databases, "appdb": pooler.db_entry("appdb", pool_size=2)})
    wait_until(lambda: pooler.admin("SHOW DATABASES") and any(
        r["name"] == "appdb" and r["pool_size"] == 2 for r in pooler.admin("SHOW DATABASES")), 10,
        "the reload to apply pool_size=2")
    with ServerConnSampler(pg) as sampler:
        results = _run_clients(pooler, [("app", "appdb")] * 30)
    assert results == [10] * 30
    assert sampler.max_by_pool[("appdb", "app")] <= 2


def test_waiting_clients_are_served_in_arrival_order(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1,
                         affinity_wait=0)  # strict FIFO: no waiter passed over for affinity
    pg.sql("drop sequence if exists fifo_seq; create sequence fifo_seq; grant usage on fifo_seq to app",
           dbname="appdb")
    holder = pooler.connect()
    holder.execute("begin")
    holder.execute("select 1")  # the only server connection is now inside this transaction
    results: dict[int, int] = {}
    errors = []
    conns = [pooler.connect() for _ in range(5)]

    def run(i):
        try:
            results[i] = conns[i].execute("select nextval('fifo_seq')").fetchone()[0]
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = []
    try:
        for i in range(5):
            t = threading.Thread(target=run, args=(i,))
            t.start()
            threads.append(t)
            wait_until(lambda: pooler.pool_row("appdb", "app")["cl_waiting"] == i + 1, 10,
                       f"client {i} to be waiting")
        holder.execute("commit")
        for t in threads:
            t.join(20)
        assert not errors, errors
        assert [results[i] for i in range(5)] == sorted(results.values()), results
    finally:
        holder.close()
        for c in conns:
            c.close()


def test_query_wait_timeout_gives_a_clean_error(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=1, query_wait_timeout=1)
    with pooler.connect() as holder:
        holder.execute("begin")
        holder.execute("select 1")
        t0 = time.monotonic()
        with pytest.raises(psycopg.OperationalError) as exc:
            with pooler.connect() as waiter:
                waiter.execute("select 1")
        elapsed = time.monotonic() - t0
        assert "query_wait_timeout" in str(exc.value)
        assert 0.9 <= elapsed < 5, elapsed
        # The holder is unaffected and the pool recovers once it is released.
        assert holder.execute("select 2").fetchone() == (2,)
        holder.execute("commit")
    with pooler.connect() as later:
        assert later.execute("select 3").fetchone() == (3,)


def test_max_client_conn_refuses_extra_clients(make_pooler):
    pooler = make_pooler(pool_mode="transaction", max_client_conn=3)
    conns = [pooler.connect() for _ in range(3)]
    try:
        with pytest.raises(psycopg.OperationalError) as exc:
            pooler.connect().close()
        assert "max_client_conn" in str(exc.value)
        assert all(c.execute("select 1").fetchone() == (1,) for c in conns)
    finally:
        for c in conns:
            c.close()
    # A slot freed is a slot reusable.
    wait_until(lambda: pooler.connect().close() is None, 5, "a freed client slot")


def test_auto_database_pools_are_freed_after_autodb_idle_timeout(make_pooler, pg):
    """PgBouncer's autodb_idle_timeout: pools of databases reached through `*` go away unused."""
    entry = f"host={pg.host} port={pg.port}"
    pooler = make_pooler(pool_mode="transaction", databases={"*": entry, "appdb": entry + " dbname=appdb"},
                         autodb_idle_timeout=1, server_idle_timeout=1)
    with pooler.connect(dbname="db2") as c:
        c.execute("select 1")
    with pooler.connect(dbname="appdb") as c:
        c.execute("select 1")
    assert pooler.pool_row("db2", "app") is not None
    # The idle server closes after server_idle_timeout, then the pool after autodb_idle_timeout.
    wait_until(lambda: pooler.pool_row("db2", "app") is None, 15, "the db2 pool to be freed")
    assert pooler.pool_row("appdb", "app") is not None, "a configured database stays"
    with pooler.connect(dbname="db2") as c:  # and comes back when used again
        assert c.execute("select 1").fetchone()[0] == 1
