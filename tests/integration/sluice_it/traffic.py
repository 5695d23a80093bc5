"""Background traffic and concurrent clients: the busy pool tests run on."""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from .util import wait_until


def select_counter(conn, i: int) -> None:
    """The default step: `SELECT i`, checked."""
    assert conn.execute("select %s::int", (i,)).fetchone() == (i,)


class Background:
    """`n` clients, each on its own connection, looping `step(conn, i)` until the block ends.

    Entering waits until one step has run (or a client failed); leaving fails the test with
    every client's error, and with the slowest step if `max_step` seconds is given.
    Keyword arguments other than these go to pooler.connect (user, password, dbname, ...).
    """

    def __init__(self, pooler, n: int, step: Callable = select_counter,
                 max_step: Optional[float] = None, start_timeout: float = 20,
                 **connect_kw):
        connect_kw.setdefault("application_name", "background")
        self.stop = threading.Event()
        self.errors: list = []
        self.count = 0
        self.worst = 0.0
        self._step = step
        self._max_step = max_step
        self._start_timeout = start_timeout
        self.threads = [threading.Thread(target=self._run, args=(pooler, connect_kw), daemon=True)
                        for _ in range(n)]

    def _run(self, pooler, connect_kw):
        try:
            with pooler.connect(**connect_kw) as c:
                i = 0
                while not self.stop.is_set():
                    i += 1
                    t0 = time.monotonic()
                    self._step(c, i)
                    self.worst = max(self.worst, time.monotonic() - t0)
                    self.count += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)

    def __enter__(self):
        for t in self.threads:
            t.start()
        wait_until(lambda: self.count > 0 or self.errors, self._start_timeout,
                   "background clients running")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(20)
        assert not self.errors, self.errors
        if self._max_step is not None:
            assert self.worst < self._max_step, f"a background query waited {self.worst:.1f}s"


def run_clients(fns, timeout: float = 45) -> None:
    """Runs each fn in a thread; fails with every error, or if any has not finished in time."""
    errors: list = []

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
