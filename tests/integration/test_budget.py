# `sluice budget` against a PostgreSQL 15 of its own (max_connections 100, 3 superuser slots,
# roles and a database with CONNECTION LIMITs), and `sluice check` on good and bad files.
import os
import re
import subprocess

import psycopg
import pytest

from sluice_it.postgres import PgCluster
from sluice_it.util import child_env, default_child_user, free_port, wait_until

pytestmark = pytest.mark.sluice_only("sluice budget and sluice check are sluice's own commands")

# role -> (password, CONNECTION LIMIT or None)
ROLES = {"shop_small": ("small-pw", 5), "shop_big": ("big-pw", 40), "reporter": ("rep-pw", None)}
# database -> CONNECTION LIMIT or None
DATABASES = {"shop": 30, "reports": None}


@pytest.fixture(scope="module")
def budget_pg(tmp_root):
    """A cluster only these tests use, so its settings and limits disturb nobody."""
    cluster = PgCluster(os.path.join(tmp_root, "budget"), default_child_user("PG_OS_USER"))
    cluster.init()
    with open(os.path.join(cluster.data, "postgresql.conf"), "a") as f:
        f.write("max_connections = 100\nsuperuser_reserved_connections = 3\n")
    cluster.start()
    try:
        with cluster.connect() as conn:
            for role, (password, limit) in ROLES.items():
                lim = "" if limit is None else f" connection limit {limit}"
                conn.execute(f"create role {role} login password '{password}'{lim}")
            for db, limit in DATABASES.items():
                lim = "" if limit is None else f" connection limit {limit}"
                conn.execute(f"create database {db} owner shop_big{lim}")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def workdir(tmp_path):
    os.chmod(tmp_path, 0o755)
    return tmp_path


def write_config(workdir, databases: dict, settings: dict | None = None, users: dict | None = None) -> str:
    auth = workdir / "userlist.txt"
    auth.write_text("".join(f'"{r}" "{pw}"\n' for r, (pw, _) in ROLES.items()))
    lines = ["[databases]"] + [f"{k} = {v}" for k, v in databases.items()]
    if users:
        lines += ["[users]"] + [f"{k} = {v}" for k, v in users.items()]
    lines += ["[pgbouncer]", "listen_addr = 127.0.0.1", f"auth_file = {auth}", "auth_type = md5"]
    lines += [f"{k} = {v}" for k, v in (settings or {}).items()]
    ini = workdir / "budget.ini"
    ini.write_text("\n".join(lines) + "\n")
    return str(ini)


def run(binary, workdir, *args) -> subprocess.CompletedProcess:
    """The sluice binary with no PG* variables and a HOME without ~/.pgpass."""
    return subprocess.run([binary.path, *args], capture_output=True, text=True, timeout=30,
                          env=child_env(str(workdir)), cwd=str(workdir))


def wait_no_budget_sessions(pg) -> None:
    """A finished check's backend may still be exiting: wait until it is gone."""
    wait_until(lambda: pg.sql("select count(*) from pg_stat_activity"
                              " where application_name = 'sluice budget'")[0][0] == 0,
               10, "the previous check's backend to exit")


def entry(pg, **kw) -> str:
    items = {"host": pg.host, "port": pg.port, **kw}
    return " ".join(f"{k}={v}" for k, v in items.items())


def problems(out: str) -> list[str]:
    """The '- ...' lines under 'problems:' (a finding may be long; it stays on one line)."""
    m = re.search(r"\n  problems:\n((?:    - .*\n)+)", out)
    return [] if m is None else [line[6:] for line in m.group(1).splitlines()]


def table_row(out: str, first_cell: str) -> list[str]:
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{out}")


def test_budget_of_an_oversubscribing_config_fails_and_says_why(budget_pg, pooler_binary, workdir):
    ini = write_config(workdir, {
        "shop": entry(budget_pg, user="shop_small", pool_size=10),
        "shop_big": entry(budget_pg, dbname="shop", user="shop_big", pool_size=30, reserve_pool=5),
        "reports": entry(budget_pg, user="reporter", pool_size=60),
    })
    out = run(pooler_binary, workdir, "budget", ini)
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    assert re.search(r"max_connections\s+100\n", text), text
    assert re.search(r"superuser_reserved_connections\s+3\n", text), text
    assert "reserved_connections does not exist on PostgreSQL 15" in text
    assert re.search(r"slots for non-superuser roles\s+97\n", text), text
    found = problems(text)
    assert len(found) == 3, text
    assert any("pools together may open 105 connections" in p and "has 97 for non-superuser roles" in p
               and "max_connections 100 - superuser_reserved_connections 3" in p for p in found), found
    assert any('role "shop_small" has CONNECTION LIMIT 5 but its pools may open 10' in p for p in found), found
    assert any('database "shop" has CONNECTION LIMIT 30 but the pools for it may open 45' in p
               for p in found), found
    assert table_row(text, "shop_big/shop_big")[1:5] == ["shop", "30", "5", "35"]
    assert table_row(text, "shop_small")[1:4] == ["10", "-", "5"]
    assert "budget does not hold (3 problems)" in text
    assert text.rstrip().endswith("budget does not hold on 1 of 1 server")


