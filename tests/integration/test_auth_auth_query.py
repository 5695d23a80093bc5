# auth_query: users missing from the auth file are looked up on the server through the
# auth_user's own pool (a low-privilege role calling a SECURITY DEFINER function), then log in
# with md5 or SCRAM as if from the auth file; SCRAM secrets log in to servers by pass-through.
import os
import threading
import time

import psycopg
import pytest

from sluice_it.util import wait_until
from sluice_it.wire import ServerError, WireConn

pytestmark = pytest.mark.sluice_only("run against the separate ssl=on cluster wired for sluice only")

LOOKUP = "SELECT * FROM public.sluice_lookup($1)"


def aq_pooler(make_pooler, pg_tls, auth_type="md5", db_extra="", **settings):
    databases = {
        "tdb": f"host=127.0.0.1 port={pg_tls.port} dbname=appdb {db_extra}".strip(),
        "other": f"host=127.0.0.1 port={pg_tls.port} dbname=postgres",
    }
    base = {"auth_type": auth_type, "auth_user": "authq", "auth_query": LOOKUP,
            "server_login_retry": "1"}
    base.update(settings)
    return make_pooler(databases=databases, **base)


def login(pooler, user, password, dbname="tdb"):
    with pooler.connect(user=user, password=password, dbname=dbname) as conn:
        return conn.execute("select current_user, current_database()").fetchone()


def test_auth_user_cannot_read_pg_authid_itself(pg_tls):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with psycopg.connect(host="127.0.0.1", port=pg_tls.port, user="authq",
                             dbname="appdb") as conn:
            conn.execute("select rolpassword from pg_authid")


@pytest.mark.parametrize("auth_type", ["md5", "scram-sha-256"])
def test_scram_user_found_by_auth_query_logs_in_and_passes_scram_through(make_pooler, pg_tls,
                                                                          auth_type):
    pooler = aq_pooler(make_pooler, pg_tls, auth_type=auth_type, pool_mode="transaction")
    assert login(pooler, "aq_scram", "aq-scram-pw") == ("aq_scram", "appdb")
    # The server side is scram-sha-256 too: sluice logged in with the client's proof. Nothing
    # in sluice's files knows the password.
    for name in os.listdir(pooler.dir):
        path = os.path.join(pooler.dir, name)
        if os.path.isfile(path):
            with open(path, errors="replace") as f:
                text = f.read()
            assert "aq-scram-pw" not in text, name
            assert "aq_scram" not in text or name.endswith(".log"), name
    # A second client reuses the pooled server.
    assert login(pooler, "aq_scram", "aq-scram-pw") == ("aq_scram", "appdb")


def test_md5_user_found_by_auth_query(make_pooler, pg_tls):
    pooler = aq_pooler(make_pooler, pg_tls, auth_type="md5")
    assert login(pooler, "aq_md5", "aq-md5-pw") == ("aq_md5", "appdb")


def test_wrong_password_unknown_user_and_expired_password(make_pooler, pg_tls):
    pooler = aq_pooler(make_pooler, pg_tls)
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        login(pooler, "aq_scram", "wrong")
    with pytest.raises(psycopg.OperationalError, match="no such user"):
        login(pooler, "aq_nobody", "whatever")
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        login(pooler, "aq_expired", "aq-expired-pw")
    log = pooler.log_since(0).replace(pooler.dir, "<dir>")
    assert "aq-scram-pw" not in log and "wrong" not in log
    assert "SCRAM-SHA-256$" not in log and "md5" not in log


def test_users_in_the_auth_file_are_not_looked_up(make_pooler, pg_tls):
    pooler = aq_pooler(make_pooler, pg_tls, auth_type="md5")
    # "app" is in the auth file (trust on the server): no lookup, and the auth pool is unused.
    assert login(pooler, "app", "app-pw") == ("app", "appdb")
    assert all(r["user"] != "authq" for r in pooler.admin("SHOW POOLS"))


def test_auth_dbname_and_per_database_settings(make_pooler, pg_tls):
    pooler = aq_pooler(make_pooler, pg_tls, auth_user=None,
                       db_extra="auth_user=authq auth_dbname=other")
    assert login(pooler, "aq_md5", "aq-md5-pw") == ("aq_md5", "appdb")
    pools = {(r["database"], r["user"]) for r in pooler.admin("SHOW POOLS")}
    assert ("other", "authq") in pools  # the lookup ran in auth_dbname's pool
    # A database without auth_user does not look users up.
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        login(pooler, "aq_md5", "aq-md5-pw", dbname="other")


