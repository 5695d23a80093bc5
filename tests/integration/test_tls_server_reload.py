# Changing server_tls_* (RELOAD or console SET) closes the server connections made with the old
# settings, as a changed host does; an unchanged reload keeps them.
import psycopg
import pytest

from sluice_it.util import wait_until

pytestmark = pytest.mark.sluice_only("the separate ssl=on cluster is only wired for sluice here")


def tls_pooler(make_pooler, pg_tls, **settings):
    databases = {"tdb": f"host=127.0.0.1 port={pg_tls.port} dbname=appdb"}
    base = {"pool_mode": "transaction", "default_pool_size": "1", "server_login_retry": "1"}
    base.update(settings)
    return make_pooler(databases=databases, **base)


def backend(conn) -> tuple[int, bool]:
    return conn.execute("select pid, ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()


def wait_new_backend(conn, old_pid: int) -> tuple[int, bool]:
    seen = []

    def moved():
        seen[:] = [backend(conn)]
        return seen[0][0] != old_pid

    wait_until(moved, 10, "a new server connection")
    return seen[0]


def test_reload_with_new_sslmode_replaces_the_server_connection(make_pooler, pg_tls):
    pooler = tls_pooler(make_pooler, pg_tls, server_tls_sslmode="disable")
    with pooler.connect(dbname="tdb") as conn:
        pid, ssl = backend(conn)
        assert ssl is False
        offset = pooler.log_size()
        pooler.reload({"server_tls_sslmode": "require"})
        new_pid, ssl = wait_new_backend(conn, pid)
        assert ssl is True
        assert "tdb/app" in pooler.log_since(offset)
        assert "database configuration changed" in pooler.log_since(offset)
        wait_until(lambda: pg_tls.server_conns(user="app") == 1, 10, "the old backend to close")


def test_console_set_of_a_tls_file_or_protocols_replaces_it(make_pooler, pg_tls, tls_certs):
    pooler = tls_pooler(make_pooler, pg_tls, server_tls_sslmode="require")
    with pooler.connect(dbname="tdb") as conn:
        pid, ssl = backend(conn)
        assert ssl is True
        pooler.admin(f"SET server_tls_ca_file = '{tls_certs['ca1'].crt}'")
        pid2, ssl = wait_new_backend(conn, pid)
        assert ssl is True
        pooler.admin("SET server_tls_protocols = 'tlsv1.2,tlsv1.3'")
        wait_new_backend(conn, pid2)


def test_reload_without_tls_changes_keeps_the_server_connection(make_pooler, pg_tls):
    pooler = tls_pooler(make_pooler, pg_tls, server_tls_sslmode="require")
    with pooler.connect(dbname="tdb") as conn:
        pid, _ = backend(conn)
        offset = pooler.log_size()
        pooler.reload({"server_tls_sslmode": "require"})
        wait_until(lambda: "configuration reloaded" in pooler.log_since(offset), 10, "the reload")
        for _ in range(5):
            assert backend(conn)[0] == pid
        assert "database configuration changed" not in pooler.log_since(offset)


def test_a_tls_change_is_tried_at_once_after_refused_logins(make_pooler, pg_tls):
    """Role tlsonly may log in only over TLS: refused in plaintext, the next client after
    switching to TLS waits for a new attempt instead of failing with the cached refusal."""
    pooler = tls_pooler(make_pooler, pg_tls, server_tls_sslmode="disable",
                        auth={"tlsonly": "unused"})
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        with pooler.connect(user="tlsonly", dbname="tdb") as conn:
            conn.execute("select 1")
    pooler.admin("SET server_tls_sslmode = require")
    with pooler.connect(user="tlsonly", dbname="tdb") as conn:
        assert backend(conn)[1] is True
