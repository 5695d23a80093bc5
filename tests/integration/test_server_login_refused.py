# A server that refuses the pool's login (role lost LOGIN, password changed): clients waiting for
# a server hear the server's error at once when no usable connection is left, later clients get
# the cached error until server_login_retry allows a new attempt (as PgBouncer does).
import time

import psycopg
import pytest

from sluice_it.util import wait_until

ROLE = "refused_role"


@pytest.fixture
def refused_role(pg):
    drop_role(pg)
    pg.sql(f"create role {ROLE} login")
    yield ROLE
    pg.sql(f"alter role {ROLE} login")
    pg.sql(f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{ROLE}'")
    wait_until(lambda: pg.server_conns(user=ROLE) == 0, 10, "the role's backends to go")
    drop_role(pg)


def drop_role(pg):
    if pg.sql("select 1 from pg_roles where rolname = %s", (ROLE,)):
        pg.sql(f"revoke all on database appdb from {ROLE}")
        pg.sql(f"drop role {ROLE}")


def query(pooler, user):
    with pooler.connect(user=user) as conn:
        return conn.execute("select current_user").fetchone()[0]


def lose_login(pg, pooler, role):
    """NOLOGIN, and the pooled backend goes: the pool keeps its welcome but has no server."""
    pg.sql(f"alter role {role} nologin")
    pg.sql(f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'")

    def no_server():
        row = pooler.pool_row("appdb", role)
        return row is not None and int(row["sv_idle"]) + int(row["sv_active"]) == 0

    wait_until(no_server, 10, "the pooler to notice the terminated backend")


def test_refused_login_fails_waiting_clients_then_fast(make_pooler, pg, refused_role):
    pooler = make_pooler(pool_mode="transaction", auth={refused_role: "unused"},
                         server_login_retry=60, query_wait_timeout=30)
    assert query(pooler, refused_role) == refused_role
    lose_login(pg, pooler, refused_role)

    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="is not permitted to log in"):
        query(pooler, refused_role)
    assert time.monotonic() - started < 5, "told at once, not after query_wait_timeout"
    assert f'closing because: role "{refused_role}" is not permitted to log in' in pooler.log_text()

    # Within server_login_retry nobody asks the server again: the cached error is returned.
    attempts = pg.sql(f"select count(*) from pg_stat_activity where usename = '{refused_role}'")
    with pytest.raises(psycopg.OperationalError,
                       match=r"server login has been failing, cached error: .*is not permitted"):
        query(pooler, refused_role)
    assert pg.sql(f"select count(*) from pg_stat_activity where usename = '{refused_role}'") == attempts

    # Other users of the same database are not affected.
    assert query(pooler, "app") == "app"


def test_fast_failure_starts_a_new_attempt_after_the_retry_time(make_pooler, pg, refused_role):
    pooler = make_pooler(pool_mode="transaction", auth={refused_role: "unused"},
                         server_login_retry=1, query_wait_timeout=30)
    assert query(pooler, refused_role) == refused_role
    lose_login(pg, pooler, refused_role)
    with pytest.raises(psycopg.OperationalError, match="is not permitted to log in"):
        query(pooler, refused_role)
    pg.sql(f"alter role {refused_role} login")

    def works():
        try:
            return query(pooler, refused_role) == refused_role
        except psycopg.OperationalError:
            return False

    wait_until(works, 10, "a client to be served once the role may log in again", interval=0.2)
