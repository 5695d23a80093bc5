# Behaviours PgBouncer's own test suite checks (admin, operations, misc): socket ids, server
# checks, server_lifetime = 0, server_fast_close, query_wait_notify, auto-databases, shutdown.
import threading

import psycopg
import pytest

from sluice_it.pooler import ADMIN_USER
from sluice_it.util import wait_until


def _ids(pooler, command: str) -> list[int]:
    return sorted(int(r["id"]) for r in pooler.admin(command))


def test_clients_and_servers_draw_ids_from_one_sequence(make_pooler):
    """A server's id never equals a client's: PgBouncer numbers every socket from one counter."""
    pooler = make_pooler()
    with pooler.connect() as conn:
        conn.execute("select 1")
        clients = set(_ids(pooler, "SHOW CLIENTS"))
        servers = _ids(pooler, "SHOW SERVERS")
        assert len(servers) == 1
        assert not clients & set(servers), (clients, servers)
        # the server was opened for the application client, so it drew its id later (other
        # sockets, such as the harness's readiness probe on another worker, may come in between)
        app = [int(r["id"]) for r in pooler.admin("SHOW CLIENTS") if r["database"] == "appdb"]
        assert servers[0] > app[0]


def test_server_lifetime_zero_uses_each_server_once(make_pooler):
    pooler = make_pooler(server_lifetime="0")
    pids = []
    for _ in range(2):
        with pooler.connect() as conn:
            pids.append(conn.execute("select pg_backend_pid()").fetchone()[0])
    assert pids[0] != pids[1]


def test_server_check_runs_before_reuse_when_delay_is_zero(make_pooler, pg):
    pg.sql("create sequence if not exists it_check_seq", dbname="appdb")
    pg.sql("grant usage on sequence it_check_seq to public", dbname="appdb")
    start = pg.sql("select last_value from it_check_seq", dbname="appdb")[0][0]
    pooler = make_pooler(pool_mode="transaction", server_check_delay="0",
                         server_check_query="select nextval('it_check_seq')")
    pids = []
    for _ in range(3):
        with pooler.connect() as conn:
            pids.append(conn.execute("select pg_backend_pid()").fetchone()[0])
    assert len(set(pids)) == 1  # the checked server is the one reused
    now = pg.sql("select last_value from it_check_seq", dbname="appdb")[0][0]
    assert now - start >= 2  # one check before each reuse


def test_default_server_check_query_is_an_empty_query(make_pooler):
    pooler = make_pooler()
    rows = {r["key"]: r["value"] for r in pooler.admin("SHOW CONFIG")}
    assert rows["server_check_query"] == "<empty>"


def test_server_fast_close_ends_an_idle_session_after_reconnect(make_pooler):
    pooler = make_pooler(server_fast_close="1")
    with pooler.connect() as conn:
        conn.execute("select 1")
        pooler.admin("RECONNECT appdb")
        wait_until(lambda: "closing because: database configuration changed" in pooler.log_text(),
                   5, "server_fast_close to close the session")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")


def test_queued_client_gets_a_notice_after_query_wait_notify(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", query_wait_notify="1",
                         users={"app": "max_user_connections=1"})
    holder = pooler.connect()

    def hold():
        try:  # until cancelled below, however long the waiter takes to queue
            holder.execute("select pg_sleep(60) /* qwn-holder */")
        except psycopg.errors.QueryCanceled:
            pass

    sleeper = threading.Thread(target=hold, daemon=True)
    sleeper.start()
    try:
        wait_until(lambda: (pooler.pool_row("appdb", "app") or {}).get("sv_active") == 1, 5,
                   "the holder to get the only server")
        notices = []
        with pooler.connect() as conn:
            conn.add_notice_handler(lambda d: notices.append(d.message_primary))
            waiter = threading.Thread(target=lambda: conn.execute("select 1"), daemon=True)
            waiter.start()
            wait_until(lambda: notices, 10, "the notice to the queued client")
            pg.sql("select pg_cancel_backend(pid) from pg_stat_activity"
                   " where query like '%qwn-holder%' and pid <> pg_backend_pid()")
            waiter.join(10)
            assert not waiter.is_alive()
        assert notices == ["No server connection available in postgres backend, client being queued"]
    finally:
        sleeper.join(10)
        holder.close()


def test_malformed_options_are_refused_with_pgbouncers_message(make_pooler):
    pooler = make_pooler()
    for opts in ("-d", "-c timezone"):
        with pytest.raises(psycopg.OperationalError,
                           match="only '-c config=val' and '--config=val' are allowed"):
            pooler.connect(options=opts).close()


def test_auto_database_is_logged_when_first_used(make_pooler, pg):
    pooler = make_pooler(databases={"*": f"host={pg.host} port={pg.port}"})
    with pooler.connect(dbname="db2") as conn:
        conn.execute("select 1")
    assert "registered new auto-database: db2" in pooler.log_text()


def test_shutdown_wait_for_clients_lets_only_the_console_in(make_pooler):
    pooler = make_pooler()
    sock_dir = pooler.settings["unix_socket_dir"]
    with pooler.connect() as conn:
        conn.execute("select 1")
        pooler.admin("SHUTDOWN WAIT_FOR_CLIENTS")
        with pytest.raises(psycopg.OperationalError, match="shutting down"):
            pooler.connect(host=sock_dir).close()
        with psycopg.connect(**pooler.conninfo(ADMIN_USER, "pgbouncer", host=sock_dir),
                             autocommit=True) as admin:
            assert admin.execute("SHOW VERSION").fetchone()
        conn.execute("select 1")  # the existing client is still served
    pooler.expect_exit = True
    assert pooler.wait_exit(10) == 0  # the last client left


@pytest.mark.sluice_only("track_session_state is sluice's setting")
def test_options_in_ignore_startup_parameters_drops_what_cannot_be_kept(make_pooler):
    pooler = make_pooler(track_session_state="0",
                         ignore_startup_parameters="extra_float_digits,options")
    opts = "-c enable_seqscan=false -c timezone=Europe/Lisbon"
    with pooler.connect(options=opts) as conn:
        assert conn.execute("show enable_seqscan").fetchone()[0] == "on"
        assert conn.execute("show timezone").fetchone()[0] == "Europe/Lisbon"
