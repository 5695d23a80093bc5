# Every client progresses under contention (issue 9): a pool smaller than the clients,
# background traffic, clients whose session state differs, workers=1 and 2. Each client checks
# that every statement sees its own state, and everyone must finish within a bound.
import subprocess

import pytest
from sluice_it.traffic import Background, run_clients

pytestmark = pytest.mark.sluice_only("session state in transaction pooling")

WORKERS = [1, 2]


def tx_pooler(make_pooler, pool_size, workers, **settings):
    return make_pooler(pool_mode="transaction", default_pool_size=pool_size, workers=workers,
                       **settings)


@pytest.mark.parametrize("workers", WORKERS)
def test_two_application_names_on_a_pool_of_one(make_pooler, workers):
    pooler = tx_pooler(make_pooler, 1, workers)

    def client(name):
        def fn():
            with pooler.connect(application_name=name) as c:
                for _ in range(100):
                    assert c.execute("select current_setting('application_name')").fetchone()[0] == name
        return fn

    run_clients([client("a"), client("b")], timeout=30)


# ---------------------------------------------------------------- the matrix
#
# A client "kind" connects with some session state, keeps it, and checks on every statement
# that the server it got has exactly that state. Every case runs with background clients on
# the same pool, fewer servers than clients, and each client's statements interleaved with the
# others' (so servers go back and forth between clients whose state differs).

STATE_Q = ("select current_setting('application_name'), current_setting('search_path'), "
           "current_setting('statement_timeout'), current_setting('work_mem'), %s::int")


def check_state(conn, want, i):
    row = conn.execute(STATE_Q, (i,)).fetchone()
    got = {"application_name": row[0], "search_path": row[1], "statement_timeout": row[2],
           "work_mem": row[3]}
    wrong = {k: (got[k], v) for k, v in want.items() if got[k] != v}
    assert not wrong, f"statement {i} saw another client's state: {wrong}"
    assert row[4] == i, f"statement {i} got the answer to {row[4]}"


def kind_app_name(pooler, n, iters):
    name = f"app-{n}"
    with pooler.connect(application_name=name) as c:
        for i in range(iters):
            check_state(c, {"application_name": name}, i)


def kind_options(pooler, n, iters):
    timeout = f"{1001 + n}ms"
    path = f"opt_{n}"
    with pooler.connect(options=f"-c statement_timeout={1001 + n} -c search_path={path}") as c:
        for i in range(iters):
            check_state(c, {"statement_timeout": timeout, "search_path": path}, i)


def kind_set(pooler, n, iters):
    with pooler.connect() as c:
        c.execute(f"set statement_timeout = '{2001 + n}ms'")
        c.execute(f"set search_path = set_{n}, public")
        c.execute(f"set work_mem = '{1025 + n}kB'")
        want = {"statement_timeout": f"{2001 + n}ms", "search_path": f"set_{n}, public",
                "work_mem": f"{1025 + n}kB"}
        for i in range(iters):
            check_state(c, want, i)
            if i % 10 == 5:  # and change it now and then
                c.execute(f"set work_mem = '{2048 + n + i}kB'")
                want["work_mem"] = f"{2048 + n + i}kB"


def kind_sql_prepare(pooler, n, iters):
    with pooler.connect(application_name=f"sp-{n}") as c:
        c.execute(f"prepare mine(int) as select {n} * 1000 + $1")  # same name, another text
        for i in range(iters):
            assert c.execute("execute mine(%s)" % i).fetchone()[0] == n * 1000 + i
            check_state(c, {"application_name": f"sp-{n}", "search_path": '"$user", public'}, i)


def kind_protocol_prepared(pooler, n, iters):
    with pooler.connect(prepare_threshold=0, application_name=f"pp-{n}") as c:
        for i in range(iters):
            check_state(c, {"application_name": f"pp-{n}"}, i)
            assert c.execute("select %s::int + %s::int", (n, i)).fetchone()[0] == n + i


