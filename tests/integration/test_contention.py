# Every client progresses under contention (issue 9): a pool smaller than the clients,
# background traffic, clients whose session state differs, workers=1 and 2. Each client checks
# that every statement sees its own state, and everyone must finish within a bound.
import threading
import time

import pytest

pytestmark = pytest.mark.sluice_only("session state in transaction pooling")

WORKERS = [1, 2]


def tx_pooler(make_pooler, pool_size, workers, **settings):
    return make_pooler(pool_mode="transaction", default_pool_size=pool_size, workers=workers,
                       **settings)


class Background:
    """Clients looping `SELECT 1` until stopped: the busy pool every test runs on."""

    def __init__(self, pooler, n):
        self.stop = threading.Event()
        self.errors = []
        self.count = 0
        self.threads = [threading.Thread(target=self._run, args=(pooler,), daemon=True)
                        for _ in range(n)]

    def _run(self, pooler):
        try:
            with pooler.connect(application_name="background") as c:
                while not self.stop.is_set():
                    c.execute("select 1")
                    self.count += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(20)
        assert not self.errors, self.errors


def run_clients(fns, timeout):
    """Runs each fn in a thread; fails with every error, or if any has not finished in time."""
    errors = []

    def wrap(fn):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(fn,), daemon=True) for fn in fns]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, timeout - (time.monotonic() - t0)))
    stuck = sum(t.is_alive() for t in threads)
    assert not errors, errors
    assert stuck == 0, f"{stuck} of {len(threads)} clients did not finish in {timeout}s"


@pytest.mark.parametrize("workers", WORKERS)
def test_two_application_names_on_a_pool_of_one(make_pooler, workers):
    pooler = tx_pooler(make_pooler, 1, workers)

    def client(name):
        def fn():
            with pooler.connect(application_name=name) as c:
                for _ in range(100):
                    assert c.execute("select current_setting('application_name')").fetchone()[0] == name
        return fn

    run_clients([client("a"), client("b")], timeout=30)
