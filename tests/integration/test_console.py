# The admin console: PgBouncer's SHOW columns and figures under known load, PAUSE/RESUME with
# waiting clients, RELOAD of a pool size, KILL, KILL_CLIENT, WAIT_CLOSE, SUSPEND, SHUTDOWN
# WAIT_FOR_*, and who may run what.
import socket

import psycopg
import pytest

from sluice_it.console import Background, admin_conn, rows_by, run
from sluice_it.util import tcp_accepts, wait_until

# PgBouncer 1.25's columns, in order (doc/usage.md and its admin.c).
SOCKET_COLS = ["type", "user", "database", "replication", "state", "addr", "port", "local_addr",
               "local_port", "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr",
               "link", "remote_pid", "tls", "application_name", "prepared_statements", "id"]
DEBUG_COLS = ["recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail", "send_avail"]
TOTAL_FIGURES = ["server_assignment_count", "xact_count", "query_count"]
PIN_COLS = ["pinned"]  # sluice's own, after PgBouncer's: why a client keeps its server (issue 3)
EXPECTED_COLUMNS = {
    "clients": SOCKET_COLS + PIN_COLS,
    "servers": SOCKET_COLS + PIN_COLS,
    "sockets": SOCKET_COLS + DEBUG_COLS + PIN_COLS,
    "active_sockets": SOCKET_COLS + DEBUG_COLS + PIN_COLS,
    "pins": ["client_id", "user", "database", "since", "seconds", "reason", "server_id"],
    "pools": ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
              "cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle",
              "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode",
              "load_balance_hosts"],
    "databases": ["name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
                  "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts",
                  "max_connections", "current_connections", "max_client_connections",
                  "current_client_connections", "paused", "disabled"],
    "users": ["name", "pool_size", "reserve_pool_size", "pool_mode", "max_user_connections",
              "current_connections", "max_user_client_connections", "current_client_connections"],
    "stats": ["database"] + [f"total_{n}" for n in TOTAL_FIGURES] + [
        "total_received", "total_sent", "total_xact_time", "total_query_time", "total_wait_time",
        "total_client_parse_count", "total_server_parse_count", "total_bind_count"] + [
        f"avg_{n}" for n in TOTAL_FIGURES] + [
        "avg_recv", "avg_sent", "avg_xact_time", "avg_query_time", "avg_wait_time",
        "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count"],
    "stats_totals": ["database"] + TOTAL_FIGURES + [
        "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time", "client_parse_count",
        "server_parse_count", "bind_count"],
    "stats_averages": ["database"] + TOTAL_FIGURES + [
        "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
        "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count"],
    "totals": ["name", "value"],
    "config": ["key", "value", "default", "changeable"],
    "lists": ["list", "items"],
    "version": ["version"],
    "state": ["key", "value"],
    "mem": ["name", "size", "used", "free", "memtotal"],
    "dns_hosts": ["hostname", "ttl", "addrs"],
    "dns_zones": ["zonename", "serial", "count"],
    "peers": ["peer_id", "host", "port", "pool_size"],
    "peer_pools": ["peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active_cancel",
                   "sv_login"],
}
# Columns sluice adds after PgBouncer's (ours: state churn and fairness, issue 9).
SLUICE_EXTRA_COLUMNS = {
    "stats": ["total_server_sync_count", "total_server_move_count", "avg_server_sync_count",
              "avg_server_move_count", "wait_p50_us", "wait_p99_us"],
}
INT4, INT8, NUMERIC, TEXT = 23, 20, 1700, 25