def kind_pinned(pooler, n, iters):
    with pooler.connect() as c:
        c.execute("select pg_advisory_lock(%s)", (900000 + n,))  # pins the client to its server
        pid = c.execute("select pg_backend_pid()").fetchone()[0]
        for i in range(iters // 4):
            assert c.execute("select pg_backend_pid()").fetchone()[0] == pid
            check_state(c, {"search_path": '"$user", public'}, i)
        c.execute("select pg_advisory_unlock(%s)", (900000 + n,))
        for i in range(iters // 4):
            check_state(c, {"search_path": '"$user", public'}, i)


def kind_startup_search_path(pooler, n, iters):
    """search_path as a startup parameter (as pgx sends `?search_path=` from a DSN)."""
    import asyncio

    import asyncpg

    async def go():
        conn = await asyncpg.connect(host=pooler.host, port=pooler.port, user="app",
                                     password="app-pw", database="appdb",
                                     server_settings={"search_path": f"sp_{n}"},
                                     statement_cache_size=100, timeout=10)
        try:
            for i in range(iters):
                row = await conn.fetchrow("select current_setting('search_path'), $1::int", i)
                assert row[0] == f"sp_{n}", f"statement {i} saw search_path {row[0]}"
                assert row[1] == i
        finally:
            await conn.close()

    asyncio.run(go())


KINDS = {
    "app_name": kind_app_name,
    "options": kind_options,
    "set": kind_set,
    "sql_prepare": kind_sql_prepare,
    "protocol_prepared": kind_protocol_prepared,
    "startup_search_path": kind_startup_search_path,
    "pinned": kind_pinned,
}

# (case name, pool size, [(kind, clients)], statements per client)
CASES = [
    ("app_names_pool1", 1, [("app_name", 4)], 60),
    ("options_pool2", 2, [("options", 6)], 60),
    ("set_pool2", 2, [("set", 8), ("app_name", 2)], 60),
    ("sql_prepare_pool2", 2, [("sql_prepare", 6)], 50),
    ("protocol_prepared_pool2", 2, [("protocol_prepared", 6), ("app_name", 2)], 50),
    ("startup_search_path_pool2", 2, [("startup_search_path", 6)], 60),
    ("pinned_pool4", 4, [("pinned", 2), ("set", 6)], 40),
    ("everything_pool4", 4, [(k, 6 if k != "pinned" else 2) for k in KINDS], 30),
]


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matrix(make_pooler, case, workers):
    _name, pool_size, kinds, iters = case
    pooler = tx_pooler(make_pooler, pool_size, workers, max_client_conn=200)
    fns = []
    for kind, count in kinds:
        for n in range(count):
            fns.append(lambda k=kind, n=len(fns) + 1: KINDS[k](pooler, n, iters))
    with Background(pooler, 3) as bg:
        run_clients(fns, timeout=45)
    assert bg.count > 0


@pytest.mark.parametrize("workers", WORKERS)
def test_fifty_clients_with_differing_state_over_a_pool_of_four(make_pooler, workers):
    pooler = tx_pooler(make_pooler, 4, workers, max_client_conn=200)
    kinds = ["app_name", "options", "set", "protocol_prepared"]
    fns = [lambda n=n: KINDS[kinds[n % 4]](pooler, n + 1, 20) for n in range(50)]
    with Background(pooler, 3):
        run_clients(fns, timeout=50)


# ---------------------------------------------------------------- pg_dump / pg_restore

PG_BIN = "/usr/lib/postgresql/15/bin"


def _make_source_db(pg, name):
    pg.sql(f"drop database if exists {name}")
    pg.sql(f"create database {name} owner app")
    with pg.connect(name) as c:
        c.execute("set role app")
        c.execute("create schema app_schema")
        for t in range(12):
            c.execute(f"create table app_schema.t{t} (id int primary key, v text, n numeric)")
            c.execute(f"insert into app_schema.t{t} select g, md5(g::text), g * {t} "
                      f"from generate_series(1, {2000 + 500 * t}) g")
            c.execute(f"create index on app_schema.t{t} (v)")
        c.execute("create view app_schema.v0 as select count(*) from app_schema.t0")
        c.execute("create sequence app_schema.s0 start 42")
        c.execute("create function app_schema.f(x int) returns int language sql as 'select x + 1'")


def _plain_dump(pg, db):
    out = subprocess.run([f"{PG_BIN}/pg_dump", "-h", pg.sockdir, "-p", str(pg.port), "-U", "postgres",
                          "--no-owner", "-d", db], capture_output=True, text=True, timeout=60,
                         env=pg.env, **pg.os_user.popen_kwargs())
    assert out.returncode == 0, out.stderr
    # Only comments mention the database, and \\restrict keys are random: drop them.
    return [ln for ln in out.stdout.splitlines()
            if ln and not ln.startswith(("--", "\\restrict", "\\unrestrict"))]


@pytest.mark.parametrize("workers", WORKERS)
def test_pg_dump_and_restore_in_parallel_through_the_pooled_endpoint(make_pooler, pg, workers,
                                                                     tmp_path):
    src, dst = f"dumpsrc{workers}", f"dumpdst{workers}"
    _make_source_db(pg, src)
    pg.sql(f"drop database if exists {dst}")
    pg.sql(f"create database {dst} owner app")
    pooler = make_pooler(pool_mode="transaction", default_pool_size=6, workers=workers,
                         databases={
                             "appdb": f"host={pg.host} port={pg.port} dbname=appdb",
                             src: f"host={pg.host} port={pg.port} dbname={src}",
                             dst: f"host={pg.host} port={pg.port} dbname={dst}"})
    outdir = str(tmp_path / "dump")
    env = {"PGPASSWORD": "app-pw", "PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"}
    common = ["-h", pooler.host, "-p", str(pooler.port), "-U", "app"]
    with Background(pooler, 3):
        dump = subprocess.run([f"{PG_BIN}/pg_dump", *common, "-j", "4", "-Fd", "-f", outdir, "-d", src],
                              capture_output=True, text=True, timeout=45, env=env)
        assert dump.returncode == 0, dump.stderr
        restore = subprocess.run([f"{PG_BIN}/pg_restore", *common, "-j", "4", "--no-owner", "-d", dst,
                                  outdir], capture_output=True, text=True, timeout=45, env=env)
        assert restore.returncode == 0, restore.stderr
    assert _plain_dump(pg, dst) == _plain_dump(pg, src)


# ---------------------------------------------------------------- what an operator sees


def _stats_row(pooler, db="appdb"):
    return next(r for r in pooler.admin("SHOW STATS") if r["database"] == db)


def test_show_stats_and_metrics_count_syncs_and_give_wait_percentiles(make_pooler):
    from prometheus_client.parser import text_string_to_metric_families
    from sluice_it.console import http_get
    from sluice_it.util import free_port

    port = free_port()
    pooler = tx_pooler(make_pooler, 1, 1, metrics_listen_addr="127.0.0.1",
                       metrics_listen_port=port)
    with pooler.connect(application_name="a") as a, pooler.connect(application_name="b") as b:
        before = _stats_row(pooler)
        for _ in range(10):  # one server, two states: every statement needs a sync
            a.execute("select 1")
            b.execute("select 1")
        after = _stats_row(pooler)
        assert after["total_server_sync_count"] - before["total_server_sync_count"] >= 19
        same = _stats_row(pooler)
        for _ in range(10):  # one client: the server keeps its state, no sync
            a.execute("select 1")
        assert _stats_row(pooler)["total_server_sync_count"] - same["total_server_sync_count"] <= 1
    row = _stats_row(pooler)
    assert 0 < row["wait_p50_us"] <= row["wait_p99_us"]
    assert row["total_server_move_count"] == 0  # one worker: nothing moves
    status, _headers, body = http_get("127.0.0.1", port, "/metrics")
    assert status == 200
    syncs = {s.labels["database"]: s.value
             for f in text_string_to_metric_families(body)
             for s in f.samples if s.name == "sluice_pool_server_syncs_total"}
    assert syncs.get("appdb", 0) >= 19