def test_budget_of_a_config_that_fits_holds(budget_pg, pooler_binary, workdir):
    ini = write_config(workdir, {
        "shop": entry(budget_pg, user="shop_small", pool_size=4, reserve_pool=1),
        "shop_big": entry(budget_pg, dbname="shop", user="shop_big", pool_size=20, reserve_pool=5),
        # 80 on paper, capped to 40 by max_db_connections
        "reports": entry(budget_pg, user="reporter", pool_size=80, max_db_connections=40),
    }, users={"shop_big": "max_user_connections=25"})
    out = run(pooler_binary, workdir, "budget", ini)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert problems(text) == [], text
    assert re.search(r"pools may open\s+70  \(sum of pool_size \+ reserve_pool_size 110, capped", text), text
    assert table_row(text, "reports")[1:3] == ["40", "40"]
    assert table_row(text, "shop_big")[1:4] == ["25", "25", "40"]
    assert text.rstrip().endswith("budget holds on the server")


def test_budget_shows_open_connections_by_role_and_state(budget_pg, pooler_binary, workdir):
    ini = write_config(workdir, {"shop_big": entry(budget_pg, dbname="shop", user="shop_big", pool_size=5)})
    conns = [psycopg.connect(host=budget_pg.host, port=budget_pg.port, user="shop_big", password="big-pw",
                             dbname="shop", autocommit=True, connect_timeout=5) for _ in range(3)]
    try:
        conns[0].execute("begin")
        conns[0].execute("select 1")
        wait_no_budget_sessions(budget_pg)
        # As the pool's own role: other roles' states are hidden, its own are not.
        out = run(pooler_binary, workdir, "budget", ini)
        assert out.returncode == 0, out.stdout + out.stderr
        assert 'checked as "shop_big"\n' in out.stdout
        assert table_row(out.stdout, "shop_big")[4] == "3 (idle 2, idle in transaction 1)", out.stdout
        assert "may not see other roles' session states" in out.stdout
        # As a superuser given on the command line.
        wait_no_budget_sessions(budget_pg)
        out = run(pooler_binary, workdir, "budget", "-U", "postgres", ini)
        assert out.returncode == 0, out.stdout + out.stderr
        assert 'checked as "postgres" (superuser)' in out.stdout
        assert re.search(r"open now\s+3  \(client backends, not counting this check\)", out.stdout), out.stdout
        assert table_row(out.stdout, "shop")[4] == "3 (idle 2, idle in transaction 1)", out.stdout
        assert "session states" not in out.stdout
    finally:
        for c in conns:
            c.close()


def test_budget_counts_every_auth_file_user_for_a_database_without_a_forced_user(
        budget_pg, pooler_binary, workdir):
    ini = write_config(workdir, {"reports": entry(budget_pg)}, settings={"default_pool_size": 10},
                       users={"reporter": "pool_size=30"})
    out = run(pooler_binary, workdir, "budget", "-U", "postgres", ini)
    assert out.returncode == 1, out.stdout + out.stderr
    for user, size in (("shop_small", "10"), ("shop_big", "10"), ("reporter", "30")):
        assert table_row(out.stdout, f"reports/{user}")[2] == size, out.stdout
    assert "an upper bound" in out.stdout
    assert problems(out.stdout) == [
        'role "shop_small" has CONNECTION LIMIT 5 but its pools may open 10 (reports 10): connections'
        ' past 5 fail with "too many connections for role"'], out.stdout


def test_budget_of_a_connection_string_reports_the_server(budget_pg, pooler_binary, workdir):
    conninfo = f"host={budget_pg.host} port={budget_pg.port} user=postgres dbname=postgres"
    out = run(pooler_binary, workdir, "budget", conninfo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"server {budget_pg.host}:{budget_pg.port}: PostgreSQL 15" in out.stdout
    assert table_row(out.stdout, "shop_small")[1] == "5"
    assert table_row(out.stdout, "shop_big")[1] == "40"
    assert table_row(out.stdout, "shop")[1] == "30"
    assert "pool (database/user)" not in out.stdout


def test_budget_cannot_check_an_unreachable_server(pooler_binary, workdir):
    ini = write_config(workdir, {"shop": f"host=127.0.0.1 port={free_port()} user=shop_small"})
    out = run(pooler_binary, workdir, "budget", "-t", "5", ini)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "cannot check" in out.stdout
    assert "budget could not be checked on 1 of 1 server" in out.stdout


def test_budget_of_an_invalid_config_cannot_check(pooler_binary, workdir):
    ini = write_config(workdir, {"shop": "host=127.0.0.1"}, settings={"pool_mode": "sometimes"})
    out = run(pooler_binary, workdir, "budget", ini)
    assert out.returncode == 2
    assert "pool_mode" in out.stderr


def test_check_accepts_a_good_file_and_prints_its_warnings(pooler_binary, workdir):
    ini = write_config(workdir, {"shop": "host=127.0.0.1 dbname=shop"}, settings={"no_such_setting": "1"})
    out = run(pooler_binary, workdir, "check", ini)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{ini}: configuration is valid (1 database" in out.stdout
    assert "warning:" in out.stderr and "unknown setting: no_such_setting" in out.stderr


def test_check_rejects_a_bad_file_with_the_reason(pooler_binary, workdir):
    ini = write_config(workdir, {"shop": "host=127.0.0.1"}, settings={"pool_mode": "sometimes"})
    out = run(pooler_binary, workdir, "check", ini)
    assert out.returncode == 1
    assert re.search(r"budget\.ini:\d+: invalid value for pool_mode: 'sometimes'", out.stderr), out.stderr
    assert "configuration is not valid" in out.stdout
    missing = run(pooler_binary, workdir, "check", str(workdir / "absent.ini"))
    assert missing.returncode == 1 and "absent.ini" in missing.stderr
    usage = run(pooler_binary, workdir, "check")
    assert usage.returncode == 2 and "Usage" in usage.stderr
