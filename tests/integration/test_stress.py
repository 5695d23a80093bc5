# The multi-worker stress (issue 10): pgbench through a small pool on several workers while the
# configuration is reloaded every 200 ms and a console loop pauses, resumes, reconnects, kills
# clients and switches the database between two Postgres servers. Run against the ThreadSanitizer
# and ASan/UBSan builds by tools/test.sh (SLUICE_BIN); the harness fails the test on any
# sanitizer report the pooler printed (Pooler.stop). STRESS_SECONDS sets the duration.
import os
import random
import re
import signal
import subprocess
import threading
import time

import psycopg
import pytest

from sluice_it.postgres import PgCluster
from sluice_it.util import default_child_user

pytestmark = pytest.mark.sluice_only("workers, SWITCHOVER")

PG_BIN = "/usr/lib/postgresql/15/bin"
SECONDS = int(os.environ.get("STRESS_SECONDS", "20"))


@pytest.fixture(scope="module")
def pg_other(tmp_root):
    """A second PostgreSQL with the same roles and pgbench tables: the SWITCHOVER target."""
    cluster = PgCluster(os.path.join(tmp_root, "stress-other"), default_child_user("PG_OS_USER"))
    cluster.init()
    cluster.start()
    try:
        cluster.setup_objects()
        yield cluster
    finally:
        cluster.stop()


class Console(threading.Thread):
    """Runs console commands in a loop until stopped; counts them and the clients it killed."""

    def __init__(self, pooler, pg, pg_other):
        super().__init__(daemon=True)
        self.pooler, self.targets = pooler, [pg, pg_other]
        self.stop_event = threading.Event()
        self.commands = 0
        self.killed = 0
        self.errors: list[str] = []

    def run(self):
        rnd = random.Random(7)
        on = 0
        # pgbench gives up if a client fails while it connects: start once all 64 are in.
        deadline = time.monotonic() + 30
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            try:
                rows = self.pooler.admin("SHOW CLIENTS")
            except psycopg.Error:
                rows = []
            if sum(1 for r in rows if r["database"] == "bench") >= 64:
                break
            time.sleep(0.05)
        while not self.stop_event.is_set():
            try:
                with psycopg.connect(**self.pooler.conninfo("itadmin", "pgbouncer"),
                                     autocommit=True, prepare_threshold=None) as c:
                    while not self.stop_event.is_set():
                        self._one(c, rnd)
                        self.commands += 1
                        if self.commands % 25 == 0:
                            on = 1 - on
                            t = self.targets[on]
                            c.execute(f"SWITCHOVER bench TO 'host={t.host} port={t.port}'")
            except psycopg.Error as exc:
                self.errors.append(repr(exc))
                time.sleep(0.05)

    def _one(self, c, rnd):
        pick = rnd.randrange(8)
        if pick == 0:
            c.execute("PAUSE bench")
            c.execute("RESUME bench")
        elif pick == 1:
            c.execute("RECONNECT bench")
        elif pick == 2 and rnd.random() < 0.3:
            cur = c.execute("SHOW CLIENTS")
            names = [d.name for d in cur.description]
            ids = [r[names.index("id")] for r in cur.fetchall()
                   if r[names.index("database")] == "bench"]
            if ids:
                try:
                    c.execute(f"KILL_CLIENT {rnd.choice(ids)}")
                    self.killed += 1
                except psycopg.Error as exc:
                    # The client may have left between SHOW CLIENTS and KILL_CLIENT (a kill
                    # before, a reconnect, the run's end): that answer is the right one.
                    if "client not found" not in str(exc):
                        raise
        else:
            for cmd in ("SHOW POOLS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW STATS"):
                c.execute(cmd).fetchall()


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("proto", ["simple", "extended"])
def test_stress(make_pooler, pg, pg_other, workers, proto):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=4, workers=workers,
                         max_client_conn=500, query_wait_timeout=60)
    console = Console(pooler, pg, pg_other)
    stop_hup = threading.Event()

    def hup():
        while not stop_hup.wait(0.2):
            os.kill(pooler.pid, signal.SIGHUP)

    hupper = threading.Thread(target=hup, daemon=True)
    env = {"PGPASSWORD": "app-pw", "PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10"}
    console.start()
    hupper.start()
    try:
        bench = subprocess.run(
            [f"{PG_BIN}/pgbench", "-n", "-S", "-M", proto, "-c", "64", "-j", "2", "-T", str(SECONDS),
             "-h", pooler.host, "-p", str(pooler.port), "-U", "app", "bench"],
            capture_output=True, text=True, timeout=SECONDS + 60, env=env)
    finally:
        stop_hup.set()
        console.stop_event.set()
        hupper.join(5)
        console.join(30)
    out = bench.stdout + bench.stderr
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    assert m, f"pgbench did not run:\n{out[-3000:]}"
    processed = int(m.group(1))
    assert processed > 0, out
    assert pooler.running(), "the pooler died under stress"
    # Clients may only have failed because the console killed them on purpose.
    lost = len(re.findall(r"client \d+ aborted", out))
    assert lost <= console.killed, f"{lost} clients aborted, {console.killed} killed on purpose:\n{out[-3000:]}"
    assert console.commands > 20, console.errors
    assert not console.errors, console.errors[:5]