def test_auth_query_error_is_logged_and_the_client_told_config_error(make_pooler, pg_tls):
    pooler = aq_pooler(make_pooler, pg_tls, auth_query="SELECT usename, passwd FROM no_such_table"
                       " WHERE usename = $1")
    with pytest.raises(psycopg.OperationalError, match="bouncer config error"):
        login(pooler, "aq_md5", "aq-md5-pw")
    assert '"no_such_table" does not exist' in pooler.log_text()


def test_unconfigured_auth_database(make_pooler, pg_tls):
    pooler = aq_pooler(make_pooler, pg_tls, auth_dbname="nowhere")
    with pytest.raises(psycopg.OperationalError, match="bouncer config error"):
        login(pooler, "aq_md5", "aq-md5-pw")
    assert 'authentication database "nowhere" is not configured' in pooler.log_text()


def test_a_slow_lookup_does_not_block_the_worker(make_pooler, pg_tls):
    """Logins wait for auth_query asynchronously: other clients on the same worker go on."""
    pooler = aq_pooler(make_pooler, pg_tls, workers=1,
                       auth_query="SELECT * FROM public.sluice_slow_lookup($1)")
    result = {}

    def slow():
        started = time.monotonic()
        result["who"] = login(pooler, "aq_md5", "aq-md5-pw")
        result["took"] = time.monotonic() - started

    t = threading.Thread(target=slow)
    t.start()
    _wait_lookup_running(pg_tls)
    with pooler.connect(user="app", password="app-pw", dbname="tdb") as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        for _ in range(5):
            conn.execute("select 1")
        # Served while the lookup was still running: not stuck behind it.
        assert "who" not in result and _lookups_running(pg_tls) == 1
    t.join(10)
    assert result["who"] == ("aq_md5", "appdb")
    assert result["took"] >= 2.4


def _lookups_running(pg_tls) -> int:
    return pg_tls.sql("select count(*) from pg_stat_activity where state = 'active'"
                      " and query like '%sluice_slow_lookup%' and pid <> pg_backend_pid()")[0][0]


def _wait_lookup_running(pg_tls) -> None:
    wait_until(lambda: _lookups_running(pg_tls) == 1, 10, "the slow lookup to run on the server")


def test_concurrent_logins_share_the_auth_pool(make_pooler, pg_tls):
    pooler = aq_pooler(make_pooler, pg_tls, default_pool_size=2)
    errors = []

    def one(i):
        try:
            assert login(pooler, "aq_md5", "aq-md5-pw") == ("aq_md5", "appdb")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    rows = [r for r in pooler.admin("SHOW POOLS") if r["user"] == "authq"]
    assert rows and all(r["sv_active"] + r["sv_idle"] <= 2 for r in rows)


def test_client_closing_during_the_lookup_is_harmless(make_pooler, pg_tls):
    pooler = aq_pooler(make_pooler, pg_tls, auth_query="SELECT * FROM public.sluice_slow_lookup($1)")
    from sluice_it.wire import startup_packet

    for _ in range(2):
        w = WireConn(pooler.host, pooler.port)
        w.send(startup_packet("aq_md5", "tdb"))
        _wait_lookup_running(pg_tls)  # the client leaves in the middle of it
        w.close()
        wait_until(lambda: _lookups_running(pg_tls) == 0, 10, "the lookup to end")
    assert login(pooler, "aq_md5", "aq-md5-pw") == ("aq_md5", "appdb")


def test_user_with_per_user_settings_but_not_in_the_auth_file_is_looked_up(make_pooler, pg_tls):
    """A [users] entry (pool_mode) does not make a user "known": auth_query still supplies the
    password, and the entry's settings apply to the pool."""
    pooler = aq_pooler(make_pooler, pg_tls, auth_type="md5",
                       users={"aq_md5": "pool_mode=statement"})
    assert login(pooler, "aq_md5", "aq-md5-pw") == ("aq_md5", "appdb")
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        login(pooler, "aq_md5", "wrong")
    with pooler.connect(user="aq_md5", password="aq-md5-pw", dbname="tdb") as conn:
        with pytest.raises(psycopg.Error, match="transaction blocks not allowed"):
            conn.execute("begin")
