# Queries through the pooler with psql, pgbench and psycopg's simple and extended protocols.
import re
import subprocess

import pytest


def test_psql_query(pooler):
    out = pooler.psql("select 40 + 2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"


def test_psql_reaches_the_configured_database_as_the_client_user(pooler, pg):
    out = pooler.psql("select current_database(), current_user", dbname="db2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "db2|app"


@pytest.mark.parametrize("mode", ["transaction", "session"])
@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_pgbench_select_only_has_no_errors(make_pooler, mode, protocol):
    pooler = make_pooler(pool_mode=mode, default_pool_size=4)
    clients, per_client = 8, 250
    out = subprocess.run(
        ["pgbench", "-n", "-S", "-M", protocol, "-c", str(clients), "-j", "2", "-t", str(per_client),
         "-h", pooler.host, "-p", str(pooler.port), "-U", "app", "bench"],
        env={**pooler.env, "PGPASSWORD": "app-pw"}, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    done = re.search(r"number of transactions actually processed: (\d+)/(\d+)", out.stdout)
    assert done, out.stdout
    assert int(done.group(1)) == clients * per_client == int(done.group(2))
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    assert failed is None or int(failed.group(1)) == 0, out.stdout


def test_psycopg_simple_query_multiple_statements(pooler):
    with pooler.connect() as conn:
        cur = conn.execute("create temp table t(x int); insert into t values (1),(2); select sum(x) from t")
        assert cur.statusmessage == "CREATE TABLE"
        assert cur.nextset() and cur.statusmessage == "INSERT 0 2"
        assert cur.nextset() and cur.fetchone() == (3,)


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_psycopg_extended_query_with_parameters(make_pooler, mode):
    pooler = make_pooler(pool_mode=mode)
    with pooler.connect() as conn:
        row = conn.execute("select %s::int + %s::int, %s::text, %s::bytea",
                           (20, 22, "snowman \u2603", b"\x00\xff")).fetchone()
        assert row == (42, "snowman \u2603", b"\x00\xff")
        rows = conn.execute("select g from generate_series(1, %s) g", (1000,), binary=True).fetchall()
        assert [r[0] for r in rows] == list(range(1, 1001))


def test_psycopg_transaction_commit_and_rollback(make_pooler):
    pooler = make_pooler(pool_mode="transaction")
    with pooler.connect() as conn:
        conn.execute("create table if not exists basic_tx(x int)")
        conn.execute("truncate basic_tx")
        with conn.transaction():
            conn.execute("insert into basic_tx values (1)")
        with pytest.raises(ZeroDivisionError):
            with conn.transaction():
                conn.execute("insert into basic_tx values (2)")
                raise ZeroDivisionError
        assert conn.execute("select array_agg(x) from basic_tx").fetchone()[0] == [1]
        conn.execute("drop table basic_tx")


def test_server_error_reaches_client_and_connection_stays_usable(make_pooler):
    import psycopg

    pooler = make_pooler(pool_mode="transaction")
    with pooler.connect() as conn:
        with pytest.raises(psycopg.errors.UndefinedTable) as exc:
            conn.execute("select * from no_such_table")
        assert exc.value.sqlstate == "42P01"
        assert conn.execute("select 1").fetchone() == (1,)