def _local_port(conn: psycopg.Connection) -> int:
    with socket.fromfd(conn.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.getsockname()[1]


def _row(rows: list[dict], **match) -> dict:
    found = rows_by(rows, **match)
    assert len(found) == 1, (match, rows)
    return found[0]


def _stats(admin, db: str) -> dict:
    _, rows = run(admin, "SHOW STATS_TOTALS")
    found = rows_by(rows, database=db)
    return found[0] if found else {c: 0 for c in EXPECTED_COLUMNS["stats_totals"]}


def _query_in_new_client(pooler, sql: str = "select 42", **kw):
    with pooler.connect(**kw) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.mark.sluice_only("PgBouncer 1.25's columns; 1.18 has fewer")
def test_every_show_command_has_pgbouncers_columns(make_pooler, is_pgbouncer):
    pooler = make_pooler(pool_mode="transaction")
    extra = {} if is_pgbouncer else SLUICE_EXTRA_COLUMNS
    with pooler.connect() as conn, admin_conn(pooler) as admin:
        conn.execute("select 1")
        for item, expected in EXPECTED_COLUMNS.items():
            cur = admin.execute(f"SHOW {item}")
            names = [c.name for c in cur.description]
            # PgBouncer's columns, in its order; sluice's own may only follow them.
            assert names[:len(expected)] == expected, item
            assert names[len(expected):] == extra.get(item, []), item
        types = {c.name: c.type_code for c in admin.execute("SHOW POOLS").description}
        assert types["cl_active"] == INT4 and types["pool_mode"] == TEXT
        types = {c.name: c.type_code for c in admin.execute("SHOW STATS").description}
        assert types["total_xact_count"] == NUMERIC and types["database"] == TEXT
        types = {c.name: c.type_code for c in admin.execute("SHOW CLIENTS").description}
        assert types["id"] == INT8 and types["port"] == INT4
        # SHOW HELP answers with a notice and no rows.
        notices = []
        admin.add_notice_handler(lambda d: notices.append(d.message_primary))
        admin.execute("SHOW HELP")
        assert notices == ["Console usage"]


@pytest.mark.sluice_only("server_assignment_count came in PgBouncer 1.23")
def test_show_figures_follow_known_load(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=5)
    with admin_conn(pooler) as admin:
        with pooler.connect() as warm:  # the pool's first login takes a server of its own
            warm.execute("select 1")
        before = _stats(admin, "appdb")
        with pooler.connect() as conn:
            for _ in range(4):
                conn.execute("select 1")
            for _ in range(3):
                with conn.transaction():
                    conn.execute("select 1")
                    conn.execute("select 2")
        after = _stats(admin, "appdb")
        # 4 statements on their own + 3 transactions; 4 + 3 * (BEGIN, 2 selects, COMMIT) requests.
        assert after["xact_count"] - before["xact_count"] == 7
        assert after["query_count"] - before["query_count"] == 16
        assert after["server_assignment_count"] - before["server_assignment_count"] == 7
        assert after["bytes_received"] > before["bytes_received"]
        assert after["bytes_sent"] > before["bytes_sent"]
        _, stats = run(admin, "SHOW STATS")
        assert _row(stats, database="appdb")["total_xact_count"] == after["xact_count"]
        _, totals = run(admin, "SHOW TOTALS")
        assert _row(totals, name="total_xact_count")["value"] >= after["xact_count"]

        # Three clients inside transactions hold three servers.
        holders = [pooler.connect() for _ in range(3)]
        try:
            pids = set()
            for h in holders:
                h.execute("begin")
                pids.add(h.execute("select pg_backend_pid()").fetchone()[0])
            _, pools = run(admin, "SHOW POOLS")
            pool = _row(pools, database="appdb", user="app")
            assert (pool["cl_active"], pool["cl_waiting"], pool["sv_active"]) == (3, 0, 3)
            assert pool["pool_mode"] == "transaction"
            _, clients = run(admin, "SHOW CLIENTS")
            assert len(rows_by(clients, database="appdb", state="active")) == 3
            assert rows_by(clients, database="pgbouncer", user="itadmin")
            _, servers = run(admin, "SHOW SERVERS")
            active = rows_by(servers, database="appdb", state="active")
            assert {r["remote_pid"] for r in active} == pids
            assert all(r["port"] == pg.port and r["link"] for r in active)
            _, dbs = run(admin, "SHOW DATABASES")
            appdb = _row(dbs, name="appdb")
            assert appdb["current_connections"] == pool["sv_active"] + pool["sv_idle"] + pool["sv_used"]
            assert appdb["current_client_connections"] == 3
            _, users = run(admin, "SHOW USERS")
            assert _row(users, name="app")["current_client_connections"] == 3
            _, lists = run(admin, "SHOW LISTS")
            assert {r["list"]: r["items"] for r in lists}["used_clients"] >= 4
        finally:
            for h in holders:
                h.close()


def test_stats_averages_follow_stats_period(make_pooler):
    pooler = make_pooler(pool_mode="transaction", stats_period=1)
    with admin_conn(pooler) as admin, pooler.connect() as conn:
        for _ in range(20):
            conn.execute("select 1")

        def avg(field: str) -> int:
            _, rows = run(admin, "SHOW STATS_AVERAGES")
            found = rows_by(rows, database="appdb")
            return found[0][field] if found else 0

        wait_until(lambda: avg("xact_count") > 0, 5, "a non-zero average after load")
        # Two periods without load: the average goes back to zero.
        wait_until(lambda: avg("xact_count") == 0, 10, "the average to drop back to 0")


def test_pause_waits_for_running_transaction_and_resume_releases_waiters(make_pooler):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=2, query_wait_timeout=30)
    holder = pooler.connect()
    holder.execute("begin")
    holder.execute("select 1")
    with admin_conn(pooler) as admin:
        pause = Background(lambda: run(admin_conn(pooler), "PAUSE appdb"))
        assert not pause.finished_within(0.5), "PAUSE answered while a transaction was running"
        # New transactions wait, and are shown waiting.
        waiters = [Background(lambda: _query_in_new_client(pooler)) for _ in range(3)]

        def waiting() -> int:
            _, pools = run(admin, "SHOW POOLS")
            found = rows_by(pools, database="appdb", user="app")
            return found[0]["cl_waiting"] if found else 0

        wait_until(lambda: waiting() == 3, 10, "three clients waiting")
        _, clients = run(admin, "SHOW CLIENTS")
        assert len(rows_by(clients, database="appdb", state="waiting")) == 3
        # The running transaction goes on; PAUSE answers once it is over.
        holder.execute("select 2")
        holder.execute("commit")
        pause.result(10)
        _, dbs = run(admin, "SHOW DATABASES")
        assert _row(dbs, name="appdb")["paused"] == 1
        assert not waiters[0].finished_within(0.3), "a transaction ran while paused"
        pool = _row(run(admin, "SHOW POOLS")[1], database="appdb", user="app")
        assert pool["sv_active"] == 0 and pool["cl_waiting"] == 3
        run(admin, "RESUME appdb")
        assert [w.result(10) for w in waiters] == [42, 42, 42]
        assert _row(run(admin, "SHOW DATABASES")[1], name="appdb")["paused"] == 0
    holder.close()


