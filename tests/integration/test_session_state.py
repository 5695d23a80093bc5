# Transaction pooling that behaves like a direct connection (issue 3): settings, prepared
# statements, SQL PREPARE, pins for advisory locks / LISTEN / temp tables / WITH HOLD cursors.
# Every test runs more clients than servers, with another client taking the released server in
# between: that is what exposes state leaking from one client to the next.
import asyncio
import json
import os
import select
import subprocess
import threading
import time

import asyncpg
import psycopg
import pytest

from sluice_it.util import wait_until

pytestmark = pytest.mark.sluice_only("session state in transaction pooling")

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


def tx_pooler(make_pooler, pool_size=1, **settings):
    return make_pooler(pool_mode="transaction", default_pool_size=pool_size, **settings)


def backend_pid(conn) -> int:
    return conn.execute("select pg_backend_pid()").fetchone()[0]


# ---------------------------------------------------------------- settings


def test_set_survives_transactions_and_never_reaches_another_client(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect() as a, pooler.connect() as b:
        a.execute("set statement_timeout = '4321ms'")
        a.execute("set search_path = private_a, public")
        # B takes the only server in between.
        assert b.execute("show statement_timeout").fetchone()[0] == "0"
        assert b.execute("show search_path").fetchone()[0] == '"$user", public'
        assert a.execute("show statement_timeout").fetchone()[0] == "4321ms"
        assert a.execute("show search_path").fetchone()[0] == "private_a, public"
        b.execute("set statement_timeout = '7s'")
        assert a.execute("show statement_timeout").fetchone()[0] == "4321ms"
        assert b.execute("show statement_timeout").fetchone()[0] == "7s"


def test_statement_timeout_is_enforced_after_switching_servers(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect() as a, pooler.connect() as b:
        a.execute("set statement_timeout = '200ms'")
        with b.transaction():  # hold one server so that A may land on the other
            b.execute("select 1")
            with pytest.raises(psycopg.errors.QueryCanceled):
                a.execute("select pg_sleep(3)")
        b.execute("select pg_sleep(0.3)")  # B is not limited


def test_set_local_and_rolled_back_set_do_not_stick(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect(autocommit=False) as a, pooler.connect() as b:
        a.execute("set local work_mem = '7MB'")
        assert a.execute("show work_mem").fetchone()[0] == "7MB"
        a.commit()
        a.execute("set work_mem = '9MB'")
        a.rollback()
        assert b.execute("show work_mem").fetchone()[0] == "4MB"
        assert a.execute("show work_mem").fetchone()[0] == "4MB"
        a.commit()


def test_reset_discard_and_set_config(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect() as a, pooler.connect() as b:
        a.execute("select set_config('work_mem', '11MB', false)")
        assert b.execute("show work_mem").fetchone()[0] == "4MB"
        assert a.execute("show work_mem").fetchone()[0] == "11MB"
        a.execute("select set_config('work_mem', '12MB', true)")  # transaction-local
        assert a.execute("show work_mem").fetchone()[0] == "11MB"
        a.execute("reset work_mem")
        assert a.execute("show work_mem").fetchone()[0] == "4MB"
        a.execute("set work_mem = '13MB'")
        a.execute("set statement_timeout = '5s'")
        a.execute("reset all")
        assert b.execute("show statement_timeout").fetchone()[0] == "0"
        assert a.execute("show work_mem").fetchone()[0] == "4MB"
        assert a.execute("show statement_timeout").fetchone()[0] == "0"
        a.execute("set work_mem = '14MB'")
        a.execute("discard all")
        assert a.execute("show work_mem").fetchone()[0] == "4MB"


def test_startup_options_are_kept_per_client(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect(options="-c statement_timeout=2500 -c search_path=opt_s") as a, \
            pooler.connect() as b:
        assert a.execute("show statement_timeout").fetchone()[0] == "2500ms"
        assert b.execute("show statement_timeout").fetchone()[0] == "0"
        assert a.execute("show search_path").fetchone()[0] == "opt_s"
        assert b.execute("show search_path").fetchone()[0] == '"$user", public'


def test_parameter_status_keeps_both_sides_right(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect(application_name="app-a") as a, pooler.connect(application_name="app-b") as b:
        assert a.info.parameter_status("application_name") == "app-a"
        a.execute("set application_name = 'renamed-a'")
        assert a.info.parameter_status("application_name") == "renamed-a"
        assert b.execute("show application_name").fetchone()[0] == "app-b"
        assert a.execute("show application_name").fetchone()[0] == "renamed-a"
        a.execute("set timezone = 'Asia/Tokyo'")
        assert a.info.parameter_status("TimeZone") == "Asia/Tokyo"
        assert b.execute("show timezone").fetchone()[0] != "Asia/Tokyo"


def test_tracking_off_is_pgbouncer_behaviour(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1, track_session_state=0)
    with pooler.connect() as a, pooler.connect() as b:
        a.execute("set work_mem = '15MB'")
        # Not tracked: the setting stays on the server (what PgBouncer does).
        assert b.execute("show work_mem").fetchone()[0] == "15MB"


# ---------------------------------------------------------------- prepared statements


def test_psycopg_prepare_threshold_zero_many_clients(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    errors = []

    def client(k):
        try:
            with pooler.connect(prepare_threshold=0) as c:
                for i in range(30):
                    assert c.execute("select %s::int * 2, %s::text", (i, f"c{k}")).fetchone() == (2 * i, f"c{k}")
                    with c.transaction():
                        assert c.execute("select %s::int + 1", (i,)).fetchone() == (i + 1,)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


async def _asyncpg_client(pooler, k, n):
    info = pooler.conninfo()
    conn = await asyncpg.connect(host=info["host"], port=info["port"], user=info["user"],
                                 password=info["password"], database=info["dbname"], timeout=10)
    try:
        stmt = await conn.prepare("select $1::int + $2::int")
        for i in range(n):
            assert await stmt.fetchval(k, i) == k + i
            assert await conn.fetchval("select $1::text || $2::text", f"c{k}", str(i)) == f"c{k}{i}"
            async with conn.transaction():
                assert await conn.fetchval("select $1::int8 * 3", i) == 3 * i
        return n
    finally:
        await conn.close()


def test_asyncpg_statement_cache_in_transaction_mode(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)

    async def main():
        return await asyncio.gather(*(_asyncpg_client(pooler, k, 20) for k in range(12)),
                                    return_exceptions=True)

    assert asyncio.run(main()) == [20] * 12


def test_node_postgres_named_queries_in_transaction_mode(make_pooler):
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")):
        pytest.fail(f"node-postgres is not installed: run `npm ci` in {NODE_DIR}")
    pooler = tx_pooler(make_pooler, pool_size=2)
    info = pooler.conninfo()
    cfg = {"host": info["host"], "port": info["port"], "user": info["user"],
           "password": info["password"], "database": info["dbname"], "clients": 12, "queries": 20,
           "named": True}
    out = subprocess.run(["node", os.path.join(NODE_DIR, "clients.js"), json.dumps(cfg)],
                         cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"ok": [20] * 12, "errors": []}


def test_named_statements_shared_and_reprepared_across_servers(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect(prepare_threshold=0) as a, pooler.connect(prepare_threshold=0) as b, \
            pooler.connect() as c:
        a.execute("select 41 + %s::int", (1,))
        with c.transaction():  # C holds one server: A and B share the other, then switch
            c.execute("select 1")
            assert a.execute("select 41 + %s::int", (1,)).fetchone() == (42,)
            assert b.execute("select 41 + %s::int", (2,)).fetchone() == (43,)
        with b.transaction():
            b.execute("select 1")
            assert a.execute("select 41 + %s::int", (3,)).fetchone() == (44,)
        # The server side knows statements by registry name, never the client's.
        names = pooler.pg.sql("select count(*) from pg_stat_activity where query like 'select 41 +%'")
        assert names


def test_max_prepared_statements_lru_on_each_server(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1, max_prepared_statements=3)
    with pooler.connect(prepare_threshold=0) as a:
        for i in range(8):
            assert a.execute(f"select {i} + %s::int", (1,)).fetchone() == (i + 1,)
        n = a.execute("select count(*) from pg_prepared_statements").fetchone()[0]
        assert n <= 3
        for i in range(8):  # evicted ones come back transparently
            assert a.execute(f"select {i} + %s::int", (1,)).fetchone() == (i + 1,)


def test_sql_prepare_execute_in_later_transactions(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect() as a, pooler.connect() as b, pooler.connect() as c:
        a.execute("prepare twice(int) as select $1 * 2")
        with c.transaction():  # A's next transaction may run on the other server
            c.execute("select 1")
            assert a.execute("execute twice(21)").fetchone() == (42,)
        b.execute("prepare twice(int) as select $1 * 3")  # same name, another client
        assert b.execute("execute twice(5)").fetchone() == (15,)
        assert a.execute("execute twice(5)").fetchone() == (10,)
        a.execute("deallocate twice")
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            a.execute("execute twice(1)")
        assert b.execute("execute twice(2)").fetchone() == (6,)


def test_explain_and_create_table_as_execute_find_the_statement_on_another_server(make_pooler):
    # PostgreSQL's regression tests rowsecurity, partition_prune and prepare do this.
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect() as a, pooler.connect() as c:
        a.execute("prepare twice(int) as select $1 * 2 as x")
        with c.transaction():  # C takes A's server: A's next statements run on the other one
            c.execute("select 1")
            plan = a.execute("explain (costs off) execute twice(21)").fetchall()
            assert plan == [("Result",)]
        with c.transaction():
            c.execute("select 1")
            a.execute("create temp table ctas_exec as execute twice(4)")
            assert a.execute("select x from ctas_exec").fetchone() == (8,)
            a.execute("drop table ctas_exec")


def test_prepare_of_a_name_the_client_has_fails_as_directly(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect() as a, pooler.connect() as c:
        a.execute("prepare once as select 1")
        with c.transaction():  # on the other server, A's statement must still be there
            c.execute("select 1")
            with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
                a.execute("prepare once as select 2")
        assert a.execute("execute once").fetchone() == (1,)
        a.execute("deallocate once")
        a.execute("prepare once as select 3")
        assert a.execute("execute once").fetchone() == (3,)


def test_temp_objects_other_than_tables_pin(make_pooler):
    # A temp function or statistics object lives on one backend: its client keeps that server and
    # nobody else sees it (PostgreSQL's regression test stats_ext).
    pooler = tx_pooler(make_pooler, pool_size=2)
    temp_objects = ("select (select count(*) from pg_proc where pronamespace = pg_my_temp_schema())"
                    " + (select count(*) from pg_statistic_ext where stxnamespace = pg_my_temp_schema())")
    with pooler.connect() as a, pooler.connect() as b:
        a.execute("create table stats_src(a int, b int)")
        try:
            a.execute("create function pg_temp.seven() returns int language sql as 'select 7'")
            a.execute("create statistics pg_temp.st_tmp on a, b from stats_src")
            assert b.execute(temp_objects).fetchone() == (0,)  # B never gets A's server
            assert a.execute("select pg_temp.seven()").fetchone() == (7,)
            a.execute("drop statistics pg_temp.st_tmp")
            a.execute("drop function pg_temp.seven()")
            assert b.execute(temp_objects).fetchone() == (0,)
            wait_until(lambda: not [r for r in pooler.admin("SHOW PINS")], 10, "A's pin to end")
        finally:
            a.execute("drop table stats_src")


# ---------------------------------------------------------------- pins


def test_advisory_lock_pins_until_unlock(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect() as a, pooler.connect() as b, pooler.connect() as c:
        a.execute("select pg_advisory_lock(4242)")
        pid_a = backend_pid(a)
        assert b.execute("select pg_try_advisory_lock(4242)").fetchone() == (False,)
        for _ in range(5):  # A keeps its server while others come and go
            c.execute("select 1")
            assert backend_pid(a) == pid_a
        assert a.execute("select pg_advisory_unlock(4242)").fetchone() == (True,)
        locks = pooler.pg.sql("select count(*) from pg_locks where locktype = 'advisory' and pid = %s",
                              (pid_a,), dbname="appdb")
        assert locks == [(0,)]
        assert b.execute("select pg_try_advisory_lock(4242)").fetchone() == (True,)
        assert b.execute("select pg_advisory_unlock(4242)").fetchone() == (True,)


def test_pins_are_shown_in_show_pins_and_show_clients(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect() as a, pooler.connect() as b:
        b.execute("select 1")
        assert pooler.admin("SHOW PINS") == []
        a.execute("select pg_advisory_lock(4343)")
        pins = pooler.admin("SHOW PINS")
        assert len(pins) == 1
        assert pins[0]["reason"] == "advisory lock" and pins[0]["user"] == "app"
        assert pins[0]["database"] == "appdb" and pins[0]["server_id"] is not None
        clients = [c for c in pooler.admin("SHOW CLIENTS") if c["database"] == "appdb"]
        assert sorted(c["pinned"] for c in clients) == ["", "advisory lock"]
        pinned = [c for c in clients if c["pinned"]][0]
        assert int(pinned["id"]) == int(pins[0]["client_id"])
        a.execute("select pg_advisory_unlock(4343)")
        assert pooler.admin("SHOW PINS") == []


def test_advisory_lock_freed_when_client_disconnects(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1)
    a = pooler.connect()
    a.execute("select pg_advisory_lock(777)")
    a.close()
    with pooler.connect() as b:
        assert b.execute("select pg_try_advisory_lock(777)").fetchone() == (True,)
        b.execute("select pg_advisory_unlock_all()")


def test_xact_advisory_lock_does_not_pin(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect() as a, pooler.connect() as b:
        a.execute("select pg_advisory_xact_lock(99)")
        a.execute("select pg_try_advisory_lock(98) where false")  # returns no row, takes nothing
        assert b.execute("select 1").fetchone() == (1,)  # the only server is free again


def test_listen_notify_delivered(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect() as a, pooler.connect() as b, pooler.connect() as c:
        a.execute("listen sluice_chan")
        c.execute("select 1")
        b.execute("notify sluice_chan, 'hello'")
        # psycopg 3.1's notifies() blocks: wait for the socket first, bounded.
        ready, _, _ = select.select([a.fileno()], [], [], 5)
        assert ready, "notification not delivered within 5 s"
        n = next(a.notifies())
        assert n.channel == "sluice_chan" and n.payload == "hello"
        a.execute("unlisten *")


def test_temp_table_and_with_hold_cursor_across_transactions(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect() as a:
        a.execute("create temp table t_sess(x int)")
        a.execute("insert into t_sess values (1), (2)")
        assert a.execute("select count(*) from t_sess").fetchone() == (2,)
        a.execute("declare cur cursor with hold for select x from t_sess order by x")
        assert a.execute("fetch next from cur").fetchone() == (1,)
        assert a.execute("fetch next from cur").fetchone() == (2,)
        a.execute("close cur")
        a.execute("drop table t_sess")
    with pooler.connect() as b:  # the server went back clean
        assert b.execute("select count(*) from pg_class where relnamespace = pg_my_temp_schema()"
                         ).fetchone() == (0,)


def test_pinned_client_does_not_block_unpinned_ones(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2)
    with pooler.connect() as a:
        a.execute("listen other_chan")
        with pooler.connect() as b:
            for _ in range(10):
                assert b.execute("select 1").fetchone() == (1,)


def test_pin_cap_refuses_with_a_clear_error(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=2, max_pinned_servers=1)
    with pooler.connect() as a, pooler.connect() as b:
        a.execute("select pg_advisory_lock(1)")
        with pytest.raises(psycopg.errors.TooManyConnections, match="pinned"):
            b.execute("select pg_advisory_lock(2)")
        assert b.execute("select 1").fetchone() == (1,)
        a.execute("select pg_advisory_unlock_all()")
        b.execute("select pg_advisory_lock(2)")
        b.execute("select pg_advisory_unlock(2)")


def test_pinned_idle_timeout(make_pooler):
    pooler = tx_pooler(make_pooler, pool_size=1, pinned_idle_timeout=1)
    a = pooler.connect()
    a.execute("select pg_advisory_lock(5)")
    with pooler.connect() as b:
        # B waits until A's pin times out and A is closed, then gets the server.
        assert b.execute("select pg_try_advisory_lock(5)").fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError):
        a.execute("select 1")
    a.close()


def _migrator(pooler, name, applied, errors):
    try:
        with pooler.connect() as c:
            c.execute("select pg_advisory_lock(31337)")
            try:
                done = {r[0] for r in c.execute("select name from schema_migrations").fetchall()}
                for m in ("001_a", "002_b", "003_c"):
                    if m in done:
                        continue
                    with c.transaction():
                        c.execute("insert into schema_migrations(name, who) values (%s, %s)", (m, name))
                        c.execute("select pg_sleep(0.2)")
                    applied.append((m, name))
            finally:
                assert c.execute("select pg_advisory_unlock(31337)").fetchone() == (True,)
    except Exception as e:  # noqa: BLE001
        errors.append(repr(e))


def test_two_concurrent_migrators_with_advisory_lock(make_pooler, pg):
    pg.sql("drop table if exists schema_migrations", dbname="appdb")
    pg.sql("create table schema_migrations(name text primary key, who text)", dbname="appdb")
    pg.sql("grant all on schema_migrations to app", dbname="appdb")
    pooler = tx_pooler(make_pooler, pool_size=3)
    applied, errors = [], []
    stop = threading.Event()

    def traffic():
        with pooler.connect() as c:
            while not stop.is_set():
                c.execute("select 1")

    noise = [threading.Thread(target=traffic) for _ in range(3)]
    for t in noise:
        t.start()
    migrators = [threading.Thread(target=_migrator, args=(pooler, f"m{i}", applied, errors))
                 for i in range(2)]
    for t in migrators:
        t.start()
    for t in migrators:
        t.join(30)
    stop.set()
    for t in noise:
        t.join(10)
    assert errors == []
    rows = pg.sql("select name, count(*) from schema_migrations group by name order by name",
                  dbname="appdb")
    assert rows == [("001_a", 1), ("002_b", 1), ("003_c", 1)]
    assert sorted(m for m, _ in applied) == ["001_a", "002_b", "003_c"]
    assert pg.sql("select count(*) from pg_locks where locktype = 'advisory'") == [(0,)]


# ---------------------------------------------------------------- cached plan (0A000)


def _plan_table(pg, name):
    pg.sql(f"drop table if exists {name}", dbname="appdb")
    pg.sql(f"create table {name}(a int)", dbname="appdb")
    pg.sql(f"insert into {name} values (1)", dbname="appdb")
    pg.sql(f"grant all on {name} to app", dbname="appdb")


def test_cached_plan_change_is_retried_transparently(make_pooler, pg):
    _plan_table(pg, "plan_t1")
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect(prepare_threshold=0) as a:
        assert a.execute("select * from plan_t1").fetchall() == [(1,)]
        pg.sql("alter table plan_t1 add column b int default 7", dbname="appdb")
        # Without the retry this is "cached plan must not change result type" (0A000).
        cur = a.execute("select * from plan_t1")
        assert cur.fetchall() == [(1, 7)]
        assert [d.name for d in cur.description] == ["a", "b"]
    assert "retried" in pooler.log_text()


def test_cached_plan_change_inside_a_transaction_reaches_the_client_once(make_pooler, pg):
    _plan_table(pg, "plan_t2")
    pooler = tx_pooler(make_pooler, pool_size=1)
    with pooler.connect(prepare_threshold=0, autocommit=False) as a:
        assert a.execute("select * from plan_t2").fetchall() == [(1,)]
        a.commit()
        pg.sql("alter table plan_t2 add column b int default 7", dbname="appdb")
        a.execute("select 1")  # an explicit transaction is open now: no retry
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="cached plan"):
            a.execute("select * from plan_t2")
        a.rollback()
        # The statement is prepared again the next time.
        assert a.execute("select * from plan_t2").fetchall() == [(1, 7)]
        a.commit()
