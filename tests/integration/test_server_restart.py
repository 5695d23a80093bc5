# Postgres killed under load (`pg_ctl restart -m immediate`, issue 17 item 6): every backend
# sends a WARNING and closes at once, so the last bytes and the end of the stream often come in
# one epoll edge. Every client with a request in flight must get an answer or an error, and every
# client must go on working once Postgres is back. Uses its own cluster: the session's is shared.
import os
import threading
import time

import psycopg
import pytest

from sluice_it.postgres import PgCluster
from sluice_it.util import default_child_user, wait_until

pytestmark = pytest.mark.sluice_only("issue 17: server EOF under restart")

CLIENTS = 120
POOL_SIZE = 20


@pytest.fixture(scope="module")
def own_pg(tmp_root):
    cluster = PgCluster(os.path.join(tmp_root, "restart"), default_child_user("PG_OS_USER"))
    cluster.init()
    cluster.start()
    try:
        cluster.sql("create role app login")
        cluster.sql("create database appdb owner app")
        yield cluster
    finally:
        cluster.stop()


class Looper:
    """One client looping a short query, reconnecting after an error. `done` counts answers."""

    def __init__(self, pooler, i):
        self.pooler = pooler
        self.i = i
        self.done = 0
        self.errors = 0
        self.busy_since = None  # monotonic time the current request (or connect) started
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        conn = None
        while not self.stop:
            self.busy_since = time.monotonic()
            try:
                if conn is None:
                    conn = self.pooler.connect(application_name=f"looper-{self.i % 3}")
                conn.execute("select 1 from pg_sleep(0.02)").fetchall()
                self.done += 1
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            finally:
                self.busy_since = None
        if conn is not None:
            conn.close()


def wait_all_progress(loopers, timeout, what):
    """Every looper answers at least one more request; names the stuck ones otherwise."""
    marks = [lp.done for lp in loopers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(lp.done > m for lp, m in zip(loopers, marks)):
            return
        time.sleep(0.1)
    now = time.monotonic()
    stuck = [(lp.i, round(now - lp.busy_since, 1) if lp.busy_since else None)
             for lp, m in zip(loopers, marks) if lp.done <= m]
    raise AssertionError(f"{what}: {len(stuck)} of {len(loopers)} clients made no progress in "
                         f"{timeout}s (client, seconds in the current request): {stuck[:10]}")


@pytest.mark.parametrize("workers", [1, 2])
def test_every_client_answered_across_immediate_restarts(make_pooler, own_pg, workers):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=POOL_SIZE, workers=workers,
                         server_login_retry=1, query_wait_timeout=0,
                         databases={"appdb": f"host=127.0.0.1 port={own_pg.port} dbname=appdb"})
    loopers = [Looper(pooler, i) for i in range(CLIENTS)]
    for lp in loopers:
        lp.thread.start()
    try:
        wait_all_progress(loopers, 30, "before the restart")
        for n in range(2):
            wait_until(lambda: sum(lp.busy_since is not None for lp in loopers) > CLIENTS // 2,
                       10, "requests in flight")
            own_pg.restart("immediate")
            wait_all_progress(loopers, 25, f"after immediate restart {n + 1}")
    finally:
        for lp in loopers:
            lp.stop = True
        for lp in loopers:
            lp.thread.join(5)
    assert pooler.running()
