# The admin console as drivers drive it with their defaults (issue 17 item 11): psycopg 3
# prepares a statement it has run five times (Parse/Bind/Describe/Execute/Sync), which the
# console used to refuse, closing the connection ("supports only simple queries").
import psycopg
import pytest
from psycopg.rows import dict_row

from sluice_it.pooler import ADMIN_PASSWORD, ADMIN_USER

pytestmark = pytest.mark.sluice_only("console extended query protocol (PgBouncer refuses it)")

COMMANDS = ["SHOW POOLS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW STATS", "SHOW LISTS",
            "SHOW CONFIG", "SHOW DATABASES", "SET query_wait_timeout = 120", "RELOAD",
            "SHOW VERSION", "SHOW USERS", "SHOW STATE", "SHOW client_encoding",
            "SET client_encoding = 'UTF8'", "SHOW STATS_TOTALS", "SHOW SOCKETS"]


def console(pooler, **kw):
    info = pooler.conninfo(ADMIN_USER, "pgbouncer", ADMIN_PASSWORD)
    return psycopg.connect(**info, autocommit=True, row_factory=dict_row, **kw)


def columns(cur) -> list[str] | None:
    return [c.name for c in cur.description] if cur.description is not None else None


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("prepare_threshold", [5, 0])
def test_many_console_commands_with_psycopg_defaults(make_pooler, workers, prepare_threshold):
    """180 varied commands on one console session: every one answers as it does over the
    simple protocol (same columns, rows of the same shape), and the session stays open."""
    pooler = make_pooler(pool_mode="transaction", workers=workers)
    with pooler.connect() as app, console(pooler, prepare_threshold=None) as simple, \
            console(pooler, prepare_threshold=prepare_threshold) as conn:
        app.execute("select 1")  # a client and a server to show
        expected = {cmd: columns(simple.execute(cmd)) for cmd in COMMANDS}
        for i in range(180):
            cmd = COMMANDS[(i * 7) % len(COMMANDS)]
            try:
                cur = conn.execute(cmd)
            except psycopg.Error as exc:
                raise AssertionError(f"command {i} ({cmd}) failed: {exc}") from exc
            assert columns(cur) == expected[cmd], cmd
            if cur.description is not None:
                rows = cur.fetchall()
                assert all(list(r) == expected[cmd] for r in rows), cmd
                if cmd == "SHOW VERSION":
                    assert rows and rows[0]["version"].startswith("sluice")
        if prepare_threshold == 5:
            assert conn.execute("SHOW POOLS").fetchall()  # prepared by now


def test_console_errors_in_extended_protocol_keep_the_session(make_pooler):
    """An unknown command, a parameter, and a binary result request each fail as an error; the
    session carries on. DEALLOCATE of what psycopg prepared is answered."""
    pooler = make_pooler(pool_mode="transaction", workers=1)
    with console(pooler, prepare_threshold=0) as conn:
        with pytest.raises(psycopg.errors.ProtocolViolation, match="invalid command"):
            conn.execute("SHOW NOSUCHTHING")
        assert conn.execute("SHOW VERSION").fetchone()["version"].startswith("sluice")
        with pytest.raises(psycopg.Error, match="takes no parameters"):
            conn.execute("SHOW POOLS %s", ("x",), prepare=False)
        with pytest.raises(psycopg.Error, match="text format only"):
            conn.cursor(binary=True).execute("SHOW VERSION")
        assert conn.execute("SHOW LISTS").fetchall()
    # psycopg drops what it prepared past prepared_max with DEALLOCATE (libpq < 17: the SQL
    # command); the names it reuses must then be free again.
    with console(pooler, prepare_threshold=0) as conn:
        conn.prepared_max = 2
        for _ in range(4):
            for cmd in ("SHOW VERSION", "SHOW LISTS", "SHOW STATE", "SHOW USERS"):
                assert conn.execute(cmd).fetchall(), cmd
        cur = conn.execute("DEALLOCATE ALL", prepare=False)
        assert cur.statusmessage == "DEALLOCATE ALL"