@pytest.mark.sluice_only("SHOW STATE came in PgBouncer 1.25")
def test_global_pause_and_resume(make_pooler):
    pooler = make_pooler(pool_mode="transaction", query_wait_timeout=30)
    with admin_conn(pooler) as admin, pooler.connect() as conn:
        conn.execute("select 1")
        run(admin, "PAUSE")
        assert {r["key"]: r["value"] for r in run(admin, "SHOW STATE")[1]}["paused"] == "yes"
        with pytest.raises(psycopg.errors.ProtocolViolation, match="already suspended/paused"):
            run(admin, "PAUSE")
        q = Background(lambda: conn.execute("select 7").fetchone()[0])
        assert not q.finished_within(0.3)
        run(admin, "RESUME")
        assert q.result(10) == 7
        with pytest.raises(psycopg.errors.ProtocolViolation, match="not paused"):
            run(admin, "RESUME")


def test_reload_raises_pool_size_for_a_waiting_client(make_pooler):
    pooler = make_pooler(pool_mode="session", default_pool_size=2, query_wait_timeout=30)
    a, b = pooler.connect(), pooler.connect()
    try:
        a.execute("select 1")
        b.execute("select 1")
        c = Background(lambda: _query_in_new_client(pooler))
        wait_until(lambda: (pooler.pool_row("appdb", "app") or {}).get("cl_waiting") == 1, 10,
                   "the third session client to wait")
        pooler.settings["default_pool_size"] = "3"
        pooler.write_files()
        pooler.admin("RELOAD")
        assert c.result(10) == 42
        assert _row(pooler.admin("SHOW DATABASES"), name="appdb")["pool_size"] == 3
        assert _row(pooler.admin("SHOW CONFIG"), key="default_pool_size")["value"] == "3"
    finally:
        a.close()
        b.close()


