# Every answer belongs to the query that asked for it (issue 17 item 5). Many clients run tagged
# queries (simple, extended with parameters, prepared, pipelined) through a pool smaller than
# they are, with differing application_name and SET state, while the pool is reloaded and
# reconnected, clients are killed and server backends are terminated. A client may get an error
# (it was killed, its server died), never somebody else's answer, never its own late.
import random
import threading
import time

import psycopg
import pytest

pytestmark = pytest.mark.sluice_only("session state in transaction pooling")

CLIENTS = 24
POOL_SIZE = 4
RUN_SECONDS = 25
TARGET_QUERIES = 40000


def _fatal(exc: BaseException) -> bool:
    """The error, or one it happened while handling, is FATAL: the session is ending. libpq may
    see the end of the socket only later (in pipeline mode it first says "cannot exit pipeline
    mode while busy"), so the connection does not look broken yet."""
    while exc is not None:
        diag = getattr(exc, "diag", None)
        if diag is not None and diag.severity_nonlocalized in ("FATAL", "PANIC"):
            return True
        exc = exc.__context__
    return False


class Checker:
    def __init__(self, pooler, i):
        self.pooler = pooler
        self.i = i
        self.app = f"chk-{i % 3}"
        self.work_mem = f"{4 + i % 4}MB" if i % 2 else None  # half the clients SET something
        self.queries = 0
        self.errors: list[str] = []
        self.wrong: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self):
        conn = self.pooler.connect(application_name=self.app)
        if self.work_mem:
            conn.execute(f"set work_mem = '{self.work_mem}'")
        return conn

    def _expect(self, what, got, want):
        if got != want:
            self.wrong.append(f"client {self.i} {what}: got {got!r}, expected {want!r}")

    def _one(self, conn, seq):
        tag = f"c{self.i}-{seq}"
        kind = seq % 6
        if kind == 0:  # simple query, the tag in the text
            self._expect("simple", conn.execute(f"select '{tag}'").fetchall(), [(tag,)])
        elif kind == 1:  # extended, the tag as a parameter and in the text
            rows = conn.execute(f"select %s::text, '{tag}'", (tag,)).fetchall()
            self._expect("extended", rows, [(tag, tag)])
        elif kind == 2:  # a named prepared statement, bound again and again
            rows = conn.execute("select %s::text as t", (tag,), prepare=True).fetchall()
            self._expect("prepared", rows, [(tag,)])
        elif kind == 3:  # pipelined: several requests before reading any answer
            with conn.pipeline():
                curs = [conn.execute(f"select '{tag}-{k}', %s::int", (k,)) for k in range(3)]
            for k, cur in enumerate(curs):
                self._expect("pipelined", cur.fetchall(), [(f"{tag}-{k}", k)])
        elif kind == 4:  # session state replayed on whichever server answers
            row = conn.execute(f"select current_setting('application_name'), "
                               f"current_setting('work_mem'), '{tag}'").fetchone()
            self._expect("state", row[0], self.app)
            if self.work_mem:
                self._expect("state", row[1], self.work_mem)
            self._expect("state", row[2], tag)
        else:  # a multi-statement simple query: two results in order
            cur = conn.execute(f"select '{tag}-a'; select '{tag}-b'")
            first = cur.fetchall()
            cur.nextset()
            self._expect("multi", (first, cur.fetchall()), ([(f"{tag}-a",)], [(f"{tag}-b",)]))
        self.queries += 1

    def _run(self):
        conn = None
        seq = 0
        while not self.stop.is_set():
            seq += 1
            try:
                if conn is None:
                    conn = self._connect()
                self._one(conn, seq)
            except psycopg.Error as exc:
                if conn is not None and not (conn.closed or conn.broken) and not _fatal(exc):
                    # An error on a connection that is still up: not what was asked for.
                    self.wrong.append(f"client {self.i} seq {seq}: {type(exc).__name__}: {exc}")
                else:  # killed, or its server was: allowed. Start again on a new connection.
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                if conn is not None:
                    conn.close()
                conn = None
            except Exception as exc:  # noqa: BLE001 - any other failure is a wrong answer
                self.wrong.append(f"client {self.i} seq {seq}: {type(exc).__name__}: {exc}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def disturb(pooler, pg, rng):
    """One of: RELOAD, RECONNECT, KILL_CLIENT of two clients, a backend terminated."""
    what = rng.choice(["reload", "reconnect", "kill_client", "terminate"])
    if what == "reload":
        pooler.admin("RELOAD")
    elif what == "reconnect":
        pooler.admin("RECONNECT appdb")
    elif what == "kill_client":
        ids = [r["id"] for r in pooler.admin("SHOW CLIENTS")
               if (r["application_name"] or "").startswith("chk-")]
        for cid in rng.sample(ids, min(2, len(ids))):
            try:
                pooler.admin(f"KILL_CLIENT {cid}")
            except psycopg.errors.ProtocolViolation:
                pass  # it left by itself in between
    else:
        pg.sql("select pg_terminate_backend(pid) from pg_stat_activity where datname = 'appdb'"
               " and usename = 'app' and backend_type = 'client backend'"
               " order by random() limit 1")
    return what


@pytest.mark.parametrize("workers", [1, 2])
def test_every_answer_belongs_to_its_query(make_pooler, pg, workers):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=POOL_SIZE, workers=workers,
                         max_prepared_statements=50)
    checkers = [Checker(pooler, i) for i in range(CLIENTS)]
    rng = random.Random(17 + workers)
    disturbances = []
    for c in checkers:
        c.thread.start()
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline and sum(c.queries for c in checkers) < TARGET_QUERIES:
            time.sleep(0.2)
            disturbances.append(disturb(pooler, pg, rng))
    finally:
        for c in checkers:
            c.stop.set()
        for c in checkers:
            c.thread.join(15)
    stuck = [c.i for c in checkers if c.thread.is_alive()]
    total = sum(c.queries for c in checkers)
    wrong = [w for c in checkers for w in c.wrong]
    errors = [e for c in checkers for e in c.errors]
    summary = (f"{total} answers, {len(errors)} errors "
               f"{sorted({e.splitlines()[0][:90] for e in errors})}, disturbances: "
               f"{ {d: disturbances.count(d) for d in set(disturbances)} }")
    print(summary)
    assert not wrong, f"{summary}; wrong answers: {wrong[:10]}"
    assert not stuck, f"{summary}; clients still waiting: {stuck}"
    assert total >= 2000, summary
    assert all(c.queries > 0 for c in checkers), summary
    assert pooler.running()
