# The admin console (virtual database `pgbouncer`): peer login over the unix socket, SHOW commands, access.
import psycopg
import pytest


def test_show_version_over_unix_socket_as_pgbouncer_with_same_uid(make_pooler, pooler_binary):
    """psql runs as the pooler's OS user, so the peer credentials match and no password is asked."""
    pooler = make_pooler()
    out = pooler.psql("SHOW VERSION", user="pgbouncer", dbname="pgbouncer", password="", unix=True,
                      as_pooler_user=True)
    assert out.returncode == 0, out.stderr
    version = out.stdout.strip()
    assert version and version == pooler_binary.version_line


def test_pgbouncer_user_over_tcp_is_not_let_in_without_credentials(make_pooler):
    pooler = make_pooler(auth_type="md5")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=pooler.host, port=pooler.port, user="pgbouncer", dbname="pgbouncer",
                        password="guess", connect_timeout=5).close()


def test_show_version_as_admin_user_over_tcp(make_pooler, pooler_binary):
    pooler = make_pooler(auth_type="md5")
    assert pooler.admin("SHOW VERSION") == [{"version": pooler_binary.version_line}]


def test_non_admin_user_cannot_use_the_console(make_pooler):
    pooler = make_pooler(auth_type="md5")
    with pytest.raises(psycopg.OperationalError):
        with pooler.connect(dbname="pgbouncer") as conn:
            conn.execute("SHOW POOLS")


def test_show_pools_and_databases_columns(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=7)
    with pooler.connect() as conn:
        conn.execute("select 1")
        row = pooler.pool_row("appdb", "app")
        assert row is not None
        for col in ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "maxwait", "pool_mode"):
            assert col in row, row
        assert row["cl_active"] == 1 and row["cl_waiting"] == 0
        assert row["sv_active"] + row["sv_idle"] + row["sv_used"] == 1
        dbs = {r["name"]: r for r in pooler.admin("SHOW DATABASES")}
        assert {"appdb", "db2", "bench", "pgbouncer"} <= set(dbs)
        assert dbs["appdb"]["pool_size"] == 7 and dbs["appdb"]["database"] == "appdb"
        assert dbs["appdb"]["port"] == pooler.pg.port


def test_reload_command_applies_new_config(make_pooler):
    pooler = make_pooler()
    pooler.databases["added"] = pooler.db_entry("db2")
    pooler.write_files()
    pooler.admin("RELOAD")
    with pooler.connect(dbname="added") as conn:
        assert conn.execute("select current_database()").fetchone() == ("db2",)