@pytest.mark.sluice_only("KILL_CLIENT came in PgBouncer 1.24")
def test_kill_client(make_pooler):
    pooler = make_pooler(pool_mode="transaction")
    victim = pooler.connect()
    bystander = pooler.connect()
    try:
        victim.execute("select 1")
        bystander.execute("select 1")
        with admin_conn(pooler) as admin:
            row = _row(run(admin, "SHOW CLIENTS")[1], port=_local_port(victim))
            run(admin, f"KILL_CLIENT {row['id']}")
            with pytest.raises(psycopg.OperationalError):
                victim.execute("select 1")
            clients = run(admin, "SHOW CLIENTS")[1]
            assert not rows_by(clients, id=row["id"])
            assert bystander.execute("select 2").fetchone() == (2,)
            with pytest.raises(psycopg.errors.ProtocolViolation, match="client not found"):
                run(admin, "KILL_CLIENT 987654321")
            with pytest.raises(psycopg.errors.ProtocolViolation, match="invalid client pointer"):
                run(admin, "KILL_CLIENT somebody")
    finally:
        victim.close()
        bystander.close()


@pytest.mark.sluice_only("PgBouncer 1.18 drops the killed pool; a new client's login outwaits RESUME")
def test_kill_database_closes_its_clients_and_holds_new_ones(make_pooler):
    pooler = make_pooler(pool_mode="transaction", query_wait_timeout=30)
    a, b, other = pooler.connect(), pooler.connect(), pooler.connect(dbname="db2")
    try:
        for c in (a, b, other):
            c.execute("select 1")
        with admin_conn(pooler) as admin:
            run(admin, "KILL appdb")
            for c in (a, b):
                with pytest.raises(psycopg.OperationalError):
                    c.execute("select 1")
            assert other.execute("select 2").fetchone() == (2,)
            late = Background(lambda: _query_in_new_client(pooler))
            assert not late.finished_within(0.5), "a killed database served a query before RESUME"
            run(admin, "RESUME appdb")
            assert late.result(10) == 42
            with pytest.raises(psycopg.errors.ProtocolViolation, match="no such database: nosuchdb"):
                run(admin, "KILL nosuchdb")
    finally:
        for c in (a, b, other):
            c.close()


def test_wait_close_waits_for_servers_of_the_old_configuration(make_pooler):
    pooler = make_pooler(pool_mode="session")
    holder = pooler.connect()
    holder.execute("select 1")
    with admin_conn(pooler) as admin:
        run(admin, "RECONNECT appdb")
        servers = rows_by(run(admin, "SHOW SERVERS")[1], database="appdb")
        assert [s["close_needed"] for s in servers] == [1]
        wait = Background(lambda: run(admin_conn(pooler), "WAIT_CLOSE appdb"))
        assert not wait.finished_within(0.5), "WAIT_CLOSE answered while the old server was linked"
        holder.close()
        wait.result(10)
        # The next session gets a new backend.
        assert not rows_by(run(admin, "SHOW SERVERS")[1], database="appdb", close_needed=1)


def test_suspend_holds_new_transactions_until_resume(make_pooler):
    pooler = make_pooler(pool_mode="transaction", query_wait_timeout=30)
    with admin_conn(pooler) as admin, pooler.connect() as conn:
        conn.execute("select 1")
        run(admin, "SUSPEND")
        q = Background(lambda: conn.execute("select 5").fetchone()[0])
        assert not q.finished_within(0.3)
        run(admin, "RESUME")
        assert q.result(10) == 5


def test_disable_refuses_new_clients_and_enable_lets_them_in(make_pooler):
    pooler = make_pooler(pool_mode="transaction")
    with pooler.connect() as early, admin_conn(pooler) as admin:
        early.execute("select 1")
        run(admin, "DISABLE appdb")
        assert _row(run(admin, "SHOW DATABASES")[1], name="appdb")["disabled"] == 1
        with pytest.raises(psycopg.OperationalError, match='database "appdb" is disabled'):
            _query_in_new_client(pooler)
        assert early.execute("select 3").fetchone() == (3,)  # clients already in stay
        run(admin, "ENABLE appdb")
        assert _query_in_new_client(pooler) == 42
        with pytest.raises(psycopg.errors.ProtocolViolation, match="a database is required"):
            run(admin, "DISABLE")


def test_stats_user_may_show_but_not_control(make_pooler):
    pooler = make_pooler(auth_type="md5", stats_users="statsuser", auth={"statsuser": "stats-pw"})
    with admin_conn(pooler, user="statsuser", password="stats-pw") as stats:
        assert run(stats, "SHOW POOLS")[0][:2] == ["database", "user"]
        for command in ("PAUSE", "RELOAD", "SET default_pool_size = 3", "KILL appdb",
                        "SHUTDOWN"):
            with pytest.raises(psycopg.Error, match="admin access needed"):
                run(stats, command)
    assert pooler.running()
    # A user in neither list cannot even log in to the console.
    with pytest.raises(psycopg.OperationalError):
        admin_conn(pooler, user="app", password="app-pw").close()


def test_set_and_reload_errors(make_pooler):
    pooler = make_pooler()
    with admin_conn(pooler) as admin:
        run(admin, "SET default_pool_size = 9")
        assert _row(run(admin, "SHOW CONFIG")[1], key="default_pool_size")["value"] == "9"
        with pytest.raises(psycopg.Error):
            run(admin, "SET no_such_setting = 1")
        with pytest.raises(psycopg.Error, match="invalid command"):
            run(admin, "FROBNICATE")


@pytest.mark.sluice_only("SHUTDOWN WAIT_FOR_CLIENTS came in PgBouncer 1.23")
def test_shutdown_wait_for_clients(make_pooler):
    pooler = make_pooler(pool_mode="transaction")
    with pooler.connect() as conn:
        conn.execute("select 1")
        pooler.expect_exit = True
        pooler.admin("SHUTDOWN WAIT_FOR_CLIENTS")
        wait_until(lambda: not tcp_accepts(pooler.host, pooler.port), 5, "TCP to be refused")
        assert conn.execute("select 2").fetchone() == (2,)  # clients already in carry on
        assert pooler.running()
    assert pooler.wait_exit(10) == 0


@pytest.mark.sluice_only("SHUTDOWN WAIT_FOR_SERVERS came in PgBouncer 1.23")
def test_shutdown_wait_for_servers_lets_running_transaction_finish(make_pooler):
    pooler = make_pooler(pool_mode="transaction")
    tx, idle = pooler.connect(), pooler.connect()
    try:
        tx.execute("begin")
        tx.execute("select 1")
        idle.execute("select 1")
        pooler.expect_exit = True
        pooler.admin("SHUTDOWN WAIT_FOR_SERVERS")
        with pytest.raises(psycopg.OperationalError):
            idle.execute("select 2")  # a new transaction is refused
        assert tx.execute("select 3").fetchone() == (3,)
        assert pooler.running()
        tx.execute("commit")
        assert pooler.wait_exit(10) == 0
    finally:
        tx.close()
        idle.close()


@pytest.mark.sluice_only("RELOAD reports a bad file with F0000 since PgBouncer 1.2x (test_admin.py)")
def test_reload_of_a_bad_file_fails_and_keeps_running(make_pooler):
    pooler = make_pooler()
    with admin_conn(pooler) as admin, pooler.connect() as conn:
        conn.execute("select 1")
        pooler.settings["server_lifetime"] = "not-a-time"
        pooler.write_files()
        with pytest.raises(psycopg.errors.ConfigFileError, match="RELOAD failed"):
            run(admin, "RELOAD")
        assert conn.execute("select 2").fetchone() == (2,)
        assert _row(run(admin, "SHOW CONFIG")[1], key="server_lifetime")["value"] == "3600"


@pytest.mark.sluice_only("PgBouncer takes one statement per query")
def test_several_statements_in_one_query_stop_at_the_first_error(make_pooler):
    pooler = make_pooler()
    with admin_conn(pooler) as admin:
        cur = admin.execute("SHOW VERSION; SHOW STATE")
        assert [c.name for c in cur.description] == ["version"]
        assert cur.nextset() and [c.name for c in cur.description] == ["key", "value"]
        with pytest.raises(psycopg.Error, match="invalid command"):
            admin.execute("PAUSE; FROBNICATE; PAUSE")
        # The first PAUSE ran, the last did not (it would have failed: already paused).
        assert {r["key"]: r["value"] for r in run(admin, "SHOW STATE")[1]}["paused"] == "yes"
        run(admin, "RESUME")
        assert {r["key"]: r["value"] for r in run(admin, "SHOW STATE")[1]}["paused"] == "no"
